"""Tier 3 with guest traffic: each VC's private network keeps VCs with equal addresses apart.

Every Rocks VC uses the same private addresses. Two VCs booted at once on one site
each get their own isolated libvirt network; each compute configures its address
from /root/vc-out.xml, pings its frontend and sends broadcast ARP requests for the
frontend's address: every reply must come from its own frontend's MAC (on one shared
network, both frontends answer). ``bridge`` mode is run on bridges made beforehand.

Guests talk only inside the network namespace scripts/test made for libvirtd
(``guest_net``): the tests check that the VC's bridge is not in this namespace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from support.netns import running_netns
from support.vmimage import MARKER_UP, NET_INIT, build_test_image
from support.vmsite import console_lines, write_repository, write_site

from pragmash.drivers.libvirt import network as libvirt_network
from pragmash.errors import StepError
from pragmash.store.allocation import Allocation, current_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.private_network import PrivateNetworkSetting
from pragmash.vc.config.site import load_site

pytestmark = [pytest.mark.vm, pytest.mark.guest_net]

RECIPE = """\
allocate 1
fix all via none
boot frontend
wait frontend up timeout 4m
boot compute
wait compute up timeout 4m
"""

_ARP = re.compile(r"reply from (\S+) \[([0-9A-Fa-f:]+)\]")


def mac_of(text: str) -> str:
    """busybox prints MACs as ether_ntoa does (``7a:77:6f:0:0:1``): pad each octet."""
    return ":".join(f"{int(octet, 16):02x}" for octet in text.split(":"))


def netns() -> str:
    name = running_netns()
    assert name is not None  # guest_net tests run only then (conftest)
    return name


def in_netns(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns(), *argv], capture_output=True, text=True, check=False
    )


def write_two_vc_site(root: Path, image_root: Path, extra: str) -> Path:
    """VCs vmtest-a and vmtest-b: the same vc-in.xml, so the same private addresses."""
    image = build_test_image(image_root, init_script=NET_INIT)
    repo = write_repository(root, image)
    (repo / "vcdb.txt").write_text("vmtest-a,vmtest/vc-in.xml\nvmtest-b,vmtest/vc-in.xml\n")
    site = write_site(root, repo, up={"vmtest-a": ["marker"], "vmtest-b": ["marker"]})
    text = site.read_text().replace(
        'public = [ { ip = "192.0.2.10", fqdn = "vmtest.example.org" } ]',
        'public = [ { ip = "192.0.2.10", fqdn = "vmtest-a.example.org" },\n'
        '           { ip = "192.0.2.11", fqdn = "vmtest-b.example.org" } ]\n' + extra,
    )
    site.write_text(text)
    return site


def spawn(site: Path, recipe: Path, vcname: str) -> subprocess.Popen[str]:
    argv = [str(recipe), "--vcname", vcname, "--site", str(site)]
    return subprocess.Popen(
        [sys.executable, "-m", "pragmash.ui.cli.main", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pragmash.ui.cli.main", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def check_compute_reached_its_own_frontend(
    held: Allocation, temp: Path, vcname: str
) -> tuple[str, list[str]]:
    """The compute's console: pinged its frontend, and only its frontend answered ARP."""
    frontend, compute = held.frontend, held.computes[0]
    console = temp / vcname / f"{compute.name}.console.log"
    assert console_lines(console, MARKER_UP, timeout=120), f"{compute.name} never came up"
    text = console.read_text(errors="replace")
    own = rf"PRAGMASH-NET role=compute dev=\S+ ip={re.escape(compute.private_ip)} mac="
    assert re.search(own + re.escape(compute.macs[0]), text), text
    assert f"PRAGMASH-PING {frontend.private_ip} ok" in text, text
    replies = [
        (m.group(1), mac_of(m.group(2)))
        for line in text.splitlines()
        if line.startswith("PRAGMASH-ARP") and (m := _ARP.search(line))
    ]
    assert replies, text
    assert {mac for _ip, mac in replies} == {frontend.macs[0]}, (replies, frontend.macs)
    assert {ip for ip, _mac in replies} == {frontend.private_ip}
    fe_console = (temp / vcname / f"{frontend.name}.console.log").read_text(errors="replace")
    own = rf"PRAGMASH-NET role=frontend dev=\S+ ip={re.escape(frontend.private_ip)} mac="
    assert re.search(own + re.escape(frontend.macs[0]), fe_console), fe_console
    return text, [mac for _ip, mac in replies]


