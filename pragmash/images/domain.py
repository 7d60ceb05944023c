"""Turn a vc-in template ``<domain>`` into one node's domain for this host.

A vc-in.xml carries libvirt ``<domain>`` elements exactly as some other site's
libvirt wrote them: their names, MACs, bridges, disk paths, emulator path and
console tty belong to that site. :func:`render_domain` keeps everything else the
VC author wrote and replaces only what allocation decided or what the host
dictates. It is pure lxml (no libvirt), so it is tested without any engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from lxml import etree

from pragmash.driver_api import HostInfo, NodePlan
from pragmash.errors import StepError
from pragmash.vc.xmlsafe import safe_parser

STAGE = "ve_driver/boot"
LOOPBACK = "127.0.0.1"

DomainTypeChoice = Literal["kvm", "qemu", "auto"]


def resolve_domain_type(site_choice: str, template_type: str, host: HostInfo) -> str:
    """The ``<domain type=>`` to use: the site's explicit choice wins.

    ``auto`` keeps hardware acceleration only where the host can use it, because a
    vc-in written for ``kvm`` must still boot (under TCG) on a host without KVM.
    A template asking for something other than kvm/qemu under ``auto`` is kept.
    """
    if site_choice in ("kvm", "qemu"):
        return site_choice
    if site_choice != "auto":
        raise ValueError(f"domain type must be kvm, qemu or auto, not {site_choice!r}")
    if template_type in ("kvm", "qemu", ""):
        return "kvm" if host.kvm_usable else "qemu"
    return template_type


def disk_format(path: str) -> str:
    """The ``<driver type=>`` for a disk file: staged overlays are qcow2, the rest raw."""
    return "qcow2" if path.lower().endswith(".qcow2") else "raw"


def _fail(node: NodePlan, message: str) -> StepError:
    return StepError(f"domain template for {node.name}: {message}", stage=STAGE)


def parse_template(node: NodePlan) -> etree._Element:
    """Parse the template safely (no DTD, no entities, no network)."""
    try:
        tree = etree.fromstring(node.template_xml.encode("utf-8"), safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise _fail(node, f"malformed XML: {exc}") from exc
    docinfo = tree.docinfo
    doctype: str = getattr(docinfo, "doctype", "")  # missing from lxml-stubs
    if doctype or docinfo.internalDTD is not None:
        raise _fail(node, "a DOCTYPE is not allowed in a domain template")
    root = tree.getroot()
    if root.tag != "domain":
        raise _fail(node, f"expected a <domain> element, found <{root.tag}>")
    return root


def _child(parent: etree._Element, tag: str, *, first: bool = False) -> etree._Element:
    """The parent's ``tag`` child, made when missing (at the front when ``first``)."""
    found = parent.find(tag)
    if found is not None:
        return found
    made = etree.Element(tag)
    if first:
        parent.insert(0, made)
    else:
        parent.append(made)
    return made


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _set_interfaces(node: NodePlan, devices: etree._Element) -> None:
    interfaces = devices.findall("interface")
    if len(interfaces) != len(node.macs):
        raise _fail(
            node,
            f"the template has {len(interfaces)} <interface> element(s) but "
            f"{len(node.macs)} MAC address(es) were allocated",
        )
    if len(interfaces) != len(node.networks):
        raise _fail(
            node,
            f"the template has {len(interfaces)} <interface> element(s) but "
            f"{len(node.networks)} network(s) were chosen",
        )
    for iface, mac, network in zip(interfaces, node.macs, node.networks, strict=True):
        mac_el = _child(iface, "mac", first=True)
        mac_el.set("address", mac)
        for stale in iface.findall("source") + iface.findall("target"):
            # the source belongs to the template's site; the target (vnetN) to its host
            _remove(stale)
        if network == "user":
            iface.set("type", "user")
            continue
        source = etree.Element("source")
        if network.startswith("bridge:"):
            bridge = network.removeprefix("bridge:")
            if not bridge:
                raise _fail(node, "network 'bridge:' names no bridge")
            iface.set("type", "bridge")
            source.set("bridge", bridge)
        elif network:
            iface.set("type", "network")
            source.set("network", network)
        else:
            raise _fail(node, "an interface was given an empty network name")
        mac_el.addnext(source)


def _set_disks(
    node: NodePlan, devices: etree._Element, formats: Sequence[str | None] | None
) -> None:
    disks = [d for d in devices.findall("disk") if d.get("device", "disk") == "disk"]
    if len(disks) != len(node.disks):
        raise _fail(
            node,
            f"the template has {len(disks)} <disk device='disk'> element(s) but "
            f"{len(node.disks)} disk image(s) were staged",
        )
    if formats is not None and len(formats) != len(disks):
        raise _fail(node, f"{len(formats)} disk format(s) given for {len(disks)} disk(s)")
    for i, (disk, path) in enumerate(zip(disks, node.disks, strict=True)):
        disk.set("type", "file")
        source = disk.find("source")
        if source is None:
            source = etree.Element("source")
            driver_el = disk.find("driver")
            if driver_el is not None:
                driver_el.addnext(source)
            else:
                disk.insert(0, source)
        source.attrib.clear()
        source.set("file", path)
        driver = disk.find("driver")
        if driver is None:
            driver = etree.Element("driver", name="qemu")
            disk.insert(0, driver)
        fmt = formats[i] if formats is not None else None
        driver.set("type", fmt or disk_format(path))


