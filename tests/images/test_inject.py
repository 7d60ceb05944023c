"""Putting vc-out.xml into real images, and the config drive; tier 'vm' for libguestfs/QEMU."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.vmimage import MARKER_SELF, MARKER_UP, TestImage, build_test_image

from pragmash.errors import StepError
from pragmash.images.inject import inject_files, make_config_drive
from pragmash.images.marker import SYSTEMD_UNIT, SYSTEMD_WANTS, UPSTART_JOB, marker_files
from pragmash.images.staging import stage_image
from pragmash.images.tools import guestfs_env

VC_OUT = b"""<vc>
  <frontend>
    <public fqdn="calit2-119-222.ucsd.edu" ip="137.110.119.222" netmask="255.255.255.0"
            gw="137.110.119.1" mac="7a:77:6e:40:00:07"/>
    <private ip="10.1.1.1" netmask="255.255.0.0" mac="7a:77:6e:40:00:08"/>
  </frontend>
  <compute count="2">
    <node name="hosted-vm-0-1-0" mac="7a:77:6e:40:00:15" ip="10.1.1.254" cpus="1"/>
    <node name="hosted-vm-0-0-0" mac="7a:77:6e:40:00:14" ip="10.1.1.253" cpus="1"/>
  </compute>
  <network><dns ip="8.8.8.8" search="local" domain=""/></network>