def test_two_vcs_with_the_same_addresses_each_reach_only_their_own_frontend(
    tmp_path: Path, system_conn: libvirt.virConnect
) -> None:
    site_path = write_two_vc_site(tmp_path, tmp_path / "image", 'private = "isolated"\n')
    recipe = tmp_path / "net.prg"
    recipe.write_text(RECIPE)
    procs = {vc: spawn(site_path, recipe, vc) for vc in ("vmtest-a", "vmtest-b")}  # at once
    try:
        outputs = {vc: proc.communicate(timeout=900) for vc, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for vc, proc in procs.items():
        assert proc.returncode == 0, (vc, outputs[vc])
    site = load_site(site_path, {})
    ledger = Ledger(site)
    held = {vc: current_allocation(ledger, vc) for vc in procs}
    a, b = held["vmtest-a"], held["vmtest-b"]
    assert a is not None and b is not None
    # the same private addresses, different VLANs, networks and bridges
    assert [n.private_ip for n in a.nodes] == [n.private_ip for n in b.nodes]
    assert a.vlan != b.vlan
    bridges = {}
    for vc, alloc in (("vmtest-a", a), ("vmtest-b", b)):
        net = system_conn.networkLookupByName(f"{vc}-private")
        assert net.isActive()
        bridges[vc] = net.bridgeName()
        assert bridges[vc] == f"pragma{alloc.vlan}"
        # inside the test run's namespace, not this one: nothing can leave the machine
        assert not Path(f"/sys/class/net/{bridges[vc]}").exists()
        assert in_netns("ip", "link", "show", bridges[vc]).returncode == 0
    consoles = {}
    for vc, alloc in (("vmtest-a", a), ("vmtest-b", b)):
        text, _macs = check_compute_reached_its_own_frontend(alloc, tmp_path / "tmp", vc)
        consoles[vc] = text
    keep = os.environ.get("PRAGMASH_KEEP_CONSOLES")
    if keep:  # for a human to read (the note pastes them)
        Path(keep).write_text(
            "".join(f"== {vc} compute console ==\n{text}\n" for vc, text in consoles.items())
        )
    status = cli("status", "vmtest-a", "--site", str(site_path))
    assert f"private network vmtest-a-private (isolated, bridge {bridges['vmtest-a']}" in (
        status.stdout
    )
    for vc in procs:
        cleaned = cli("clean", vc, "--site", str(site_path))
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"removed network {vc}-private" in cleaned.stdout
    left = [n.name() for n in system_conn.listAllNetworks() if n.name().startswith("vmtest")]
    assert left == []
    for bridge in bridges.values():
        assert in_netns("ip", "link", "show", bridge).returncode != 0  # the bridge went too


@pytest.fixture
def site_bridge() -> Iterator[str]:
    """The site's bridge for VLAN 10, made beforehand (as a site makes one per VLAN)."""
    name = "pmbr10"
    made = in_netns("ip", "link", "add", name, "type", "bridge")
    assert made.returncode == 0, made.stderr
    assert in_netns("ip", "link", "set", name, "up").returncode == 0
    yield name
    in_netns("ip", "link", "delete", name)


def test_bridge_mode_puts_a_vc_on_the_sites_bridge_for_its_vlan(
    tmp_path: Path, system_conn: libvirt.virConnect, site_bridge: str
) -> None:
    site_path = write_two_vc_site(
        tmp_path, tmp_path / "image", 'private = "bridge"\nprivate_bridge = "pmbr{vlan}"\n'
    )
    site_path.write_text(site_path.read_text().replace("vlans = [10, 20]", "vlans = [10, 11]"))
    recipe = tmp_path / "net.prg"
    recipe.write_text(RECIPE)
    result = cli(str(recipe), "--vcname", "vmtest-a", "--site", str(site_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "private interfaces join bridge pmbr10 (site bridge for VLAN 10)" in result.stdout
    held = current_allocation(Ledger(load_site(site_path, {})), "vmtest-a")
    assert held is not None and held.vlan == 10
    # both private interfaces are ports of the site's bridge; no libvirt network was made
    ports = in_netns("ip", "-o", "link", "show", "master", site_bridge).stdout
    assert ports.count("master pmbr10") == 2, ports
    assert not [n for n in system_conn.listAllNetworks() if n.name().startswith("vmtest")]
    text, _macs = check_compute_reached_its_own_frontend(held, tmp_path / "tmp", "vmtest-a")
    keep = os.environ.get("PRAGMASH_KEEP_CONSOLES")
    if keep:
        with open(keep, "a") as handle:
            handle.write(f"== vmtest-a compute console (bridge mode) ==\n{text}\n")
    # a second VC would need pmbr11, which the site has not made: refused before allocating
    other = cli(str(recipe), "--vcname", "vmtest-b", "--site", str(site_path))
    assert other.returncode == 2, other.stderr
    assert "[network] private_bridge: no interface pmbr11 (VLAN 11)" in other.stderr
    assert current_allocation(Ledger(load_site(site_path, {})), "vmtest-b") is None
    assert cli("clean", "vmtest-a", "--site", str(site_path)).returncode == 0
    assert in_netns("ip", "link", "show", site_bridge).returncode == 0  # the site's: kept


def test_a_network_that_libvirtd_cannot_start_leaves_nothing(
    system_conn: libvirt.virConnect,
) -> None:
    """A real libvirtd refuses a bridge name that a device already has: nothing stays defined."""
    made = in_netns("ip", "link", "add", "pmclash12", "type", "veth", "peer", "name", "pmclash12p")
    assert made.returncode == 0, made.stderr
    try:
        plan = PrivateNetworkSetting(bridge_pattern="pmclash{vlan}").plan("vmtest-x", 12, "site")
        with pytest.raises(StepError) as caught:
            libvirt_network.ensure_private_network(system_conn, plan)
        assert "vmtest-x-private (bridge pmclash12)" in caught.value.message
        assert not [n for n in system_conn.listAllNetworks() if n.name() == "vmtest-x-private"]
    finally:
        in_netns("ip", "link", "delete", "pmclash12")
