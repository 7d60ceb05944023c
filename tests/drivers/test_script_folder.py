"""The seed driver folder adapter: pragma_boot's scripts called with pragma_boot's arguments."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from pragmash.driver_api import DistroDriver, NodePlan, StageContext
from pragmash.drivers.pragma_boot.folder import ScriptFolderDriver
from pragmash.engine.run.registry import load_distro
from pragmash.errors import StepError
from pragmash.vc.config.site import load_site

SEED = Path(__file__).parents[1] / "data" / "seed_driver"

# The argument orders as the seed's pragma_boot README states them, stage by stage:
#   ve_driver/allocate       num_compute vc_out_path
#   vc_driver/pre_fix_driver path
#   ve_driver/fix_driver     xml_file eth0,eth1 temp_directory
#   vc_driver/post_fix_driver path
#   vc_driver/pre_boot       file_path vc_out host_name
#   ve_driver/boot           file_path xml_file vc_out host_name
SEED_ORDERS = {
    "allocate": ["num_compute", "vc_out_path"],
    "pre_fix_driver": ["path"],
    "fix_driver": ["xml_file", "eth0,eth1", "temp_directory"],
    "post_fix_driver": ["path"],
    "pre_boot": ["file_path", "vc_out", "host_name"],
    "boot": ["file_path", "xml_file", "vc_out", "host_name"],
}


def _node(name: str = "vc-frontend") -> NodePlan:
    return NodePlan(
        name=name,
        role="frontend",
        index=None,
        cpus=1,
        template_xml="<domain/>",
        macs=("7a:77:6e:00:00:01",),
        networks=("default",),
        disks=("/images/vc-frontend.img",),
        domain_type="qemu",
    )


def _calls(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("SEED_DRIVER_LOG", str(log))
    return log


@pytest.fixture
def ctx(tmp_path: Path) -> StageContext:
    notes: list[str] = []
    context = StageContext(
        vcname="vc", temp_dir=tmp_path / "tmp", vc_out_path=tmp_path / "vc-out.xml"
    )
    context.note = notes.append
    context.temp_dir.mkdir()
    return context


def test_is_a_distro_driver_named_after_its_folder() -> None:
    driver = ScriptFolderDriver(SEED)
    assert isinstance(driver, DistroDriver)
    assert driver.name == "seed_driver"


def test_distro_stages_get_the_seed_argument_order(
    record: Path, ctx: StageContext, tmp_path: Path
) -> None:
    driver = ScriptFolderDriver(SEED, timeout=30)
    disk = tmp_path / "disk with space.img"
    vc_out = tmp_path / "vc-out.xml"
    results = [
        driver.pre_fix(_node(), disk, ctx),
        driver.post_fix(_node(), disk, ctx),
        driver.pre_boot(_node("vc-compute-0"), disk, vc_out, ctx),
    ]
    assert [r.outcome for r in results] == ["done", "done", "done"]
    assert _calls(record) == [
        f"pre_fix_driver [{disk}]",
        f"post_fix_driver [{disk}]",
        f"pre_boot [{disk}] [{vc_out}] [vc-compute-0]",
    ]


def test_engine_stages_get_the_seed_argument_order(record: Path, tmp_path: Path) -> None:
    driver = ScriptFolderDriver(SEED, timeout=30)
    vc_out = tmp_path / "out" / "vc-out.xml"
    vc_out.parent.mkdir()
    allocated = driver.allocate(3, vc_out)
    driver.fix(tmp_path / "vm.xml", "eth0,eth1", tmp_path / "tmpdir")
    driver.boot(tmp_path / "vm.img", tmp_path / "vm.xml", vc_out, "vc-compute-1")
    assert allocated.products["vc_out"] == str(vc_out)
    assert vc_out.read_text(encoding="utf-8").startswith("<vc>")
    assert _calls(record) == [
        f"allocate [3] [{vc_out}]",
        f"fix_driver [{tmp_path / 'vm.xml'}] [eth0,eth1] [{tmp_path / 'tmpdir'}]",
        f"boot [{tmp_path / 'vm.img'}] [{tmp_path / 'vm.xml'}] [{vc_out}] [vc-compute-1]",
    ]


def test_each_call_matches_the_seed_table(record: Path, ctx: StageContext, tmp_path: Path) -> None:
    """Every stage is called with exactly as many arguments as the seed names, in its order."""
    driver = ScriptFolderDriver(SEED, timeout=30)
    values = {
        "num_compute": "2",
        "vc_out_path": str(tmp_path / "vc-out.xml"),
        "path": "/d/path.img",
        "xml_file": "/d/vm.xml",
        "eth0,eth1": "eth0,eth1",
        "temp_directory": "/d/tmp",
        "file_path": "/d/path.img",
        "vc_out": str(tmp_path / "vc-out.xml"),
        "host_name": "vc-frontend",
    }
    driver.allocate(2, Path(values["vc_out_path"]))
    driver.pre_fix(_node(), Path(values["path"]), ctx)
    driver.fix(Path(values["xml_file"]), "eth0,eth1", Path(values["temp_directory"]))
    driver.post_fix(_node(), Path(values["path"]), ctx)
    driver.pre_boot(_node(), Path(values["file_path"]), Path(values["vc_out"]), ctx)
    driver.boot(
        Path(values["file_path"]), Path(values["xml_file"]), Path(values["vc_out"]), "vc-frontend"
    )
    expected = [
        stage + "".join(f" [{values[arg]}]" for arg in args) for stage, args in SEED_ORDERS.items()
    ]
    assert _calls(record) == expected


def test_output_is_captured_not_printed(
    record: Path, ctx: StageContext, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    notes: list[str] = []
    ctx.note = notes.append
    result = ScriptFolderDriver(SEED, timeout=30).pre_boot(
        _node(), tmp_path / "d.img", tmp_path / "vc-out.xml", ctx
    )
    assert "pre_boot: stdout line" in result.output_tail
    assert "pre_boot: stderr line" in result.output_tail
    assert "pre_boot: pre_boot: stdout line" in notes
    log = Path(result.products["log"])
    assert "pre_boot: stderr line" in log.read_text(encoding="utf-8")
    captured = capfd.readouterr()
    assert "stdout line" not in captured.out + captured.err


def test_missing_optional_stage_is_skipped(ctx: StageContext, tmp_path: Path) -> None:
    folder = tmp_path / "only_boot"
    folder.mkdir()
    result = ScriptFolderDriver(folder).pre_fix(_node(), tmp_path / "d.img", ctx)
    assert result.outcome == "skipped"
    assert "has no pre_fix_driver" in result.message
    assert str(folder) in result.message


def test_missing_required_stage_names_folder_and_file(ctx: StageContext, tmp_path: Path) -> None:
    folder = tmp_path / "no_pre_boot"
    folder.mkdir()
    with pytest.raises(StepError) as info:
        ScriptFolderDriver(folder).pre_boot(_node(), tmp_path / "d.img", tmp_path / "o.xml", ctx)
    assert str(folder) in info.value.message
    assert "has no pre_boot" in info.value.message
    assert info.value.stage == "vc_driver/pre_boot"
    assert "file_path vc_out host_name" in (info.value.hint or "")


def test_not_executable_says_chmod(ctx: StageContext, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    script = folder / "pre_fix_driver"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o644)
    with pytest.raises(StepError) as info:
        ScriptFolderDriver(folder).pre_fix(_node(), tmp_path / "d.img", ctx)
    assert "not executable" in info.value.message
    assert f"chmod +x {script}" in (info.value.hint or "")


def test_failing_script_keeps_its_last_words(ctx: StageContext, tmp_path: Path) -> None:
    folder = tmp_path / "failing"
    folder.mkdir()
    script = folder / "pre_boot"
    script.write_text("#!/bin/sh\necho 'cannot mount /dev/sda1' >&2\nexit 7\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(StepError) as info:
        ScriptFolderDriver(folder).pre_boot(_node(), tmp_path / "d.img", tmp_path / "o.xml", ctx)
    assert str(script) in info.value.message
    assert "exit 7" in info.value.message
    assert "cannot mount /dev/sda1" in info.value.output_tail
    assert info.value.stage == "vc_driver/pre_boot"


def test_timeout_kills_the_script(ctx: StageContext, tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    script = folder / "post_fix_driver"
    script.write_text("#!/bin/sh\necho started\nexec sleep 30\n", encoding="utf-8")
    script.chmod(0o755)
    with pytest.raises(StepError) as info:
        ScriptFolderDriver(folder, timeout=0.5).post_fix(_node(), tmp_path / "d.img", ctx)
    assert "timed out" in info.value.message
    assert "started" in info.value.output_tail


def test_allocate_that_writes_nothing_is_a_failure(tmp_path: Path) -> None:
    folder = tmp_path / "lazy"
    folder.mkdir()
    script = folder / "allocate"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o755)
    with pytest.raises(StepError) as info:
        ScriptFolderDriver(folder).allocate(1, tmp_path / "vc-out.xml")
    assert "wrote no vc-out.xml" in info.value.message


def test_registry_wraps_a_trusted_site_folder(tmp_path: Path) -> None:
    drivers = tmp_path / "drivers"
    shutil.copytree(SEED, drivers / "seed_site")
    site_file = tmp_path / "site.toml"
    site_file.write_text(
        (Path(__file__).parents[1] / "data" / "sites" / "site-a.toml").read_text(encoding="utf-8")
        + '\n[drivers]\nfolders = ["drivers"]\n',
        encoding="utf-8",
    )
    site = load_site(site_file, {})
    driver = load_distro("seed_site", site, where="test")
    assert isinstance(driver, ScriptFolderDriver)
    assert driver.folder == drivers / "seed_site"
