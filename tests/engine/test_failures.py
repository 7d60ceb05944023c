"""A failure injected into each stage in turn: the message, the exit status, nothing lost.

On test:///default the distro stages and staging are skipped (the engine is
simulated), so those two are driven through a run whose engine is the real libvirt
engine on test:///default told it is not simulated (a test-only subclass): the
staging, the seed-style driver folder and the error path are all the product's own.
"""

from __future__ import annotations

import io
from pathlib import Path

import libvirt
import pytest
from support.diskengine import RealDiskEngine
from support.runenv import RunEnv, make_env, vc_domains

from pragmash.engine.run import session
from pragmash.engine.run.diskwork import DiskWork
from pragmash.ui.cli import run as cli

pytestmark = pytest.mark.libvirt


NEXT = ("pragmash resume calit2", "pragmash clean calit2")


def _assert_kept(env: RunEnv, failed_idx: int, stage: str) -> None:
    """Leases still held, the run and its step journaled as failed with the stage."""
    assert env.allocation() is not None
    run = env.last_run()
    assert run is not None and run.outcome == "failed"
    step = {s.idx: s for s in env.steps()}[failed_idx]
    assert step.outcome == "failed" and step.stage == stage and step.ended_at is not None


def test_engine_unreachable(tmp_path: Path) -> None:
    bad = make_env(tmp_path / "bad", uri="test:///nonexistent.xml")
    recipe = bad.recipe("allocate 2\nboot all\n")
    result = bad.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 3
    assert "ve_driver/connect" in result.err
    assert "cannot connect to libvirt at test:///nonexistent.xml" in result.err
    assert (
        "/nonexistent.xml" in result.err.split("test:///nonexistent.xml:", 1)[1]
    )  # libvirt's words
    assert "check the site config's engine uri" in result.err
    # it failed before any step: nothing taken, nothing journaled
    assert bad.allocation() is None
    assert bad.last_run() is None


def test_libvirt_refuses_the_definition(env: RunEnv, testconn: libvirt.virConnect) -> None:
    vc_in = env.repo / "calit2" / "vc-in.xml"
    good = vc_in.read_text()
    vc_in.write_text(good.replace("bus='ide'", "bus='bogus'"))
    recipe = env.recipe("allocate 2\nboot   frontend\nboot compute\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 3
    assert "test.prg:2:1: 'boot   frontend' failed" in result.err
    assert "ve_driver/boot: libvirt could not boot calit2-frontend" in result.err
    assert "Invalid value for attribute 'bus'" in result.err  # libvirt's own message
    assert "Nothing was removed" in result.err
    for command in NEXT:
        assert command in result.err
    _assert_kept(env, 1, "ve_driver/boot")
    held = env.allocation()

    vc_in.write_text(good)  # the admin fixes the template, then resumes
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 0, resumed.err
    assert env.allocation() == held
    assert sorted(vc_domains(testconn)) == sorted(n.name for n in held.nodes) if held else False


def test_failed_step_vs_user_error(env: RunEnv, testconn: libvirt.virConnect) -> None:
    recipe = env.recipe('allocate 1\n\n  run sh -c "echo disk on fire >&2; exit 5"\n')
    failed = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert failed.rc == 3
    assert "test.prg:3:3: 'run sh" in failed.err
    assert "error: run: sh exited with status 5" in failed.err
    assert "| disk on fire" in failed.err  # the tool's own output tail
    _assert_kept(env, 1, "run")
    assert env.steps()[1].output_tail == ["disk on fire"]

    typo = env.recipe("allocate\nboot frontnd\n", "typo.prg")
    user = env.cli(str(typo), "--vcname", "tiny")
    assert user.rc == 2
    assert "typo.prg:2:6" in user.err
    assert env.allocation("tiny") is None and env.last_run("tiny") is None

    unknown = env.cli(str(recipe), "--vcname", "calit2", "--set", "nope=1")
    assert unknown.rc == 2 and "--set nope" in unknown.err

    runs = env.recipe("allocate\nrun true\n", "runs.prg")
    refused = env.cli(str(runs), "--vcname", "tiny")  # `run` without --allow-run
    assert refused.rc == 2
    assert env.last_run("tiny") is None


def _run_with_real_disks(env: RunEnv, recipe: Path) -> tuple[int, str]:
    options = session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    prep = session.prepare(options)
    prep.runtime.engine = RealDiskEngine("test:///default")
    prep.runtime.disk_work = DiskWork.of(prep.runtime.engine, prep.runtime.site)
    run = session.start(prep)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.finish(run, out, err)
    return rc, err.getvalue()


def test_distro_driver_error(tmp_path: Path, testconn: libvirt.virConnect) -> None:
    env = make_env(tmp_path / "site", extra='\n[drivers]\nfolders = ["drivers"]\n')
    folder = env.root / "drivers" / "brokendistro"
    folder.mkdir(parents=True)
    script = folder / "pre_boot"
    script.write_text('#!/bin/sh\necho "cannot mount $1: no root partition" >&2\nexit 4\n')
    script.chmod(0o755)
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "brokendistro"))
    recipe = env.recipe("allocate 1\nboot frontend\n")

    rc, err = _run_with_real_disks(env, recipe)
    assert rc == 3
    assert "test.prg:2:1: 'boot frontend' failed" in err
    assert "vc_driver/pre_boot" in err and "pre_boot" in err
    assert "no root partition" in err
    for command in NEXT:
        assert command in err
    _assert_kept(env, 1, "vc_driver/pre_boot")
    staged = env.site().temp_dir / "calit2" / "disks"
    assert list(staged.iterdir())  # the staged disk is kept for debugging
    assert "calit2-frontend" not in vc_domains(testconn)  # never reached ve_driver/boot

    # a resumed (or attached) run sees the node's staged disk, not the repository image
    options = session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    again = session.prepare(options, resuming=True)
    again.runtime.engine = RealDiskEngine("test:///default")
    again.runtime.disk_work = DiskWork.of(again.runtime.engine, again.runtime.site)
    held = env.allocation()
    assert held is not None
    again.runtime.adopt(held)
    disks = again.runtime.nodes["calit2-frontend"].disks
    assert disks[0] == str(staged / "calit2-frontend.qcow2")
    assert again.runtime.nodes["calit2-compute-0"].disks[0].endswith("calit2-compute.img.gz")


def test_missing_image(env: RunEnv, testconn: libvirt.virConnect) -> None:
    recipe = env.recipe("allocate 1\nboot frontend\n")
    options = session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    prep = session.prepare(options)
    prep.runtime.engine = RealDiskEngine("test:///default")
    prep.runtime.disk_work = DiskWork.of(prep.runtime.engine, prep.runtime.site)
    image = env.repo / "calit2" / "calit2-frontend.img.gz"
    image.unlink()  # gone between loading the VC and booting it
    run = session.start(prep)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.finish(run, out, err)
    text = err.getvalue()
    assert rc == 3
    assert "test.prg:2:1" in text
    assert str(image) in text
    assert "pragmash resume calit2" in text
    assert env.allocation() is not None
    step = env.steps()[1]
    assert step.outcome == "failed" and step.stage is not None and "stage" in step.stage
