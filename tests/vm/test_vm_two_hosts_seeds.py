"""Tier 3 over two hosts, settings as NoCloud seeds: a seed sent to a ``pool`` host.

The two hosts of tests/vm/test_vm_two_hosts.py (host 2 shares no disks with the head
node: only libvirt's storage API reaches its pool), and the same 1+2 VC, but the site
says ``[delivery] vc.vmtest = "seed"``. The compute placed on host 2 must boot with its
seed sent there as a volume of the pool (``NODE.cidata.img``, byte for byte the one the
head node wrote), attached read-only as ``vdb``; the nodes on host 1 use theirs from
the VC's folder. ``clean`` removes the seed volume with the disk. (The busybox guest
has no cloud-init: it comes up without reading its seed; tests/vm/test_vm_cloud_init.py
has a guest that reads one.)
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support import secondhost
from support.clirun import cli_merged, pragmash_process
from support.secondhost import SecondHost
from support.vmimage import MARKER_UP, build_test_image
from support.vmsite import boot_recipe, console_lines, write_repository, write_two_host_site

from pragmash.drivers.libvirt.storage import BASE_PREFIX, read_tail
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site

pytestmark = [pytest.mark.vm, pytest.mark.guest_net]

RECIPE = boot_recipe(2)


def seed_source(xml: str) -> tuple[str, str]:
    """The read-only disk of a domain: its source file and target device."""
    for disk in etree.fromstring(xml.encode()).findall("devices/disk"):
        if disk.find("readonly") is not None:
            return disk.find("source").get("file"), disk.find("target").get("dev")  # type: ignore[union-attr,return-value]
    raise AssertionError("no read-only disk")


def test_a_seed_goes_to_a_pool_host_as_a_volume(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trunked_host2: SecondHost,
    system_conn: libvirt.virConnect,
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    site_path = write_two_host_site(tmp_path, repo, trunked_host2)
    site_path.write_text(site_path.read_text() + '\n[delivery]\nvc.vmtest = "seed"\n')
    recipe = tmp_path / "seeded.prg"
    recipe.write_text(RECIPE)
    conn2 = libvirt.open(trunked_host2.uri)
    try:
        code, said = cli_merged(str(recipe), "--vcname", "vmtest", "--site", str(site_path))
        print(said)
        assert code == 0, said
        assert "NoCloud seed made" in said

        held = current_allocation(Ledger(load_site(site_path, {})), "vmtest")
        assert held is not None
        on2 = [n for n in held.nodes if n.host == "host2"]
        assert len(on2) == 1 and on2[0].role == "compute", [(n.name, n.host) for n in held.nodes]
        far = on2[0]
        seeds = tmp_path / "tmp" / "vmtest" / "seeds"
        assert f"sending {far.name}'s NoCloud seed" in said

        # host 2: the seed is a volume of its pool, the one the head node wrote
        pool = conn2.storagePoolLookupByName("pragmash")
        pool.refresh(0)
        volumes = {v.name(): v for v in pool.listAllVolumes(0)}
        volume = volumes[f"{far.name}.cidata.img"]
        assert not Path(volume.path()).exists(), "host 2's pool must be invisible to the head node"
        local = (seeds / f"{far.name}.cidata.img").read_bytes()
        assert read_tail(conn2, volume.path(), len(local) + 1) == local
        assert seed_source(conn2.lookupByName(far.name).XMLDesc(0)) == (volume.path(), "vdb")
        far_log = read_tail(conn2, f"{secondhost.POOL_DIR}/{far.name}.console.log", 1 << 20)
        assert far_log is not None and MARKER_UP in far_log.decode(errors="replace")

        # host 1: each node's seed from the VC's folder
        for node in held.nodes:
            if node.host != "host1":
                continue
            xml = system_conn.lookupByName(node.name).XMLDesc(0)
            assert seed_source(xml) == (str(seeds / f"{node.name}.cidata.img"), "vdb")
            log = tmp_path / "tmp" / "vmtest" / f"{node.name}.console.log"
            assert console_lines(log, MARKER_UP, timeout=120), f"{node.name} never came up"

        pragmash_process("clean", "vmtest", "--site", str(site_path))
        assert conn2.listAllDomains(0) == []
        pool.refresh(0)
        left = {v.name() for v in pool.listAllVolumes(0)}
        bases = {n for n in left if n.startswith(BASE_PREFIX)}
        assert left == bases, "node disk, seed and console log removed"
        assert not seeds.exists()
    finally:
        conn2.close()
