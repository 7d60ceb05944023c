"""Each VC's private network: the site setting, the XML for each mode, and libvirt's API.

The XML of every mode is validated against libvirt's own RelaxNG schemas (network.rng,
domain.rng, shipped with libvirt); ``isolated`` and ``ovs`` networks are then defined
and started on ``test:///default`` (real libvirt-python calls, in-process). Guests on
these networks are the vm tier's (test_vm_private_network.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from lxml import etree

from pragmash.driver_api import HostInfo, NodePlan, PrivateNetworkPlan, PrivateNetworks
from pragmash.drivers.libvirt import network as libvirt_network
from pragmash.drivers.libvirt.engine import LibvirtEngine
from pragmash.engine.steps.private_network import default_mode_note
from pragmash.errors import ConfigError, StepError
from pragmash.images.libvirt_xml.domain import render_domain
from pragmash.images.libvirt_xml.network import network_differences, render_network
from pragmash.vc.config.private_network import (
    PrivateNetworkSetting,
    network_name,
    read_private_setting,
)
from pragmash.vc.config.site import load_site

SCHEMAS = Path("/usr/share/libvirt/schemas")
SITE = "/etc/pragmash/site.toml"


def setting(table: dict[str, Any], vlans: tuple[int, int] = (2, 4094)) -> PrivateNetworkSetting:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, file=SITE, key=f"[network] {key}")

    return read_private_setting(table, fail, vlans)


def relaxng(name: str) -> etree.RelaxNG:
    path = SCHEMAS / f"{name}.rng"
    if not path.exists():
        pytest.fail(f"{path} is missing: libvirt's schemas come with libvirt0")
    return etree.RelaxNG(etree.parse(str(path)))


def assert_valid(schema: etree.RelaxNG, xml: str) -> None:
    doc = etree.fromstring(xml.encode())
    assert schema.validate(doc), f"{schema.error_log}\n{xml}"


# -- the site setting ----------------------------------------------------------------


def test_a_site_that_does_not_say_gets_isolated_and_knows_it_did_not_say() -> None:
    chosen = setting({})
    assert (chosen.mode, chosen.explicit) == ("isolated", False)
    plan = chosen.plan("calit2", 7)
    assert plan.network == "calit2-private" == network_name("calit2")
    assert plan.bridge == "pragma7"
    assert plan.attach == "calit2-private"
    assert setting({"private": "isolated"}).explicit


def test_each_mode_plans_its_network() -> None:
    ovs = setting({"private": "ovs", "ovs_bridge": "ovsbr0"}).plan("a", 12)
    assert (ovs.network, ovs.bridge, ovs.vlan, ovs.attach) == (
        "a-private",
        "ovsbr0",
        12,
        "a-private",
    )
    assert ovs.setting == "[network] ovs_bridge"
    bridged = setting({"private": "bridge", "private_bridge": "br{vlan}"}).plan("a", 12)
    assert (bridged.network, bridged.bridge, bridged.attach) == (None, "br12", "bridge:br12")
    assert bridged.setting == "[network] private_bridge"
    own = setting({"private_bridge": "vc-{vlan}-p"}).plan("a", 4094)
    assert own.bridge == "vc-4094-p"


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"private": "vxlan"}, "private", "expected 'isolated', 'ovs' or 'bridge', got 'vxlan'"),
        ({"private": 3}, "private", "got 3"),
        ({"private": "bridge", "private_bridge": "br0"}, "private_bridge", "{vlan} once"),
        ({"private_bridge": "br{vlan}{vlan}"}, "private_bridge", "{vlan} once"),
        ({"private_bridge": "br{vlan}{id}"}, "private_bridge", "only {vlan}"),
        ({"private_bridge": "private-brid{vlan}"}, "private_bridge", "'private-brid4094': 16"),
        ({"private_bridge": "very-long-bri{vlan}"}, "private_bridge", "at most 15"),
        ({"private_bridge": "br/{vlan}"}, "private_bridge", "interface name takes"),
        ({"private_bridge": "-br{vlan}"}, "private_bridge", "interface name takes"),
        ({"private_bridge": 7}, "private_bridge", "pattern such as 'br{vlan}'"),
        ({"private": "bridge"}, "private_bridge", "missing"),
        ({"private": "ovs"}, "ovs_bridge", "missing"),
        ({"private": "ovs", "ovs_bridge": "ovs bridge"}, "ovs_bridge", "interface name"),
        (
            {"private": "ovs", "ovs_bridge": "br0", "private_bridge": "x{vlan}"},
            "private_bridge",
            "not used",
        ),
        ({"ovs_bridge": "ovsbr0"}, "ovs_bridge", "only used when private = 'ovs'"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        setting(table)
    assert caught.value.key == f"[network] {key}"
    assert words in caught.value.message, caught.value.message
    assert caught.value.message.startswith(f"{SITE}: [network] {key}: ")


def test_the_vlan_range_decides_the_longest_bridge_name() -> None:
    assert setting({"private_bridge": "private-bri{vlan}"}).bridge_for(4094) == "private-bri4094"
    assert setting({"private_bridge": "pragmash-bri{vlan}"}, vlans=(2, 999)).bridge_for(999) == (
        "pragmash-bri999"
    )
    with pytest.raises(ConfigError, match="'pragmash-bri1000': 16 characters"):
        setting({"private_bridge": "pragmash-bri{vlan}"}, vlans=(2, 1000))


# -- XML for each mode, checked against libvirt's schemas ----------------------------


def plan_of(mode: str, vlan: int = 10, vcname: str = "vc-a") -> PrivateNetworkPlan:
    table: dict[str, Any] = {"private": mode}
    if mode == "ovs":
        table["ovs_bridge"] = "ovsbr0"
    if mode == "bridge":
        table["private_bridge"] = "br{vlan}"
    return setting(table).plan(vcname, vlan, SITE)


def test_isolated_network_has_no_forward_and_no_host_address() -> None:
    xml = render_network(plan_of("isolated"))
    assert_valid(relaxng("network"), xml)
    root = etree.fromstring(xml.encode())
    assert root.findtext("name") == "vc-a-private"
    assert root.find("bridge").get("name") == "pragma10"  # type: ignore[union-attr]
    assert root.find("forward") is None and root.find("ip") is None
    assert root.find("vlan") is None and root.find("virtualport") is None


def test_ovs_network_is_tagged_with_the_vlan_over_the_site_bridge() -> None:
    xml = render_network(plan_of("ovs", vlan=42))
    assert_valid(relaxng("network"), xml)
    root = etree.fromstring(xml.encode())
    assert root.find("forward").get("mode") == "bridge"  # type: ignore[union-attr]
    assert root.find("bridge").get("name") == "ovsbr0"  # type: ignore[union-attr]
    assert root.find("virtualport").get("type") == "openvswitch"  # type: ignore[union-attr]
    assert [t.get("id") for t in root.findall("vlan/tag")] == ["42"]
    assert root.find("ip") is None


def test_bridge_mode_has_no_network_of_its_own() -> None:
    with pytest.raises(ValueError, match="joins the site's bridge"):
        render_network(plan_of("bridge"))


def test_differences_say_what_decides_where_traffic_goes() -> None:
    plan = plan_of("isolated")
    same = render_network(plan).replace(
        "</name>", "</name><uuid>0b5d1b6e-3d5c-4a4e-9a53-2f1d3c3b0a11</uuid>"
    )
    assert network_differences(same, plan) == []
    other = render_network(plan_of("isolated", vlan=11))
    assert network_differences(other, plan) == ["bridge pragma11, not pragma10"]
    ovs = render_network(plan_of("ovs"))
    assert network_differences(ovs, plan_of("ovs", vlan=11)) == ["VLAN tag 10, not 11"]
    natted = "<network><name>vc-a-private</name><forward/><bridge name='pragma10'/><ip address='10.0.0.1'/></network>"
    assert network_differences(natted, plan) == [
        "forward mode nat, not (none)",
        "an address on the host, not none",
    ]


DOMAIN = """<domain type='kvm'>
  <name>template</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <interface type='bridge'><source bridge='eth0.2'/><model type='virtio'/></interface>
    <interface type='bridge'><source bridge='eth1'/><model type='virtio'/></interface>
    <disk type='file' device='disk'><source file='x.img'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>"""


@pytest.mark.parametrize("mode", ["isolated", "ovs", "bridge"])
def test_a_frontends_private_interface_joins_the_vc_network(mode: str) -> None:
    plan = plan_of(mode)
    node = NodePlan(
        name="vc-a-frontend",
        role="frontend",
        index=None,
        cpus=1,
        template_xml=DOMAIN,
        macs=("7a:77:6e:00:00:01", "7a:77:6e:00:00:02"),
        networks=(plan.attach, "bridge:br-public"),
        disks=("/var/tmp/vc-a-frontend.qcow2",),
        domain_type="qemu",
    )
    xml = render_domain(node, HostInfo(emulator=None, kvm_usable=False))
    assert_valid(relaxng("domain"), xml)
    private, public = etree.fromstring(xml.encode()).findall("devices/interface")
    if mode == "bridge":
        assert private.get("type") == "bridge"
        assert private.find("source").get("bridge") == "br10"  # type: ignore[union-attr]
    else:
        assert private.get("type") == "network"
        assert private.find("source").get("network") == "vc-a-private"  # type: ignore[union-attr]
    assert public.find("source").get("bridge") == "br-public"  # type: ignore[union-attr]


# -- on libvirt's test driver --------------------------------------------------------


@pytest.fixture
def netconn() -> Iterator[libvirt.virConnect]:
    """test:///default held open, with no network of ours left before or after."""
    conn = libvirt.open("test:///default")

    def wipe() -> None:
        for net in conn.listAllNetworks(0):
            if net.name().startswith(("vc-", "race-")):
                if net.isActive():
                    net.destroy()
                net.undefine()

    wipe()
    yield conn
    wipe()
    conn.close()


