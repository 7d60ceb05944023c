"""What a vc-in ``<domain>`` template may hold, decided when the vc-in.xml is read.

A template becomes one domain per node. Everything pragmash replaces for each node
(name, UUIDs, MACs, network sources, the first disk, vCPUs, memory, consoles) may be
written any way libvirt accepts. What it cannot make per node, because it names one
piece of one host (a PCI, USB or SCSI device, a TCP port a serial line binds, a
static security label), would be given to every node at once: it is refused here,
before anything is allocated, naming the element and what to write instead. So is
anything writable that every node would share (a second writable disk, a writable
host folder). Read-only and shareable devices are fine: nodes may share those.

The rules are pure lxml over the parsed template, so ``pragmash check`` and every run
refuse the same templates with the same words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from lxml import etree

Role = Literal["frontend", "compute"]

# what allocation gives each role: the frontend a private and a public interface (in
# that order), a compute its private one (store/allocation.py takes these MACs)
INTERFACES_PER_ROLE: dict[Role, int] = {"frontend": 2, "compute": 1}


@dataclass(frozen=True)
class TemplateProblem:
    """One reason a template cannot be made into per-node domains."""

    path: str  # element path below the template's <domain>, e.g. "devices/hostdev"
    message: str
    element: etree._Element


def _writable(device: etree._Element) -> bool:
    return device.find("readonly") is None and device.find("shareable") is None


def _file_disks(devices: etree._Element) -> list[etree._Element]:
    return [d for d in devices.findall("disk") if d.get("device", "disk") == "disk"]


def _interfaces(
    role: Role, devices: etree._Element, domain: etree._Element
) -> Iterator[TemplateProblem]:
    interfaces = devices.findall("interface")
    wanted = INTERFACES_PER_ROLE[role]
    if len(interfaces) != wanted:
        order = (
            "a private one first, then the public one" if role == "frontend" else "the private one"
        )
        yield TemplateProblem(
            "devices/interface",
            f"the {role} template has {len(interfaces)} <interface> element(s): expected "
            f"{wanted} ({order}); pragmash gives each its MAC and network",
            interfaces[wanted] if len(interfaces) > wanted else domain,
        )


def _disks(devices: etree._Element) -> Iterator[TemplateProblem]:
    disks = _file_disks(devices)
    for extra in disks[1:]:
        if _writable(extra):
            source = extra.find("source")
            shown = source.get("file", "") if source is not None else ""
            yield TemplateProblem(
                "devices/disk",
                f"a second writable disk ({shown or 'no source'}) would be the same file on "
                "every node: mark it <readonly/> or <shareable/>, or keep one disk per "
                "template (pragmash makes the first disk per node)",
                extra,
            )
    for lun in devices.findall("disk[@device='lun']"):
        if _writable(lun):
            yield TemplateProblem(
                "devices/disk[@device='lun']",
                "a SCSI LUN passed through to every node would be written by all of them: "
                "mark it <shareable/> or <readonly/>, or remove it",
                lun,
            )


def _host_devices(devices: etree._Element) -> Iterator[TemplateProblem]:
    for hostdev in devices.findall("hostdev"):
        kind = hostdev.get("type", "") or hostdev.get("mode", "")
        yield TemplateProblem(
            "devices/hostdev",
            f"a host device ({kind or 'hostdev'}) belongs to one host and cannot be given "
            "to every node: remove it from the template",
            hostdev,
        )
    for inp in devices.findall("input[@type='evdev']"):
        yield TemplateProblem(
            "devices/input[@type='evdev']",
            "an evdev input grabs one host's input device and cannot be given to every "
            "node: remove it, or use type='tablet' or 'keyboard'",
            inp,
        )
    for backend in devices.findall("tpm/backend[@type='passthrough']"):
        yield TemplateProblem(
            "devices/tpm/backend[@type='passthrough']",
            "a passthrough TPM is one host's chip and cannot be given to every node: "
            "use <backend type='emulator'/> (each node gets its own)",
            backend,
        )
    for card in devices.findall("smartcard[@mode='host']"):
        yield TemplateProblem(
            "devices/smartcard[@mode='host']",
            "a host smartcard cannot be given to every node: remove it or use "
            "mode='passthrough' over spicevmc",
            card,
        )
    for nvdimm in devices.findall("memory[@model='nvdimm']"):
        if nvdimm.find("source/path") is not None and nvdimm.find("target/readonly") is None:
            yield TemplateProblem(
                "devices/memory[@model='nvdimm']/source/path",
                "an NVDIMM backed by a host file would be the same file on every node: "
                "remove it from the template",
                nvdimm,
            )
    for fs in devices.findall("filesystem"):
        if fs.find("readonly") is None and fs.get("type", "mount") == "mount":
            yield TemplateProblem(
                "devices/filesystem",
                "a host folder shared writable with every node: mark it <readonly/> or remove it",
                fs,
            )


_CHARDEVS = ("serial", "parallel", "console", "channel")


def _chardevs(devices: etree._Element) -> Iterator[TemplateProblem]:
    for tag in _CHARDEVS:
        for dev in devices.findall(tag):
            kind = dev.get("type", "")
            if kind not in ("tcp", "udp"):
                continue
            for source in dev.findall("source"):
                if kind == "udp" or source.get("mode") == "bind":
                    yield TemplateProblem(
                        f"devices/{tag}[@type='{kind}']/source",
                        f"a {tag} that listens on {source.get('host', '')}:"
                        f"{source.get('service', '')} would be the same port for every node: "
                        "use type='pty' or a unix socket (made per node)",
                        dev,
                    )


def _seclabels(domain: etree._Element) -> Iterator[TemplateProblem]:
    for label in domain.findall("seclabel"):
        if label.get("type") == "static" and label.find("label") is not None:
            yield TemplateProblem(
                "seclabel[@type='static']",
                "a static security label would be the same on every node: use "
                "type='dynamic' (each node gets its own)",
                label,
            )


def template_problems(domain: etree._Element, role: Role) -> list[TemplateProblem]:
    """Every reason ``domain`` cannot be made into this role's per-node domains."""
    devices = domain.find("devices")
    if devices is None:
        devices = etree.Element("devices")
    problems: list[TemplateProblem] = []
    problems += _interfaces(role, devices, domain)
    problems += _disks(devices)
    problems += _host_devices(devices)
    problems += _chardevs(devices)
    problems += _seclabels(domain)
    return problems
