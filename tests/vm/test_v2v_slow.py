"""A 1+2 VC on one real Debian 12 image: ``fix all via virt-v2v`` converts it ONCE (vm + slow).

pragma_boot's fix converts "the VM image", not each node: a frontend and two computes
made from the same image need one virt-v2v run, one fixed base in the site's image
cache, and three small overlays on it. This module runs that fix through the CLI with
the real virt-v2v, counts the conversions, checks what the conversion did inside the
guest, and that a second VC from the same image converts nothing.

The busybox image of the other vm tests has no OS, so virt-v2v can only fail on it;
the guest here is built by ``scripts/build-distro-image`` (scripts/test builds and
caches it; without it the tests fail, saying how to build it). The one conversion
(minutes under TCG) is shared by the tests of this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli_merged
from support.debianvc import write_debian_vc
from support.distroimage import distro_image_path, qemu_info, read_guest, share_fixed_bases
from support.vmsite import write_site

from pragmash.images.basecache import base_meta
from pragmash.images.staging import backing_of
from pragmash.images.tools import tool_runs

# Read at import: conftest points XDG_CACHE_HOME at a per-test folder while tests run.
IMAGE = distro_image_path()
ROOT = "/dev/sda1"  # the image has one partition, the root file system
VC = "v2vone"

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
    """What the fix step left behind, the tools it ran, and the guest before and after."""

    root: Path
    site: Path
    output: str
    runs: Counter[str]
    disks: list[Path]
    bases: list[Path]
    before: dict[str, str]
    after: dict[str, str]
    image_stat: tuple[int, int]


def remove_networks(prefix: str) -> None:
    """The VCs' private networks, gone whatever the tests did (libvirt keeps them)."""
    conn = libvirt.open("qemu:///system")
    try:
        for net in conn.listAllNetworks():
            if net.name().startswith(prefix):
                if net.isActive():
                    net.destroy()
                if net.isPersistent():
                    net.undefine()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def conversion(
    tmp_path_factory: pytest.TempPathFactory, fixed_debian_bases: Path
) -> Iterator[Conversion]:
    remove_networks(VC)
    try:
        made = _convert(tmp_path_factory)
        share_fixed_bases(made.root / "cache", fixed_debian_bases)  # for test_vm_debian
        yield made
    finally:
        remove_networks(VC)


def _convert(tmp_path_factory: pytest.TempPathFactory) -> Conversion:
    if not IMAGE.is_file():
        pytest.fail(f"no Debian test image at {IMAGE}: run scripts/build-distro-image first")
    root = tmp_path_factory.mktemp("v2v-once")
    repo = root / "repo"
    write_debian_vc(repo, VC, IMAGE)  # frontend and compute templates on the same image
    write_debian_vc(repo, f"{VC}b", IMAGE)
    site = write_site(root, repo, up={})
    pool = '{ ip = "192.0.2.10", fqdn = "vmtest.example.org" }'
    two = pool + ', { ip = "192.0.2.11", fqdn = "vmtest2.example.org" }'
    site.write_text(site.read_text().replace(pool, two))  # room for the second VC
    stat = IMAGE.stat()
    before = read_guest(IMAGE, GUEST_CHECKS, fmt=str(qemu_info(IMAGE)["format"]))
    recipe = root / "fix.prg"
    recipe.write_text("allocate 2\nfix all via virt-v2v\n")
    env = pytest.MonkeyPatch()
    try:
        env.delenv("PRAGMASH_STATE_DIR", raising=False)  # the site's own state folder
        start = tool_runs()
        code, output = cli_merged(str(recipe), "--vcname", VC, "--site", str(site))
        runs = tool_runs() - start
        print(output)
        assert code == 0, output
    finally:
        env.undo()
    disks = sorted((root / "tmp" / VC / "disks").glob("*.qcow2"))
    bases = sorted((root / "cache" / "fixed").glob("*.qcow2"))
    after = read_guest(bases[0], GUEST_CHECKS) if bases else {}
    return Conversion(
        root, site, output, runs, disks, bases, before, after, (stat.st_size, stat.st_mtime_ns)
    )


def test_one_conversion_for_three_nodes_each_an_overlay_on_it(conversion: Conversion) -> None:
    assert conversion.runs["virt-v2v"] == 1, conversion.runs
    assert len(conversion.bases) == 1
    base = conversion.bases[0]
    assert [d.stem for d in conversion.disks] == [
        f"{VC}-compute-0",
        f"{VC}-compute-1",
        f"{VC}-frontend",
    ]
    assert {backing_of(d) for d in conversion.disks} == {base}
    assert all(d.stat().st_blocks * 512 < 4 * 2**20 for d in conversion.disks)
    info = qemu_info(base)
    assert info["format"] == "qcow2" and info.get("backing-filename") is None
    assert info["virtual-size"] == qemu_info(IMAGE)["virtual-size"]
    meta = base_meta(base)
    assert (meta["method"], meta["driver"]) == ("virt-v2v", "rocks6_client")
    # nothing half-made is left beside it, and the repository image was only read
    assert not [p for p in base.parent.iterdir() if p.name.startswith(".work-")]
    after = IMAGE.stat()
    assert (after.st_size, after.st_mtime_ns) == conversion.image_stat
    assert "1 image for 3 node(s) via virt-v2v, 1 fixed now" in conversion.output


def test_the_log_shows_the_conversion(conversion: Conversion) -> None:
    logs = list((conversion.root / "tmp" / VC).glob("fix-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text(encoding="utf-8", errors="replace")
    assert text.startswith("$ virt-v2v -i disk")
    assert "Converting 12" in text and "to run on KVM" in text
    assert "This guest has virtio drivers installed" in text
    assert "Finishing off" in text


def test_the_fixed_base_is_debian_with_virtio_in_its_initramfs(conversion: Conversion) -> None:
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
    assert any(not name.endswith(".pre-v2v") for name in initrds)
    # the image ships the QEMU guest agent (scripts/build-distro-image), so virt-v2v keeps
    # it and has nothing left to install at first boot (it would add a first-boot
    # service to install the agent into a guest without one)
    assert before["agent"] == after["agent"] == "true"
    assert "guestfs-firstboot.service" not in before["wants"].split()
    assert "guestfs-firstboot.service" not in after["wants"].split()


def test_a_second_vc_from_the_same_image_converts_nothing(
    conversion: Conversion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    recipe = conversion.root / "fix.prg"
    start = tool_runs()
    code, output = cli_merged(str(recipe), "--vcname", f"{VC}b", "--site", str(conversion.site))
    assert code == 0, output
    assert (tool_runs() - start)["virt-v2v"] == 0
    disks = sorted((conversion.root / "tmp" / f"{VC}b" / "disks").glob("*.qcow2"))
    assert len(disks) == 3 and {backing_of(d) for d in disks} == set(conversion.bases)
    code, listed = cli_merged("cache", "list", "--site", str(conversion.site))
    assert code == 0 and f"used by: {VC}, {VC}b" in listed, listed
    for vc in (VC, f"{VC}b"):
        assert cli_merged("clean", vc, "--site", str(conversion.site))[0] == 0
    code, pruned = cli_merged("cache", "prune", "--site", str(conversion.site))
    assert code == 0 and f"removed {conversion.bases[0]}" in pruned, pruned