@pytest.mark.libvirt
def test_isolated_network_is_made_once_started_and_removed(netconn: libvirt.virConnect) -> None:
    engine = LibvirtEngine("test:///default")
    assert isinstance(engine, PrivateNetworks)
    plan = plan_of("isolated")
    assert engine.private_network_state(plan).detail == "missing"
    engine.check_private_network(plan)
    first = engine.ensure_private_network(plan)
    assert first.message == "created network vc-a-private (isolated, bridge pragma10, VLAN 10)"
    assert first.products == {"private_network": "vc-a-private"}
    net = netconn.networkLookupByName("vc-a-private")
    assert net.isActive()
    assert network_differences(net.XMLDesc(0), plan) == []
    # again (resume, attach): nothing new; the check accepts the VC's own bridge
    engine.check_private_network(plan)
    assert engine.ensure_private_network(plan).message == (
        "network vc-a-private (isolated, bridge pragma10, VLAN 10) already up"
    )
    # stopped behind our back: started again; gone: made anew
    net.destroy()
    assert engine.private_network_state(plan).detail == "defined, not started"
    assert engine.ensure_private_network(plan).message.startswith("started network vc-a-private")
    assert engine.remove_private_network("vc-a")
    assert not engine.remove_private_network("vc-a")
    assert engine.private_network_state(plan).exists is False
    assert engine.ensure_private_network(plan).message.startswith("created")
    assert engine.private_network_state(plan).active


