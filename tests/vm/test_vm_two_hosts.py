"""Tier 3 over two hosts: one VC's nodes on two libvirtds that share no disks.

Host 1 is the test run's libvirtd (``qemu:///system`` in scripts/test's network
namespace), whose disks the head node shares (``storage = "shared"``). Host 2 is
tests/support/secondhost.py's libvirtd in its own mount and network namespace, reached over
``qemu+ssh://`` through an sshd on loopback, with ``storage = "pool"``: its
``/var/lib/libvirt`` and ``/tmp`` are its own, so its compute's disk (and vc-out.xml
in it) can only have come through libvirt's storage API. The VC's private network is
``bridge`` mode: a bridge for its VLAN made beforehand in each namespace, the two
joined by a veth pair (the site's trunk). A 1+2 VC is spread over both; every guest
prints the vc-out.xml entries it finds for itself, and the compute on host 2 pings
the frontend on host 1. ``clean`` then leaves no domain and no node volume on either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import libvirt
import pytest
from support import secondhost
from support.clirun import cli_merged, pragmash_process
from support.secondhost import SecondHost
from support.vmimage import MARKER_SELF, MARKER_UP, NET_INIT, build_test_image
from support.vmsite import (
    CONSOLE_SELF,
    boot_recipe,
    console_lines,
    write_repository,
    write_two_host_site,
)

from pragmash.drivers.libvirt.storage import BASE_PREFIX, read_tail
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site

pytestmark = [pytest.mark.vm, pytest.mark.guest_net]

RECIPE = boot_recipe(2, CONSOLE_SELF)

# NET_INIT, and first the PRAGMASH-SELF lines of the default guest: what vc-out.xml
# says of each of the node's interfaces
SELF_REPORT = """ip link set lo up
if [ -f /root/vc-out.xml ]; then
    for f in /sys/class/net/*/address; do
        mac=$(cat "$f")
        [ "$mac" = "00:00:00:00:00:00" ] && continue
        awk -v want="$mac" -f /etc/pragmash-self.awk /root/vc-out.xml > "$out"
    done
fi
"""
INIT = NET_INIT.replace("ip link set lo up\n", SELF_REPORT, 1)


def test_one_vc_over_two_hosts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trunked_host2: SecondHost,
    system_conn: libvirt.virConnect,
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image", init_script=INIT)
    repo = write_repository(tmp_path, image)
    site_path = write_two_host_site(tmp_path, repo, trunked_host2)
    recipe = tmp_path / "two.prg"
    recipe.write_text(RECIPE)
    conn2 = libvirt.open(trunked_host2.uri)
    try:
        code, said = cli_merged(str(recipe), "--vcname", "vmtest", "--site", str(site_path))
        print(said)
        assert code == 0, said
        assert "sent to pool pragmash once for this host" in said

        held = current_allocation(Ledger(load_site(site_path, {})), "vmtest")
        assert held is not None
        status = json.loads(
            pragmash_process("status", "vmtest", "--site", str(site_path), "--json")
        )
        hosts = {n["name"]: n["host"] for n in status["nodes"]}
        assert hosts[held.frontend.name] == "host1", hosts
        on2 = [c for c in held.computes if hosts[c.name] == "host2"]
        on1 = [c for c in held.computes if hosts[c.name] == "host1"]
        assert len(on2) == 1 and len(on1) == 1, hosts
        far = on2[0]

        # each domain is where the ledger says, and nowhere else
        assert {d.name() for d in conn2.listAllDomains(0)} == {far.name}
        assert far.name not in {d.name() for d in system_conn.listAllDomains(0)}

        # host 2's disk came as volumes: the base once, the node's overlay backed by it
        pool = conn2.storagePoolLookupByName("pragmash")
        pool.refresh(0)
        volumes = {v.name(): v for v in pool.listAllVolumes(0)}
        bases = [n for n in volumes if n.startswith(BASE_PREFIX) and not n.endswith(".done")]
        assert len(bases) == 1, sorted(volumes)
        disk = volumes[f"{far.name}.qcow2"]
        assert f"<path>{volumes[bases[0]].path()}</path>" in disk.XMLDesc(0)
        assert not Path(disk.path()).exists(), "host 2's pool must be invisible to the head node"
        xml = conn2.lookupByName(far.name).XMLDesc(0)
        assert f"<source file='{disk.path()}'" in xml, xml

        # every guest reports its own vc-out.xml entries
        temp = tmp_path / "tmp" / "vmtest"
        consoles: dict[str, str] = {}
        for node in (held.frontend, on1[0]):
            lines = console_lines(temp / f"{node.name}.console.log", MARKER_UP, timeout=120)
            assert lines, f"{node.name} never came up"
            consoles[node.name] = (temp / f"{node.name}.console.log").read_text(errors="replace")
        assert not (temp / f"{far.name}.console.log").exists()
        far_log = read_tail(conn2, f"{secondhost.POOL_DIR}/{far.name}.console.log", 1 << 20)
        assert far_log is not None
        consoles[far.name] = far_log.decode(errors="replace")
        for lease in held.nodes:
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in re.finditer(
                    rf"{MARKER_SELF} name=(\S*) ip=(\S*) mac=(\S*)", consoles[lease.name]
                )
            }
            name = lease.name if lease.role == "compute" else held.public.fqdn
            assert found.get(lease.macs[0]) == (name, lease.private_ip), consoles[lease.name]

        # the compute on host 2 reached the frontend on host 1, over the trunk
        fe_ip = held.frontend.private_ip
        assert f"PRAGMASH-PING {fe_ip} ok" in consoles[far.name], consoles[far.name]
        replies = re.findall(r"reply from (\S+) \[", consoles[far.name])
        assert replies and set(replies) == {fe_ip}, consoles[far.name]

        hosts_text = pragmash_process("hosts", "--site", str(site_path))
        status_text = pragmash_process("status", "vmtest", "--site", str(site_path))
        print(f"== pragmash hosts ==\n{hosts_text}\n== pragmash status vmtest ==\n{status_text}")
        assert "host2" in hosts_text and far.name in status_text

        pragmash_process("clean", "vmtest", "--site", str(site_path))
        assert conn2.listAllDomains(0) == []
        pool.refresh(0)
        left = {v.name() for v in pool.listAllVolumes(0)}
        assert left == {bases[0], bases[0] + ".done"}, "node disk and console log removed"
    finally:
        conn2.close()