</vc>
"""

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


@pytest.fixture(scope="module")
def test_image(tmp_path_factory: pytest.TempPathFactory) -> TestImage:
    return build_test_image(tmp_path_factory.mktemp("img"))


@pytest.fixture()
def guestfs_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("guestfish") is None:
        pytest.skip("guestfish is not installed")
    for key, value in guestfs_env(False).items():
        monkeypatch.setenv(key, value)


def guest_cat(disk: Path, fmt: str, *paths: str) -> list[str]:
    """Read files back from the image with a separate, read-only guestfish."""
    argv = ["guestfish", "--ro", f"--format={fmt}", "-a", str(disk), "-m", "/dev/sda1", "--"]
    for i, path in enumerate(paths):
        if i:
            argv.append(":")
        argv += ["cat", path, ":", "stat", path]
    out = subprocess.run(
        argv, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
    ).stdout
    return out.splitlines()


def test_config_drive_holds_the_files_under_its_label(tmp_path: Path) -> None:
    src = tmp_path / "vc-out.xml"
    src.write_bytes(VC_OUT)
    drive = make_config_drive(
        tmp_path / "out" / "config.img", {"/vc-out.xml": src, "/pragma/hosts": b"10.1.1.1 fe\n"}
    )
    label = subprocess.run(
        ["blkid", "-o", "value", "-s", "LABEL", str(drive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert label == "PRAGMASH"
    got = subprocess.run(
        ["mtype", "-i", str(drive), "::/vc-out.xml"],
        env=MTOOLS_ENV,
        capture_output=True,
        check=True,
    ).stdout
    assert got == VC_OUT
    hosts = subprocess.run(
        ["mtype", "-i", str(drive), "::/pragma/hosts"],
        env=MTOOLS_ENV,
        capture_output=True,
        check=True,
    ).stdout
    assert hosts == b"10.1.1.1 fe\n"
    assert not list((tmp_path / "out").glob("*.part"))


def test_relative_or_escaping_guest_paths_are_refused(tmp_path: Path) -> None:
    for bad in ("root/vc-out.xml", "/root/../etc/passwd", "/"):
        with pytest.raises(StepError, match="absolute file path"):
            make_config_drive(tmp_path / "c.img", {bad: b"x"})
    assert not (tmp_path / "c.img").exists()


def test_inject_into_missing_disk_is_a_pre_boot_error(tmp_path: Path) -> None:
    with pytest.raises(StepError) as err:
        inject_files(tmp_path / "nope.qcow2", {"/root/vc-out.xml": VC_OUT})
    assert err.value.stage == "vc_driver/pre_boot"
    assert "nope.qcow2" in err.value.message


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_inject_then_read_back(tmp_path: Path, test_image: TestImage) -> None:
    disk = stage_image(test_image.disk_gz, tmp_path / "vc", "compute-0", cache_dir=tmp_path / "c")
    extra = tmp_path / "motd"
    extra.write_text("welcome\n")
    log = tmp_path / "inject.log"
    inject_files(
        disk, {"/root/vc-out.xml": VC_OUT, "/etc/pragma/motd": extra}, timeout=300, log_path=log
    )
    lines = guest_cat(disk, "qcow2", "/root/vc-out.xml", "/etc/pragma/motd")
    text = "\n".join(lines)
    assert VC_OUT.decode().strip() in text
    assert "welcome" in text
    modes = [line.split(":")[1].strip() for line in lines if line.startswith("mode:")]
    assert modes and all(int(m) & 0o777 == 0o644 for m in modes)
    assert log.read_text().startswith("$ guestfish")
    # only the overlay changed: the cached base image has no vc-out.xml
    base = next((tmp_path / "c").glob("*.raw"))
    with pytest.raises(subprocess.CalledProcessError):
        guest_cat(base, "raw", "/root/vc-out.xml")


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_the_marker_unit_goes_in_enabled_with_vc_out(tmp_path: Path, test_image: TestImage) -> None:
    disk = stage_image(test_image.disk_gz, tmp_path / "vc", "compute-0", cache_dir=tmp_path / "c")
    inject_files(disk, {"/root/vc-out.xml": VC_OUT, **marker_files()}, timeout=300)
    argv = ["guestfish", "--ro", "--format=qcow2", "-a", str(disk), "-m", "/dev/sda1", "--"]
    argv += ["cat", SYSTEMD_UNIT, ":", "readlink", SYSTEMD_WANTS, ":", "cat", UPSTART_JOB]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    assert f"ExecStart=/bin/sh -c 'echo {MARKER_UP} > /dev/ttyS0'" in out
    assert "WantedBy=multi-user.target" in out
    assert f"\n{SYSTEMD_UNIT}\n" in out  # the .wants/ entry is a link to the unit, as enable makes
    assert "start on stopped rc RUNLEVEL=[2345]" in out


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_inject_into_wrong_partition_names_the_disk(tmp_path: Path, test_image: TestImage) -> None:
    disk = stage_image(test_image.disk_raw, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    with pytest.raises(StepError) as err:
        inject_files(disk, {"/root/vc-out.xml": VC_OUT}, partition="/dev/sda9", timeout=300)
    assert err.value.stage == "vc_driver/pre_boot"
    assert str(disk) in err.value.message and "/dev/sda9" in err.value.message
    assert err.value.output_tail


@pytest.mark.vm
@pytest.mark.usefixtures("guestfs_tcg")
def test_test_image_boots_and_reports_itself(tmp_path: Path, test_image: TestImage) -> None:
    """The builder's promise, checked with plain QEMU (no libvirtd): boot, marker, self line."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86 is not installed")
    disk = stage_image(test_image.disk_gz, tmp_path / "vc", "compute-0", cache_dir=tmp_path / "c")
    inject_files(disk, {"/root/vc-out.xml": VC_OUT}, timeout=300)
    serial = tmp_path / "serial.log"
    argv = [
        qemu,
        "-machine",
        "accel=tcg",
        "-m",
        "256",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-kernel",
        str(test_image.kernel),
        "-initrd",
        str(test_image.initrd),
        "-append",
        "console=ttyS0 root=/dev/vda1 rw",
        "-drive",
        f"file={disk},format=qcow2,if=virtio",
        # user-mode NIC with restrict=on: the guest sees a MAC, nothing leaves the host
        "-netdev",
        "user,id=n0,restrict=on",
        "-device",
        "virtio-net-pci,netdev=n0,mac=7a:77:6e:40:00:14",
        "-serial",
        f"file:{serial}",
    ]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    expected = f"{MARKER_SELF} name=hosted-vm-0-0-0 ip=10.1.1.253 mac=7a:77:6e:40:00:14"
    text = ""
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            text = serial.read_text(errors="replace") if serial.exists() else ""
            if expected in text:
                break
            time.sleep(1)
        assert proc.poll() is None, "the guest stopped instead of staying up"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert MARKER_UP in text
    assert 'name="hosted-vm-0-0-0"' in text  # vc-out.xml printed on the console
    assert expected in text
