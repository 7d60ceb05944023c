"""A VC's private libvirt network as XML, and whether an existing one is the same.

Pure lxml, like :mod:`pragmash.images.libvirt_xml.domain`, so the XML for every mode is tested
(and validated against libvirt's own RelaxNG schema) without an engine.

``isolated``: a name and a bridge, nothing else — no ``<forward>`` (traffic never
leaves the bridge), no ``<ip>`` (the host has no address on it, so guests cannot
reach the host either). ``ovs``: libvirt's documented way onto an Open vSwitch
bridge, ``<forward mode='bridge'>`` with an ``openvswitch`` virtualport, tagged with
the VC's VLAN so the trunk keeps VCs apart.
"""

from __future__ import annotations

from lxml import etree

from pragmash.driver_api import PrivateNetworkPlan
from pragmash.vc.formats.xmlsafe import parse_xml_bytes


def render_network(plan: PrivateNetworkPlan) -> str:
    """The libvirt ``<network>`` for an ``isolated`` or ``ovs`` plan."""
    if plan.network is None:
        raise ValueError(f"mode {plan.mode!r} joins the site's bridge: no libvirt network")
    root = etree.Element("network")
    etree.SubElement(root, "name").text = plan.network
    if plan.mode == "ovs":
        etree.SubElement(root, "forward", mode="bridge")
        etree.SubElement(root, "bridge", name=plan.bridge)
        etree.SubElement(root, "virtualport", type="openvswitch")
        vlan = etree.SubElement(root, "vlan")
        etree.SubElement(vlan, "tag", id=str(plan.vlan))
    else:
        etree.SubElement(root, "bridge", name=plan.bridge)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode")


def network_differences(existing_xml: str, plan: PrivateNetworkPlan) -> list[str]:
    """How an engine's network of the plan's name differs from the plan; [] when it fits.

    Only what decides where traffic goes is compared (bridge, forward mode, VLAN tag,
    an address on the host): libvirt adds a UUID, a MAC and STP settings of its own.
    """
    root = parse_xml_bytes(existing_xml.encode("utf-8"), "libvirt network XML")
    bridge = root.find("bridge")
    found_bridge = bridge.get("name") if bridge is not None else None
    forward = root.find("forward")
    found_forward = forward.get("mode", "nat") if forward is not None else None
    tags = [t.get("id") for t in root.findall("vlan/tag")]
    differences: list[str] = []
    if found_bridge != plan.bridge:
        differences.append(f"bridge {found_bridge or '(none)'}, not {plan.bridge}")
    want_forward = "bridge" if plan.mode == "ovs" else None
    if found_forward != want_forward:
        differences.append(
            f"forward mode {found_forward or '(none)'}, not {want_forward or '(none)'}"
        )
    want_tags = [str(plan.vlan)] if plan.mode == "ovs" else []
    if tags != want_tags:
        differences.append(
            f"VLAN tag {', '.join(t or '?' for t in tags) or '(none)'}, "
            f"not {', '.join(want_tags) or '(none)'}"
        )
    if root.findall("ip"):
        differences.append("an address on the host, not none")
    return differences


def network_bridge(xml: str) -> str | None:
    """The bridge a libvirt network's XML names, if any."""
    root = parse_xml_bytes(xml.encode("utf-8"), "libvirt network XML")
    bridge = root.find("bridge")
    return bridge.get("name") if bridge is not None else None
