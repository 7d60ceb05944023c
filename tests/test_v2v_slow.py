"""A full, successful virt-v2v conversion of a real Debian 12 guest (opt-in: vm + slow).

``fix all via virt-v2v`` must leave a usable converted disk in the staged overlay's
place. The busybox image of the other vm tests has no OS, so virt-v2v can only fail
on it; this test converts a real guest built by ``scripts/build-distro-image`` and
checks what the conversion did inside it. One conversion (minutes under TCG) is
shared by the tests of this module.

The image is never built here (that needs the Debian mirror): scripts/test builds
and caches it; without it the tests fail, saying how to build it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from distroimage import distro_image_path, qemu_info, read_guest

from pragmash.images.fixing import fix_image
from pragmash.images.staging import stage_image

# Read at import: conftest points XDG_CACHE_HOME at a per-test folder while tests run.
IMAGE = distro_image_path()
ROOT = "/dev/sda1"  # the image has one partition, the root file system
NODE = "fe"

pytestmark = [pytest.mark.vm, pytest.mark.slow]

GUEST_CHECKS = {
    "roots": "inspect-get-roots",
    "type": f"inspect-get-type {ROOT}",
    "distro": f"inspect-get-distro {ROOT}",
    "major": f"inspect-get-major-version {ROOT}",
    "modules": "cat /etc/initramfs-tools/modules",
    "boot": "ls /boot",
    "wants": "ls /etc/systemd/system/multi-user.target.wants",
    "agent": "is-file /usr/sbin/qemu-ga",
}


@dataclass(frozen=True)
class Conversion:
    """What one staged-then-fixed node left behind, and the guest before and after."""

    staged: Path
    returned: Path
    cache_dir: Path
    disks_dir: Path
    work_dir: Path
    log: Path
    lines: list[str]
    before: dict[str, str]
    after: dict[str, str]
    image_stat: os.stat_result


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def conversion(tmp_path_factory: pytest.TempPathFactory) -> Conversion:
    """Stage the image as pragmash does (an overlay), then fix it with virt-v2v."""
    if not IMAGE.is_file():
        pytest.fail(f"no Debian test image at {IMAGE}: run scripts/build-distro-image first")
    tmp = tmp_path_factory.mktemp("v2v-slow")
    image_stat = IMAGE.stat()
    before = read_guest(IMAGE, GUEST_CHECKS, fmt=str(qemu_info(IMAGE)["format"]))
    cache_dir = tmp / "cache"
    disks_dir = tmp / "disks"
    staged = stage_image(IMAGE, disks_dir, NODE, mode="overlay", cache_dir=cache_dir)
    lines: list[str] = []
    log = tmp / "logs" / f"{NODE}-virt-v2v.log"
    returned = fix_image(
        "virt-v2v", staged, tmp / "fix", timeout=1800, log_path=log, on_line=lines.append
    )
    after = read_guest(staged, GUEST_CHECKS)
    return Conversion(
        staged=staged,
        returned=returned,
        cache_dir=cache_dir,
        disks_dir=disks_dir,
        work_dir=tmp / "fix",
        log=log,
        lines=lines,
        before=before,
        after=after,
        image_stat=image_stat,
    )


def test_the_overlay_is_replaced_by_a_standalone_qcow2(conversion: Conversion) -> None:
    assert conversion.returned == conversion.staged
    info = qemu_info(conversion.staged)
    assert info["format"] == "qcow2"
    assert info.get("backing-filename") is None and info.get("full-backing-filename") is None
    assert info["virtual-size"] == qemu_info(IMAGE)["virtual-size"]
    assert not (conversion.work_dir / f"v2v-{NODE}").exists()  # virt-v2v's output dir is gone
    # the repository image under the overlay was only read
    after = IMAGE.stat()
    assert (after.st_size, after.st_mtime_ns) == (
        conversion.image_stat.st_size,
        conversion.image_stat.st_mtime_ns,
    )


def test_the_log_and_progress_show_the_conversion(conversion: Conversion) -> None:
    text = conversion.log.read_text(encoding="utf-8", errors="replace")
    assert text.startswith("$ virt-v2v -i disk")
    assert "Converting 12" in text and "to run on KVM" in text
    assert "This guest has virtio drivers installed" in text
    assert "Finishing off" in text
    # on_line gets virt-v2v's human lines (the JSON twins are parsed, not passed on)
    assert any("Inspecting the source" in line for line in conversion.lines)
    assert any("Copying disk 1/1" in line for line in conversion.lines)
    assert not any(line.startswith("{") for line in conversion.lines)


def test_the_converted_guest_is_debian_with_virtio_in_its_initramfs(
    conversion: Conversion,
) -> None:
    before, after = conversion.before, conversion.after
    for guest in (before, after):
        assert guest["roots"].split() == [ROOT]
        assert (guest["type"], guest["distro"], guest["major"]) == ("linux", "debian", "12")
    # virt-v2v lists the virtio drivers for initramfs-tools and rebuilds the initramfs,
    # keeping the old one as *.pre-v2v
    assert "added by virt-v2v" not in before["modules"]
    assert "added by virt-v2v" in after["modules"]
    assert {"virtio_blk", "virtio_pci", "virtio_net"} <= set(after["modules"].split())
    initrds = [name for name in after["boot"].split() if name.startswith("initrd.img-")]
    assert any(name.endswith(".pre-v2v") for name in initrds)
    assert not any(name.endswith(".pre-v2v") for name in before["boot"].split())
    assert any(not name.endswith(".pre-v2v") for name in initrds)
    # the image ships the QEMU guest agent (scripts/build-distro-image), so virt-v2v keeps
    # it and has nothing left to install at first boot (it would add a first-boot
    # service to install the agent into a guest without one)
    assert before["agent"] == after["agent"] == "true"
    assert "guestfs-firstboot.service" not in before["wants"].split()
    assert "guestfs-firstboot.service" not in after["wants"].split()


def test_staging_again_keeps_the_converted_disk(conversion: Conversion) -> None:
    disk = conversion.staged
    st = disk.stat()
    digest = sha256(disk)
    again = stage_image(
        IMAGE, conversion.disks_dir, NODE, mode="overlay", cache_dir=conversion.cache_dir
    )
    assert again == disk
    st_again = again.stat()
    assert (st_again.st_ino, st_again.st_size, st_again.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    assert sha256(again) == digest
    assert qemu_info(again).get("backing-filename") is None
