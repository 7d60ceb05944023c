"""Each VC's private network on a libvirt engine, through libvirt's network API.

No agent of ours runs on a host: what a host has (its interfaces, its libvirt
networks) is asked of libvirt, which also makes this right for a remote
``qemu+ssh://`` host and for a libvirtd in a network namespace of its own.

Creating is idempotent (``resume`` and ``repl --attach`` call it again, and a missing
network is made anew) and leaves nothing half-made: a network that was defined but
would not start is undefined again before the error is raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pragmash import stages
from pragmash.driver_api import NetworkState, PrivateNetworkPlan
from pragmash.drivers.lazy_import import lazy_module
from pragmash.errors import ConfigError, StepError, VcFormatError
from pragmash.images.libvirt_xml.network import network_bridge, network_differences, render_network
from pragmash.vc.formats.xmlsafe import parse_xml_bytes

if TYPE_CHECKING:
    import libvirt
else:
    libvirt = lazy_module("libvirt")


def _message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def host_interfaces(conn: libvirt.virConnect) -> frozenset[str] | None:
    """Names of the engine host's network interfaces; None where libvirt cannot list them.

    The interface driver lists them; a daemon without it may still have the node
    device driver, which knows every ``net`` device too.
    """
    try:
        return frozenset(i.name() for i in conn.listAllInterfaces(0))
    except libvirt.libvirtError:
        pass
    try:
        devices = conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)
    except libvirt.libvirtError:
        return None
    names: set[str] = set()
    for device in devices:
        try:
            root = parse_xml_bytes(device.XMLDesc(0).encode("utf-8"), "node device XML")
        except (libvirt.libvirtError, VcFormatError):
            continue
        for cap in root.findall("capability"):
            name = (cap.findtext("interface") or "").strip()
            if cap.get("type") == "net" and name:
                names.add(name)
    return frozenset(names)


def network_bridges(conn: libvirt.virConnect) -> dict[str, str]:
    """Every libvirt network's bridge (active or not) -> the network's name."""
    bridges: dict[str, str] = {}
    try:
        networks = conn.listAllNetworks(0)
    except libvirt.libvirtError as exc:
        raise StepError(
            f"cannot list libvirt networks: {_message(exc)}", stage=stages.NETWORK
        ) from exc
    for net in networks:
        try:
            bridge = network_bridge(net.XMLDesc(0))
        except libvirt.libvirtError:
            continue  # gone meanwhile
        if bridge:
            bridges[bridge] = net.name()
    return bridges


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise StepError(
            f"cannot look up network {name}: {_message(exc)}", stage=stages.NETWORK
        ) from exc


def check_private_network(conn: libvirt.virConnect, plan: PrivateNetworkPlan, uri: str) -> None:
    """Refuse a plan the engine host cannot carry, naming the site setting to fix.

    ``isolated``: the bridge libvirt would make must not exist already (as an interface
    or another network's bridge) unless it is this VC's own network's. ``ovs`` and
    ``bridge``: the site's bridge must exist. Raises ConfigError.
    """
    where = f"on the engine host ({uri})"
    if plan.mode == "isolated" and plan.network is not None and _owns_bridge(conn, plan):
        return  # the VC's own network has the bridge (every boot asks): nothing can clash
    bridges = network_bridges(conn)
    interfaces = host_interfaces(conn)
    owner = bridges.get(plan.bridge)
    gives = f"{plan.bridge} (VLAN {plan.vlan})"
    if plan.mode == "isolated":
        if owner is not None and owner != plan.network:
            stale = (
                ""
                if _is_active(conn, owner)
                else (
                    f" (defined, not started: `virsh -c {uri} net-undefine {owner}` removes it "
                    "if it is a leftover)"
                )
            )
            raise ConfigError(
                f"the bridge for this VC would be {gives}, but libvirt network {owner!r} "
                f"already uses a bridge of that name {where}{stale}; choose another pattern",
                file=plan.site_source,
                key=plan.setting,
            )
        if owner is None and interfaces is not None and plan.bridge in interfaces:
            raise ConfigError(
                f"the bridge for this VC would be {gives}, but an interface of that name "
                f"already exists {where} and is no pragmash network's; choose another pattern",
                file=plan.site_source,
                key=plan.setting,
            )
        return
    if interfaces is None:
        return  # libvirt cannot list interfaces here: booting will say what is missing
    if plan.bridge not in interfaces:
        if plan.mode == "ovs":
            message = (
                f"no interface {plan.bridge!r} {where}: the Open vSwitch bridge must exist on "
                f"every host (ovs-vsctl add-br {plan.bridge})"
            )
        else:
            message = (
                f"no interface {gives} {where}: with private = 'bridge' the site makes one "
                "bridge per VLAN on every host"
            )
        raise ConfigError(message, file=plan.site_source, key=plan.setting)


def _owns_bridge(conn: libvirt.virConnect, plan: PrivateNetworkPlan) -> bool:
    """Whether the VC's own network exists with the plan's bridge: one look-up, where
    the full check reads every network's XML and the host's interfaces."""
    assert plan.network is not None
    net = lookup(conn, plan.network)
    if net is None:
        return False
    try:
        return network_bridge(net.XMLDesc(0)) == plan.bridge
    except libvirt.libvirtError:
        return False  # gone meanwhile: the full check says what is there


def _is_active(conn: libvirt.virConnect, name: str) -> bool:
    net = lookup(conn, name)
    return net is not None and _active(net)


def ensure_private_network(conn: libvirt.virConnect, plan: PrivateNetworkPlan) -> str:
    """Make the VC's network exist and run; say what was done. Safe to repeat.

    ``bridge`` mode has nothing to make: the site's bridge is checked instead.
    """
    if plan.network is None:
        return f"private interfaces join {plan.describe()}"
    net = lookup(conn, plan.network)
    made = False
    if net is not None:
        differences = network_differences(_xml(net, plan), plan)
        if differences:
            if net.isActive():
                raise StepError(
                    f"libvirt network {plan.network} exists with {'; '.join(differences)}",
                    stage=stages.NETWORK,
                    hint=f"`pragmash clean {plan.vcname}` removes it with the VC",
                )
            net = _define(conn, plan, net.UUIDString())
    else:
        net = _define(conn, plan, None)
        made = True
    if net.isActive():
        return f"network {plan.describe()} already up"
    try:
        net.create()
    except libvirt.libvirtError as exc:
        if _active(net):  # another process started it meanwhile: as good as ours
            return f"network {plan.describe()} already up"
        if made:  # take nothing: a network that never ran is not left defined
            _forget(net)
        raise StepError(
            f"libvirt could not start network {plan.network} (bridge {plan.bridge}): "
            f"{_message(exc)}",
            stage=stages.NETWORK,
        ) from exc
    return f"{'created' if made else 'started'} network {plan.describe()}"


def _active(net: libvirt.virNetwork) -> bool:
    try:
        return bool(net.isActive())
    except libvirt.libvirtError:
        return False


def _xml(net: libvirt.virNetwork, plan: PrivateNetworkPlan) -> str:
    try:
        xml: str = net.XMLDesc(0)
    except libvirt.libvirtError as exc:
        raise StepError(
            f"cannot read network {plan.network}: {_message(exc)}", stage=stages.NETWORK
        ) from exc
    return xml


def _define(
    conn: libvirt.virConnect, plan: PrivateNetworkPlan, uuid: str | None
) -> libvirt.virNetwork:
    xml = render_network(plan)
    if uuid is not None:  # libvirt redefines a name only under its UUID
        xml = xml.replace("</name>", f"</name>\n  <uuid>{uuid}</uuid>", 1)
    try:
        return conn.networkDefineXML(xml)
    except libvirt.libvirtError as exc:
        assert plan.network is not None
        again = lookup(conn, plan.network)
        if again is not None and uuid is None and not network_differences(_xml(again, plan), plan):
            return again  # defined meanwhile by another process, as we would have
        raise StepError(
            f"libvirt could not define network {plan.network} (bridge {plan.bridge}): "
            f"{_message(exc)}",
            stage=stages.NETWORK,
        ) from exc


def _forget(net: libvirt.virNetwork) -> None:
    try:
        if net.isActive():
            net.destroy()
        net.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
            raise StepError(
                f"libvirt could not remove network {net.name()}: {_message(exc)}",
                stage=stages.NETWORK,
            ) from exc


def remove_private_network(conn: libvirt.virConnect, name: str) -> bool:
    """Stop and undefine the VC's network; True when there was one. Absent is fine."""
    net = lookup(conn, name)
    if net is None:
        return False
    _forget(net)
    return True


def private_network_state(conn: libvirt.virConnect, plan: PrivateNetworkPlan) -> NetworkState:
    """Whether the VC's network exists and runs (``bridge``: whether the site's bridge is there)."""
    if plan.network is None:
        interfaces = host_interfaces(conn)
        if interfaces is None:
            return NetworkState(
                plan.bridge, False, False, "unknown (libvirt cannot list interfaces)"
            )
        present = plan.bridge in interfaces
        return NetworkState(plan.bridge, present, present, "present" if present else "missing")
    net = lookup(conn, plan.network)
    if net is None:
        return NetworkState(plan.network, False, False, "missing")
    try:
        active = bool(net.isActive())
    except libvirt.libvirtError:
        return NetworkState(plan.network, False, False, "missing")
    return NetworkState(plan.network, True, active, "active" if active else "defined, not started")
