"""Resume does not depend on the current folder, and notices an edited recipe.

A run journals its recipe, repository and site config as absolute paths, and a
digest of every recipe file it read; ``resume`` (and ``repl --attach``) compares the
digests and refuses, saying what changed, unless told ``--accept-changes``.
"""

from __future__ import annotations

import io
from pathlib import Path

import libvirt
import pytest
from support.runenv import RunEnv

from pragmash.ui.cli import main as cli

pytestmark = pytest.mark.libvirt


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(list(args), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_resume_and_attach_from_another_folder_use_the_runs_own_paths(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = env.root / "flag"
    env.recipe(f"allocate 1\nrun test -e {flag}\nboot frontend\n", "r.prg")
    work = env.root / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, _, err = _cli(
        "../r.prg", "--vcname", "calit2", "--base_path", "../repo", "--site", "../site.toml",
        "--allow-run",
    )  # fmt: skip
    assert rc == 3, err
    run = env.last_run()
    assert run is not None
    assert run.options["recipe"] == str(env.root / "r.prg")
    assert run.options["base_path"] == str(env.root / "repo")
    assert run.options["site"] == str(env.site_path)

    elsewhere = env.root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "r.prg").write_text("echo a different recipe of the same name\n")
    monkeypatch.chdir(elsewhere)
    rc, out, err = _cli("repl", "--attach", "calit2", "--site", str(env.site_path))
    assert rc == 3, out + err  # quit at the failed step: exit 3, as the run left it
    assert "run test -e" in out  # the run's own recipe, not ./r.prg
    flag.touch()
    rc, out, err = _cli("resume", "calit2", "--site", str(env.site_path))
    assert rc == 0, err
    assert "calit2: finished" in out


EDITED = "echo inserted\n"


def test_resume_refuses_an_edited_recipe_and_says_what_changed(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    flag = env.root / "flag"
    part = env.recipe("boot frontend\n", "part.prg")
    recipe = env.recipe(f'allocate 1\nrun test -e {flag}\ninclude "part.prg"\n', "r.prg")
    first = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert first.rc == 3

    recipe.write_text(EDITED + recipe.read_text())  # lines inserted at the top
    refused = env.cli("resume", "calit2")
    assert refused.rc == 2, refused.err
    assert refused.err.splitlines()[0] == (
        f"error: calit2: the recipe changed since run 1 started: {recipe} was edited; "
        "step 1 (done) was 'allocate 1' at line 1; it is now 'echo inserted' at line 1"
    )
    assert "--accept-changes" in refused.err
    run = env.last_run()
    assert run is not None and run.outcome == "failed"  # nothing was touched

    recipe.write_text(recipe.read_text().removeprefix(EDITED))  # put back as it was
    part.write_text("boot frontend\nboot compute\n")
    refused = env.cli("resume", "calit2")
    assert refused.rc == 2
    assert f"the recipe changed since run 1 started: {part} was edited" in refused.err

    flag.touch()
    accepted = env.cli("resume", "calit2", "--accept-changes")
    assert accepted.rc == 0, accepted.err
    assert "calit2: finished" in accepted.out


def test_unchanged_recipe_resumes_and_a_run_without_digests_is_not_checked(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    flag = env.root / "flag"
    recipe = env.recipe(f"allocate 1\nrun test -e {flag}\nboot frontend\n", "r.prg")
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    # a run journaled before digests were recorded has nothing to compare against
    ledger = env.ledger()
    with ledger.transaction() as conn:
        conn.execute("UPDATE runs SET sources=NULL")
    recipe.write_text(recipe.read_text() + "echo appended\n")
    flag.touch()
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 0, resumed.err


def test_resume_of_a_run_whose_recipe_is_gone_says_so(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    recipe = env.recipe("allocate 1\nrun false\n", "r.prg")
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    Path(recipe).unlink()
    refused = env.cli("resume", "calit2")
    assert refused.rc == 2
    assert str(recipe) in refused.err.splitlines()[0]