def _set_console(node: NodePlan, devices: etree._Element) -> None:
    for console in devices.findall("console"):
        if console.get("tty") is not None or node.console_log:
            _remove(console)
    if not node.console_log:
        return
    for serial in devices.findall("serial"):
        _remove(serial)
    # a pty, so `pragmash console` can attach to it (libvirt's console stream), with
    # everything the guest prints also logged to the file that waits and tails read;
    # each boot starts the file afresh: `wait … up` must not find the last boot's marker
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "log", file=node.console_log, append="off")
    etree.SubElement(serial, "target", port="0")
    console = etree.SubElement(devices, "console", type="pty")
    etree.SubElement(console, "target", type="serial", port="0")


AGENT_CHANNEL = "org.qemu.guest_agent.0"


def _set_agent_channel(node: NodePlan, devices: etree._Element) -> None:
    """The QEMU guest agent's virtio port, where the node's ``up`` asks the agent.

    An image with an agent installed starts it when this port appears; one without
    simply never answers. A template that already has the channel keeps its own.
    """
    if not any(t.kind == "agent" for t in node.up_tests):
        return
    for target in devices.findall("channel/target"):
        if target.get("name") == AGENT_CHANNEL:
            return
    channel = etree.SubElement(devices, "channel", type="unix")
    etree.SubElement(channel, "source", mode="bind")
    etree.SubElement(channel, "target", type="virtio", name=AGENT_CHANNEL)


def _set_seed(node: NodePlan, devices: etree._Element) -> None:
    """The node's NoCloud seed, a read-only virtio disk after the template's own disks.

    Its target is the first ``vdX`` no template disk uses, so the node's own disks keep
    their names (vda stays the root disk).
    """
    if node.seed is None:
        return
    used = {t.get("dev") for t in devices.findall("disk/target")}
    dev = next(f"vd{chr(c)}" for c in range(ord("b"), ord("z") + 1) if f"vd{chr(c)}" not in used)
    disk = etree.SubElement(devices, "disk", type="file", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="raw")
    etree.SubElement(disk, "source", file=node.seed.path)
    etree.SubElement(disk, "target", dev=dev, bus="virtio")
    etree.SubElement(disk, "readonly")


def _set_graphics(devices: etree._Element) -> None:
    """Remote displays listen on loopback only: a VC's console is not for the world."""
    for graphics in devices.findall("graphics"):
        if graphics.get("type") not in ("vnc", "spice"):
            continue
        for listen in graphics.findall("listen"):
            _remove(listen)
        graphics.set("listen", LOOPBACK)
        etree.SubElement(graphics, "listen", type="address", address=LOOPBACK)


def _set_memory(root: etree._Element, mib: int) -> None:
    """``--mem``: the domain's memory (and current memory) in MiB, replacing the template's."""
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        if element is None:
            if tag == "currentMemory":
                continue  # libvirt takes <memory> for both when it is absent
            element = etree.Element(tag)
            vcpu = root.find("vcpu")
            assert vcpu is not None
            vcpu.addprevious(element)
        element.attrib.clear()
        element.set("unit", "MiB")
        element.text = str(mib)
    for maximum in root.findall("maxMemory"):
        _remove(maximum)  # a hot-plug ceiling below the new size would be refused


def render_domain(
    node: NodePlan, host: HostInfo, formats: Sequence[str | None] | None = None
) -> str:
    """The node's own libvirt domain XML, made from its vc-in template.

    ``formats`` gives each disk's format where the caller knows it (the staging
    step does); otherwise it is guessed from the file name.
    """
    root = parse_template(node)
    if node.domain_type:
        root.set("type", node.domain_type)
    _child(root, "name", first=True).text = node.name
    for uuid in root.findall("uuid"):
        _remove(uuid)
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = etree.Element("vcpu")
        name_el = root.find("name")
        assert name_el is not None
        name_el.addnext(vcpu)
    vcpu.text = str(node.cpus)
    if node.memory_mib is not None:
        _set_memory(root, node.memory_mib)
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    for emulator in devices.findall("emulator"):
        if host.emulator:
            emulator.text = host.emulator
        else:
            _remove(emulator)
    _set_interfaces(node, devices)
    _set_disks(node, devices, formats)
    _set_seed(node, devices)
    _set_console(node, devices)
    _set_agent_channel(node, devices)
    _set_graphics(devices)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode")


def with_uuid(domain_xml: str, uuid: str) -> str:
    """The same domain XML carrying ``uuid``: libvirt redefines a name only with its UUID."""
    root = etree.fromstring(domain_xml.encode("utf-8"), safe_parser())
    for old in root.findall("uuid"):
        _remove(old)
    el = etree.Element("uuid")
    el.text = uuid
    name_el = root.find("name")
    if name_el is not None:
        name_el.addnext(el)
    else:
        root.insert(0, el)
    return etree.tostring(root, encoding="unicode")
