"""run_tool and the fix methods' tools with the real tools (virt-v2v and virt-customize are tier 'vm')."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from support.vmimage import TestImage, build_test_image

from pragmash.driver_api import NodePlan, StageContext
from pragmash.drivers.distros.rocks6_client import Rocks6Client
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.engine.steps.fix import ImageFixer
from pragmash.errors import StepError
from pragmash.images.fixing import METHODS, convert_v2v, customize
from pragmash.images.staging import stage_image
from pragmash.images.tools import guestfs_env, last_meaningful_line, missing_tool_error, run_tool

# --- run_tool ---------------------------------------------------------------------------


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_tool_streams_lines_to_callback_and_log(tmp_path: Path) -> None:
    seen: list[str] = []
    log = tmp_path / "logs" / "tool.log"
    result = run_tool(
        py("import sys\nfor i in range(30): print('line', i)\nprint('err', file=sys.stderr)"),
        timeout=30,
        log_path=log,
        on_line=seen.append,
        stage="test",
    )
    assert result.returncode == 0
    assert seen[0] == "line 0" and "err" in seen
    assert len(result.tail) == 20 and result.tail[-1] in ("err", "line 29")
    text = log.read_text()
    assert text.startswith("$ ") and "line 29" in text and "err" in text
    assert result.log_path == log


def test_run_tool_escapes_control_characters_but_logs_them(tmp_path: Path) -> None:
    seen: list[str] = []
    log = tmp_path / "tool.log"
    result = run_tool(
        py("print('\\x1b[31mred\\x1b[0m done')"),
        timeout=30,
        log_path=log,
        on_line=seen.append,
        stage="test",
    )
    assert result.tail == ["\\x1b[31mred\\x1b[0m done"] == seen
    assert "\x1b[31mred" in log.read_text()  # the log keeps the tool's own bytes


def test_run_tool_closes_stdin(tmp_path: Path) -> None:
    result = run_tool(py("import sys\nprint(repr(sys.stdin.read()))"), timeout=30, stage="test")
    assert result.tail == ["''"]


def test_run_tool_failure_carries_the_last_meaningful_line() -> None:
    code = "import sys\nprint('working')\nprint('error: the disk is on fire')\nprint()\nsys.exit(3)"
    with pytest.raises(StepError) as err:
        run_tool(py(code), timeout=30, stage="ve_driver/fix")
    assert err.value.stage == "ve_driver/fix"
    assert "failed (exit 3): error: the disk is on fire" in err.value.message
    assert err.value.output_tail == ["working", "error: the disk is on fire"]


def test_run_tool_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        f"c = subprocess.Popen(['sleep', '300'])\nopen({str(marker)!r}, 'w').write(str(c.pid))\n"
        "print('started', flush=True)\ntime.sleep(300)"
    )
    with pytest.raises(StepError, match="timed out"):
        run_tool(py(code), timeout=2, stage="test")
    child = int(marker.read_text())
    # the grandchild is gone too (or a zombie about to be reaped by init); SIGKILL is
    # delivered when the kernel next schedules it, so on a loaded machine give it a moment
    state = Path(f"/proc/{child}/stat")
    for _ in range(100):
        if not state.exists() or state.read_text().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the tool's child {child} outlived the timeout's kill")


def test_run_tool_names_the_debian_package_of_a_missing_tool() -> None:
    with pytest.raises(StepError) as err:
        run_tool(["mkfs.vfat-does-not-exist"], timeout=5, stage="s")
    assert "mkfs.vfat-does-not-exist is not installed" in err.value.message
    err2 = missing_tool_error("virt-v2v", "ve_driver/fix")
    assert "Debian package: virt-v2v" in err2.message
    assert err2.stage == "ve_driver/fix"
    assert "apt-get install virt-v2v" in (err2.hint or "")


def test_guestfs_env_forces_tcg_unless_kvm_works() -> None:
    assert guestfs_env(False) == {
        "LIBGUESTFS_BACKEND": "direct",
        "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg",
    }
    assert guestfs_env(True) == {"LIBGUESTFS_BACKEND": "direct"}


def test_last_meaningful_line_prefers_the_error() -> None:
    lines = ["virt-x: error: no OS found", "", "If reporting bugs, run with -v"]
    assert last_meaningful_line(lines) == "virt-x: error: no OS found"
    assert last_meaningful_line(["a", "b", "  "]) == "b"
    assert last_meaningful_line([]) == "(no output)"


# --- the fix step's checks ----------------------------------------------------------


def fixer(tmp_path: Path) -> ImageFixer:
    tmpl = tmp_path / "absent.img"
    return ImageFixer(
        distro=Rocks6Client(),
        cache_dir=tmp_path / "cache",
        folder=VcFolder(tmp_path),
        staging="overlay",
        ctx=StageContext("vc", tmp_path, tmp_path / "vc-out.xml"),
        call_stage=lambda stage, call, *args: call(*args),
        template_source=lambda node: tmpl,
        is_running=lambda name: False,
    )


def node(name: str) -> NodePlan:
    return NodePlan(name, "compute", 0, 1, "<domain/>", (), (), ("absent.img",), "qemu")


def test_unknown_method_lists_the_methods(tmp_path: Path) -> None:
    with pytest.raises(StepError) as err:
        fixer(tmp_path).fix([node("c0")], "virt-magic")
    assert "'virt-magic'" in err.value.message
    for method in METHODS:
        assert method in err.value.message


def test_fix_of_a_missing_image_names_it(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"absent\.img not found"):
        fixer(tmp_path).fix([node("c0")], "virt-customize")
    assert not (tmp_path / "cache" / "fixed").exists()


@pytest.fixture(scope="module")
def test_image(tmp_path_factory: pytest.TempPathFactory) -> TestImage:
    return build_test_image(tmp_path_factory.mktemp("img"))


@pytest.fixture()
def guestfs_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("virt-v2v") is None or shutil.which("guestfish") is None:
        pytest.skip("libguestfs tools are not installed")
    for key, value in guestfs_env(False).items():
        monkeypatch.setenv(key, value)


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_virt_v2v_on_busybox_image_says_no_root_device(
    tmp_path: Path, test_image: TestImage
) -> None:
    disk = stage_image(test_image.disk_gz, tmp_path / "vc", "compute-0", cache_dir=tmp_path / "c")
    lines: list[str] = []
    log = tmp_path / "fix.log"
    with pytest.raises(StepError) as err:
        convert_v2v(
            disk,
            tmp_path / "out",
            timeout=300,
            log_path=log,
            on_line=lines.append,
            kvm_usable=False,
        )
    assert err.value.stage == "ve_driver/fix"
    assert err.value.message.startswith("virt-v2v failed (exit 1): ")
    assert "No root device found" in err.value.message
    assert err.value.output_tail
    assert any("Inspecting the source" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)  # JSON events were translated
    assert "No root device found" in log.read_text()
    assert disk.exists()  # the input is kept for debugging


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_virt_customize_failure_shows_the_tools_reason(
    tmp_path: Path, test_image: TestImage
) -> None:
    disk = stage_image(test_image.disk_raw, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    with pytest.raises(StepError) as err:
        customize(disk, timeout=300, log_path=None, on_line=None, kvm_usable=False)
    assert "virt-customize failed" in err.value.message
    assert "no operating systems were found" in err.value.message