@pytest.mark.libvirt
def test_ovs_network_defines_on_the_test_driver(netconn: libvirt.virConnect) -> None:
    engine = LibvirtEngine("test:///default")
    # the test driver's host has one interface, eth1: it stands in for the OVS bridge
    plan = setting({"private": "ovs", "ovs_bridge": "eth1"}).plan("vc-o", 33, SITE)
    engine.check_private_network(plan)
    engine.ensure_private_network(plan)
    defined = etree.fromstring(netconn.networkLookupByName("vc-o-private").XMLDesc(0).encode())
    assert defined.find("virtualport").get("type") == "openvswitch"  # type: ignore[union-attr]
    assert [t.get("id") for t in defined.findall("vlan/tag")] == ["33"]
    assert_valid(relaxng("network"), etree.tostring(defined, encoding="unicode"))


@pytest.mark.libvirt
def test_missing_site_bridges_are_refused_naming_the_setting(netconn: libvirt.virConnect) -> None:
    engine = LibvirtEngine("test:///default")
    with pytest.raises(ConfigError) as caught:
        engine.check_private_network(plan_of("ovs"))
    assert caught.value.key == "[network] ovs_bridge"
    assert "no interface 'ovsbr0' on the engine host (test:///default)" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        engine.check_private_network(plan_of("bridge"))
    assert caught.value.key == "[network] private_bridge"
    assert "no interface br10 (VLAN 10)" in caught.value.message
    assert engine.private_network_state(plan_of("bridge")).detail == "missing"
    present = setting({"private": "bridge", "private_bridge": "eth{vlan}"}).plan("vc-b", 1, SITE)
    engine.check_private_network(present)
    assert engine.private_network_state(present).detail == "present"
    assert engine.ensure_private_network(present).message == (
        "private interfaces join bridge eth1 (site bridge for VLAN 1)"
    )
    assert netconn.listAllNetworks(0) and not any(
        n.name() == "vc-b-private" for n in netconn.listAllNetworks(0)
    )


