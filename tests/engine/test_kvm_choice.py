"""KVM where it works: the engine's judgement reaches the domain type and every appliance.

A run settles its domain type from ``host_info()`` when it starts; its stage contexts
then carry ``kvm_usable`` (KVM exactly where the nodes get it), and libguestfs
(pre_boot's guestfish) and the fix tools (virt-customize, virt-v2v) run with
``force_tcg`` only where KVM is not usable. The tools themselves are faked here (their
command line and environment recorded); the real ones run in the vm tier.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from support.diskengine import RealDiskEngine
from support.recording import Recorder, raw_disk
from support.runenv import make_env

from pragmash import outcomes
from pragmash.driver_api import HostInfo, NodePlan, StageContext
from pragmash.drivers.distros.rocks6_client import Rocks6Client
from pragmash.drivers.libvirt.engine import LibvirtEngine
from pragmash.engine.run import session
from pragmash.engine.run.diskwork import DiskWork
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.engine.steps.fix import ImageFixer
from pragmash.images import fixing, inject
from pragmash.store.journal import steps_of
from pragmash.ui.cli import run as cli_run
from pragmash.vc.formats.vcout import ComputeOut, FrontendOut, VcOut, write_vc_out
from pragmash.vc.repository.vcdb import demo_repository_path

ROCKS6 = str(Path(__file__).resolve().parents[2] / "recipes" / "rocks6.prg")


def host(kvm: bool) -> HostInfo:
    return HostInfo(
        emulator=None,
        kvm_usable=kvm,
        arches=("x86_64",),
        domain_types=("qemu", "kvm") if kvm else ("qemu",),
    )


def started_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kvm: bool, site_choice: str = "auto"
) -> session.Run:
    """A run on the demo engine whose host says ``kvm``; the site may override."""
    monkeypatch.setattr(LibvirtEngine, "host_info", lambda self: host(kvm))
    site = None
    if site_choice != "auto":
        demo = (Path(session.__file__).parents[2] / "demo" / "site.toml").read_text()
        site_path = tmp_path / "site.toml"
        site_path.write_text(demo.replace('domain_type = "auto"', f'domain_type = "{site_choice}"'))
        site = str(site_path)
    # a real site names its repository (issue 27): here, the demo one
    base_path = str(demo_repository_path()) if site else None
    options = session.RunOptions(recipe=ROCKS6, vcname="calit2", site=site, base_path=base_path)
    run = session.start(session.prepare(options))
    return run


class Reporter:
    """What a stage context needs from a step's reporter."""

    def note(self, text: str) -> None:
        pass

    def progress(self, done: float, total: float | None, label: str) -> None:
        pass


@pytest.mark.parametrize(
    ("kvm", "site_choice", "domain_type", "appliance_kvm"),
    [
        (True, "auto", "kvm", True),
        (False, "auto", "qemu", False),
        (True, "qemu", "qemu", False),  # a site with broken KVM says so once, for both
        (False, "kvm", "kvm", True),
    ],
)
def test_a_run_settles_kvm_for_domains_and_appliances_alike(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kvm: bool,
    site_choice: str,
    domain_type: str,
    appliance_kvm: bool,
) -> None:
    run = started_run(monkeypatch, tmp_path, kvm, site_choice)
    try:
        runtime = run.prepared.runtime
        assert runtime.domain_type == domain_type
        reporter: Any = Reporter()
        assert runtime.context(reporter).kvm_usable is appliance_kvm
    finally:
        run.close(outcomes.FINISHED)


# --- the tools see it -----------------------------------------------------------------


def vc_out(tmp_path: Path) -> Path:
    path = tmp_path / "vc-out.xml"
    write_vc_out(
        VcOut(
            FrontendOut(
                "calit2-frontend",
                "calit2.example.org",
                "192.0.2.10",
                "255.255.255.0",
                "192.0.2.1",
                "7a:77:6e:00:00:02",
                "10.1.1.1",
                "255.255.0.0",
                "7a:77:6e:00:00:01",
            ),
            (ComputeOut("calit2-compute-0", "7a:77:6e:00:00:03", "10.1.1.254", 1),),
            "8.8.8.8",
            "local",
            "",
        ),
        path,
    )
    return path


