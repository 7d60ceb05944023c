"""Turn a vc-in template ``<domain>`` into one node's domain for this host.

A vc-in.xml carries libvirt ``<domain>`` elements exactly as some other site's
libvirt wrote them: their names, MACs, bridges, disk paths, emulator path and
console tty belong to that site. :func:`render_domain` keeps everything else the
VC author wrote and replaces only what allocation decided or what the host
dictates. It is pure lxml (no libvirt), so it is tested without any engine.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Literal

from lxml import etree

from pragmash import stages
from pragmash.driver_api import HostInfo, NodePlan
from pragmash.errors import StepError
from pragmash.images.libvirt_xml.edit import child, drop_attr, remove
from pragmash.images.libvirt_xml.identity import forget_identity, own_files
from pragmash.images.libvirt_xml.sizing import set_memory, set_vcpus
from pragmash.vc.formats.xmlsafe import safe_parser

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
    return StepError(f"domain template for {node.name}: {message}", stage=stages.BOOT)


def parse_template(node: NodePlan) -> etree._Element:
    """Parse the template safely (no DTD, no entities, no network): a copy of its own."""
    try:
        cached = _template_root(node.template_xml)
    except etree.XMLSyntaxError as exc:
        raise _fail(node, f"malformed XML: {exc}") from exc
    except ValueError as exc:
        raise _fail(node, str(exc)) from exc
    if cached.tag != "domain":
        raise _fail(node, f"expected a <domain> element, found <{cached.tag}>")
    return copy.deepcopy(cached)


# what an <interface> keeps whatever its type becomes: the guest-side device and its
# tuning. Everything else (virtualport, vlan, guest-side <ip>/<route>, script, target,
# the host device of a type='hostdev') belongs to the template's type and host
_INTERFACE_KEEPS = frozenset(
    (
        "mac",
        "model",
        "boot",
        "rom",
        "link",
        "mtu",
        "bandwidth",
        "coalesce",
        "address",
        "alias",
        "acpi",
        "tune",
        "filterref",
        "teaming",
        "driver",
        "backend",
    )
)
# driver names that only a passed-through host NIC takes
_HOSTDEV_DRIVERS = ("vfio", "kvm", "xen")


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
        for part in list(iface):
            foreign = not isinstance(part.tag, str) or part.tag not in _INTERFACE_KEEPS
            if foreign or (part.tag == "driver" and part.get("name") in _HOSTDEV_DRIVERS):
                remove(part)
        drop_attr(iface, "managed")  # a host NIC's attribute
        mac_el = child(iface, "mac", first=True)
        mac_el.attrib.clear()
        mac_el.set("address", mac)
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


# <source> attributes of a file disk that stay true for the staged file
_FILE_SOURCE_KEEPS = ("startupPolicy",)


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
        was_file = disk.get("type", "file") == "file"
        disk.set("type", "file")
        source = disk.find("source")
        if source is None:
            source = etree.Element("source")
            driver_el = disk.find("driver")
            if driver_el is not None:
                driver_el.addnext(source)
            else:
                disk.insert(0, source)
        # a file source keeps what still holds for the new file (startupPolicy); what
        # named another kind of source (a host, a pool, a device), a position in the old
        # file (slices) or the old file's chain (index) goes
        kept = {k: v for k, v in source.attrib.items() if was_file and k in _FILE_SOURCE_KEEPS}
        source.attrib.clear()
        source.set("file", path)
        for k, v in kept.items():
            source.set(k, v)
        for part in list(source):
            if part.tag != "seclabel":
                remove(part)
        for chain in disk.findall("backingStore"):
            remove(chain)  # the template's chain, not the staged file's: libvirt reads that
        driver = disk.find("driver")
        if driver is None:
            driver = etree.Element("driver", name="qemu")
            disk.insert(0, driver)
        fmt = formats[i] if formats is not None else None
        driver.set("type", fmt or disk_format(path))


def _set_console(node: NodePlan, devices: etree._Element) -> None:
    """Consoles as written, less the template host's tty; with a console log, ours.

    A ``tty=`` names a pty of the template's host. With ``console_log`` the node's
    serial port becomes a logged pty (``pragmash console`` attaches to it, waits read
    its file), so serial consoles follow it; a virtio console (hvc0) is kept.
    """
    for console in devices.findall("console"):
        drop_attr(console, "tty")
        target_type = _target_type(console)
        if node.console_log and target_type in ("", "serial"):
            remove(console)
    if not node.console_log:
        return
    for serial in devices.findall("serial"):
        remove(serial)
    # a pty, so `pragmash console` can attach to it (libvirt's console stream), with
    # everything the guest prints also logged to the file that waits and tails read;
    # each boot starts the file afresh: `wait … up` must not find the last boot's marker
    serial = etree.Element("serial", type="pty")
    etree.SubElement(serial, "log", file=node.console_log, append="off")
    etree.SubElement(serial, "target", port="0")
    console = etree.Element("console", type="pty")
    etree.SubElement(console, "target", type="serial", port="0")
    others = devices.findall("console")
    if others:
        # the serial console first: libvirt ties the first console to serial port 0
        others[0].addprevious(serial)
        others[0].addprevious(console)
    else:
        devices.append(serial)
        devices.append(console)


def _target_type(console: etree._Element) -> str:
    target = console.find("target")
    return target.get("type", "") if target is not None else ""


AGENT_CHANNEL = "org.qemu.guest_agent.0"
# domain types whose guests can run the QEMU guest agent on a virtio-serial port
_AGENT_DOMAIN_TYPES = ("qemu", "kvm")


def _set_agent_channel(node: NodePlan, root: etree._Element, devices: etree._Element) -> None:
    """The QEMU guest agent's virtio port, where the node's ``up`` asks the agent.

    An image with an agent installed starts it when this port appears; one without
    simply never answers. A template that already has the channel keeps its own; a
    domain that is not QEMU's (Xen, LXC …) gets none.
    """
    if not any(t.kind == "agent" for t in node.up_tests):
        return
    if root.get("type") not in _AGENT_DOMAIN_TYPES:
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


def _listen_on_loopback(devices: etree._Element) -> None:
    """The site's ``graphics_listen = "loopback"``: TCP displays listen on loopback only.

    Displays on a unix socket or with no listener (``<listen type='none'>``) are local
    already and stay as written.
    """
    for graphics in devices.findall("graphics"):
        if graphics.get("type") not in ("vnc", "spice"):
            continue
        listens = graphics.findall("listen")
        if graphics.get("socket") or any(li.get("type") in ("socket", "none") for li in listens):
            continue
        for listen in listens:
            remove(listen)
        graphics.set("listen", LOOPBACK)
        etree.SubElement(graphics, "listen", type="address", address=LOOPBACK)


@functools.lru_cache(maxsize=16)
def _template_root(template_xml: str) -> etree._Element:
    """The template parsed once per command: nodes get copies (a VC has two templates)."""
    tree = etree.fromstring(template_xml.encode("utf-8"), safe_parser()).getroottree()
    docinfo = tree.docinfo
    doctype: str = getattr(docinfo, "doctype", "")  # missing from lxml-stubs
    if doctype or docinfo.internalDTD is not None:
        raise ValueError("a DOCTYPE is not allowed in a domain template")
    return tree.getroot()


def render_domain(
    node: NodePlan,
    host: HostInfo,
    formats: Sequence[str | None] | None = None,
    *,
    uuid: str | None = None,
) -> str:
    """The node's own libvirt domain XML, made from its vc-in template.

    ``formats`` gives each disk's format where the caller knows it (the staging
    step does); otherwise it is guessed from the file name. ``uuid``, when given, is
    the domain's (the engine picks one, so it need not ask libvirt which it chose);
    without it libvirt makes one. Exactly the changes
    docs/vc-formats.md lists are made, each with its consequences; everything else
    is kept as the template wrote it.
    """
    root = parse_template(node)
    if node.domain_type:
        root.set("type", node.domain_type)
    name = child(root, "name", first=True)
    name.text = node.name
    forget_identity(root, node.name)
    if uuid is not None:
        uuid_el = etree.Element("uuid")
        uuid_el.text = uuid
        name.addnext(uuid_el)
    set_vcpus(root, node.cpus)
    if node.memory_mib is not None:
        set_memory(root, node.memory_mib)
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    for emulator in devices.findall("emulator"):
        if host.emulator:
            emulator.text = host.emulator
        else:
            remove(emulator)
    _set_interfaces(node, devices)
    _set_disks(node, devices, formats)
    _set_seed(node, devices)
    own_files(root, node.name)
    _set_console(node, devices)
    _set_agent_channel(node, root, devices)
    if node.graphics_listen == "loopback":
        _listen_on_loopback(devices)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode")


def with_uuid(domain_xml: str, uuid: str) -> str:
    """The same domain XML carrying ``uuid``: libvirt redefines a name only with its UUID."""
    root = etree.fromstring(domain_xml.encode("utf-8"), safe_parser())
    for old in root.findall("uuid"):
        remove(old)
    el = etree.Element("uuid")
    el.text = uuid
    name_el = root.find("name")
    if name_el is not None:
        name_el.addnext(el)
    else:
        root.insert(0, el)
    return etree.tostring(root, encoding="unicode")