@pytest.mark.libvirt
def test_a_bridge_name_that_clashes_is_refused(netconn: libvirt.virConnect) -> None:
    engine = LibvirtEngine("test:///default")
    # an interface of the host
    clash = setting({"private_bridge": "eth{vlan}"}).plan("vc-c", 1, SITE)
    with pytest.raises(ConfigError) as caught:
        engine.check_private_network(clash)
    assert caught.value.key == "[network] private_bridge"
    assert "eth1 (VLAN 1)" in caught.value.message and "interface" in caught.value.message
    # another libvirt network's bridge (the test driver's own 'default' uses virbr0)
    clash = setting({"private_bridge": "virbr{vlan}"}).plan("vc-c", 0, SITE)
    with pytest.raises(ConfigError, match="libvirt network 'default' already uses"):
        engine.check_private_network(clash)
    # another VC's network
    engine.ensure_private_network(plan_of("isolated", vlan=5, vcname="vc-d"))
    with pytest.raises(ConfigError, match="libvirt network 'vc-d-private'"):
        engine.check_private_network(plan_of("isolated", vlan=5, vcname="vc-e"))


@pytest.mark.libvirt
def test_a_network_of_the_same_name_but_another_bridge_is_not_taken(
    netconn: libvirt.virConnect,
) -> None:
    engine = LibvirtEngine("test:///default")
    engine.ensure_private_network(plan_of("isolated", vlan=5))
    with pytest.raises(StepError) as caught:
        engine.ensure_private_network(plan_of("isolated", vlan=6))
    assert "exists with bridge pragma5, not pragma6" in caught.value.message
    assert "pragmash clean vc-a" in (caught.value.hint or "")
    # stopped, it is redefined in place
    netconn.networkLookupByName("vc-a-private").destroy()
    engine.ensure_private_network(plan_of("isolated", vlan=6))
    assert engine.private_network_state(plan_of("isolated", vlan=6)).active
    xml = netconn.networkLookupByName("vc-a-private").XMLDesc(0)
    assert network_differences(xml, plan_of("isolated", vlan=6)) == []


@pytest.mark.libvirt
def test_many_vcs_at_once_each_get_their_own_network(netconn: libvirt.virConnect) -> None:
    """Two ensures per VC race for four VCs: every call succeeds, each VC has one network."""
    plans = [plan_of("isolated", vlan=20 + i, vcname=f"race-{i}") for i in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(plans) * 2)

    def ensure(plan: PrivateNetworkPlan) -> None:
        engine = LibvirtEngine("test:///default")  # a connection of its own, like a process
        barrier.wait()
        try:
            engine.ensure_private_network(plan)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=ensure, args=(p,)) for p in plans * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    bridges = {}
    for plan in plans:
        net = netconn.networkLookupByName(f"{plan.vcname}-private")
        assert net.isActive()
        bridges[plan.vcname] = etree.fromstring(net.XMLDesc(0).encode()).find("bridge").get("name")  # type: ignore[union-attr]
    assert bridges == {f"race-{i}": f"pragma{20 + i}" for i in range(4)}