def plan(name: str, role: str, disk: Path) -> NodePlan:
    return NodePlan(name, role, None, 1, "<domain/>", (), (), (str(disk),), "qemu")  # type: ignore[arg-type]


@pytest.mark.parametrize("kvm", [True, False])
def test_pre_boot_appliance_forces_tcg_only_where_kvm_is_not_usable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kvm: bool
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(inject, "run_tool", recorder)
    whole = vc_out(tmp_path)
    ctx = StageContext("calit2", tmp_path, whole, kvm_usable=kvm)
    nodes = [
        (plan("calit2-frontend", "frontend", raw_disk(tmp_path / "fe.img")), tmp_path / "fe.img"),
        (plan("calit2-compute-0", "compute", raw_disk(tmp_path / "c0.img")), tmp_path / "c0.img"),
    ]
    results = Rocks6Client().pre_boot_many(nodes, whole, ctx)
    [(argv, env)] = recorder.calls
    assert argv[0] == "guestfish"
    assert env["LIBGUESTFS_BACKEND"] == "direct"
    assert ("LIBGUESTFS_BACKEND_SETTINGS" in env) is not kvm
    if not kvm:
        assert env["LIBGUESTFS_BACKEND_SETTINGS"] == "force_tcg"
    # the run says which it used, in the step's message and products (the journal)
    for result in results.values():
        assert result.products["appliance"] == ("KVM" if kvm else "TCG (KVM not usable here)")
        assert result.message.endswith("under KVM)" if kvm else "under TCG)")
    # each node's own vc-out went to /root/vc-out.xml: the frontend the VC's, the compute its own
    uploads = [argv[i + 1 : i + 3] for i, word in enumerate(argv) if word == "upload"]
    assert uploads == [
        [str(whole), "/root/vc-out.xml"],
        [str(tmp_path / "calit2-compute-0.xml"), "/root/vc-out.xml"],
    ]


@pytest.mark.parametrize("kvm", [True, False])
def test_fix_tools_force_tcg_only_where_kvm_is_not_usable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kvm: bool
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(fixing, "run_tool", recorder)
    notes: list[str] = []
    source = raw_disk(tmp_path / "compute.img")
    fixer = ImageFixer(
        distro=Rocks6Client(),
        cache_dir=tmp_path / "cache",
        folder=VcFolder(tmp_path),
        staging="overlay",
        ctx=StageContext("vc", tmp_path, tmp_path / "vc-out.xml", notes.append, kvm_usable=kvm),
        call_stage=lambda stage, call, *args: call(*args),
        template_source=lambda node: source,
        is_running=lambda name: False,
    )
    report = fixer.fix([plan("vc-compute-0", "compute", source)], "virt-customize")
    [(argv, env)] = recorder.calls
    assert argv[0] == "virt-customize"
    assert ("LIBGUESTFS_BACKEND_SETTINGS" in env) is not kvm
    said = "KVM" if kvm else "TCG (KVM not usable here)"
    assert any(f"appliance under {said}" in line for line in report.lines), report.lines
    assert any(f"appliance under {said}" in note for note in notes), notes


@pytest.mark.parametrize("kvm", [True, False])
def test_the_boot_steps_journal_says_which_acceleration_its_appliance_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kvm: bool
) -> None:
    """A whole run (test:///default with real disk staging): the journal keeps the answer."""
    env = make_env(tmp_path / "site")
    recipe = env.recipe("allocate 1\nboot all\n")
    monkeypatch.setattr(RealDiskEngine, "host_info", lambda self: host(kvm))
    recorder = Recorder()
    monkeypatch.setattr(inject, "run_tool", recorder)
    prep = session.prepare(
        session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    )
    prep.runtime.engine = RealDiskEngine("test:///default")
    prep.runtime.disk_work = DiskWork.of(prep.runtime.engine, prep.runtime.site)
    run = session.start(prep)
    assert cli_run.finish(run, io.StringIO(), io.StringIO()) == 0
    [(_argv, env_vars)] = recorder.calls
    assert ("LIBGUESTFS_BACKEND_SETTINGS" in env_vars) is not kvm
    boot = steps_of(env.ledger(), run.journal.run_id)[-1]
    assert boot.products["appliance"] == ("KVM" if kvm else "TCG (KVM not usable here)")