class _NoStart:
    """A real test:///default connection whose networks refuse to start, as a host can."""

    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def networkDefineXML(self, xml: str) -> Any:
        net = self._conn.networkDefineXML(xml)

        class Refusing:
            def __getattr__(self, name: str) -> Any:
                return getattr(net, name)

            def create(self) -> int:
                raise libvirt.libvirtError("Unable to create bridge pragma10: File exists")

        return Refusing()


@pytest.mark.libvirt
def test_a_network_that_will_not_start_is_not_left_defined(netconn: libvirt.virConnect) -> None:
    plan = plan_of("isolated")
    with pytest.raises(StepError) as caught:
        libvirt_network.ensure_private_network(_NoStart(netconn), plan)
    assert "could not start network vc-a-private (bridge pragma10)" in caught.value.message
    assert caught.value.stage == "ve_driver/network"
    assert not any(n.name() == "vc-a-private" for n in netconn.listAllNetworks(0))


def test_existing_site_configs_load_as_isolated_without_saying_so(tmp_path: Path) -> None:
    """A site config written before [network] private existed keeps loading."""
    site = load_site(
        Path(__file__).parents[1] / "data" / "sites" / "small.toml", env={"HOME": "/nonexistent"}
    )
    assert site.private_network == PrivateNetworkSetting()  # isolated, pragma{vlan}, implicit
    assert default_mode_note(site) is not None
    path = tmp_path / "site.toml"
    text = (Path(__file__).parents[1] / "data" / "sites" / "small.toml").read_text()
    path.write_text(text.replace("[network]\n", '[network]\nprivate = "bridge"\n', 1))
    with pytest.raises(ConfigError) as caught:
        load_site(path, env={"HOME": "/nonexistent"})
    assert caught.value.key == "[network] private_bridge" and str(path) in caught.value.message
    path.write_text(
        text.replace("[network]\n", '[network]\nprivate = "bridge"\nprivate_bridge = "br{vlan}"\n')
    )
    assert (
        load_site(path, env={"HOME": "/nonexistent"}).private_network.plan("vc", 11).attach
        == "bridge:br11"
    )
    assert default_mode_note(load_site(path, env={"HOME": "/nonexistent"})) is None
    assert default_mode_note(load_site(None, env={"HOME": str(tmp_path)})) is None  # the demo


@pytest.mark.libvirt
def test_the_check_of_a_vcs_own_running_network_reads_no_other(
    netconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every boot checks the VC's network; once it is there with its bridge, one
    look-up says so (not every network's XML and the host's interfaces)."""
    engine = LibvirtEngine("test:///default")
    plan = plan_of("isolated", vlan=7, vcname="vc-f")
    listed: list[str] = []
    real = libvirt.virConnect.listAllNetworks

    def listing(self: libvirt.virConnect, flags: int = 0) -> list[libvirt.virNetwork]:
        listed.append("networks")
        found: list[libvirt.virNetwork] = real(self, flags)
        return found

    monkeypatch.setattr(libvirt.virConnect, "listAllNetworks", listing)
    engine.check_private_network(plan)  # not there yet: the full check
    assert listed == ["networks"]
    engine.ensure_private_network(plan)
    engine.check_private_network(plan)
    assert listed == ["networks"]
    # another VC asking for that bridge has no network yet: the full check finds the clash
    with pytest.raises(ConfigError, match="libvirt network 'vc-f-private' already uses"):
        engine.check_private_network(plan_of("isolated", vlan=7, vcname="vc-g"))
    assert listed == ["networks", "networks"]
