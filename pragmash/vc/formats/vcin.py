"""vc-in.xml: a VC's description, read exactly as pragma_boot's sites wrote it."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Literal

from lxml import etree

from pragmash.errors import VcFormatError
from pragmash.vc.config.limits import MAX_MEMORY_KIB, MAX_NODE_CPUS
from pragmash.vc.formats.domain_rules import template_problems
from pragmash.vc.formats.xmlsafe import parse_xml_bytes, parse_xml_file, schema_problem


@dataclass(frozen=True)
class InterfaceTemplate:
    """One ``<interface>`` of a template domain, as written."""

    type: str
    source: str | None  # the bridge or network name
    mac: str | None
    model: str | None


@dataclass(frozen=True)
class NodeTemplate:
    """A ``<frontend>`` or ``<compute>``: the libvirt ``<domain>`` kept unchanged as text."""

    role: Literal["frontend", "compute"]
    domain_xml: str
    name: str
    domain_type: str
    vcpus: int
    memory_kib: int
    interfaces: tuple[InterfaceTemplate, ...]
    disk_sources: tuple[str, ...]  # as written in <source file=…>
    disk_paths: tuple[Path, ...]  # resolved against the vc-in.xml's folder


@dataclass(frozen=True)
class VcIn:
    path: Path
    vc_type: str
    engine: str
    virt_type: str
    arch: str
    driver: str
    frontend: NodeTemplate
    compute: NodeTemplate | None
    boot_wait_seconds: int | None  # <boot_dependency><wait type='clock' value=…>
    private_ip: str
    private_netmask: str
    frontend_public_iface: str | None
    #: how messages name the file, when not by ``path``: the URL of a web repository's
    #: vc-in.xml (``path`` is then pragmash's local copy, which the user never wrote)
    shown_as: str | None = None

    @property
    def shown(self) -> str:
        """The file as the user knows it: its URL, or its path."""
        return self.shown_as or str(self.path)


# Names that become libvirt domain names, folder names and driver lookups: no slashes,
# no leading dot or dash, nothing a shell or a path could misread.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# libvirt's memory units, in bytes (https://libvirt.org/formatdomain.html#memory-allocation).
_MEMORY_UNITS: dict[str, int] = {
    "b": 1,
    "bytes": 1,
    "kb": 1000,
    "k": 1024,
    "kib": 1024,
    "mb": 1000**2,
    "m": 1024**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "g": 1024**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "t": 1024**4,
    "tib": 1024**4,
}

_VC_IN_XSD = "vc-in.xsd"


class _Reader:
    """Carries the file name so every check can name the file, element path and line."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)

    def error(
        self, element_path: str, message: str, node: etree._Element | None = None
    ) -> VcFormatError:
        if node is not None and node.sourceline:
            message += f" (line {node.sourceline})"
        return VcFormatError(message, file=self.file, element=element_path)

    def one(self, parent: etree._Element, tag: str, parent_path: str) -> etree._Element:
        """The single child ``tag`` of ``parent``; missing or repeated is an error."""
        found = [c for c in parent if c.tag == tag]
        path = f"{parent_path}/{tag}"
        if not found:
            raise self.error(path, f"missing: expected one <{tag}> inside <{parent.tag}>", parent)
        if len(found) > 1:
            raise self.error(
                path, f"found {len(found)} <{tag}> elements; exactly one is expected", found[1]
            )
        return found[0]

    def optional(self, parent: etree._Element, tag: str, parent_path: str) -> etree._Element | None:
        found = [c for c in parent if c.tag == tag]
        if len(found) > 1:
            raise self.error(
                f"{parent_path}/{tag}",
                f"found {len(found)} <{tag}> elements; at most one is expected",
                found[1],
            )
        return found[0] if found else None

    def text(self, parent: etree._Element, tag: str, parent_path: str, what: str) -> str:
        """The stripped, non-empty text of the single child ``tag``."""
        node = self.one(parent, tag, parent_path)
        value = (node.text or "").strip()
        if not value:
            raise self.error(f"{parent_path}/{tag}", f"is empty: expected {what}", node)
        return value

    def safe_name(self, value: str, element_path: str, node: etree._Element, what: str) -> str:
        if not _SAFE_NAME.fullmatch(value):
            raise self.error(
                element_path,
                f"{what} {value!r} is not allowed: expected letters, digits, '.', '_' or '-',"
                " starting with a letter or digit",
                node,
            )
        return value

    def ipv4(self, parent: etree._Element, tag: str, parent_path: str) -> str:
        value = self.text(parent, tag, parent_path, "an IPv4 address such as 10.1.1.1")
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise self.error(
                f"{parent_path}/{tag}",
                f"{value!r} is not an IPv4 address such as 10.1.1.1",
                parent,
            ) from None
        return value

    def netmask(self, parent: etree._Element, tag: str, parent_path: str) -> str:
        value = self.text(parent, tag, parent_path, "a netmask such as 255.255.0.0")
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{value}")
            ipaddress.IPv4Address(value)
        except ValueError:
            raise self.error(
                f"{parent_path}/{tag}",
                f"{value!r} is not a netmask such as 255.255.0.0",
                parent,
            ) from None
        return value


def _memory_kib(reader: _Reader, domain: etree._Element, domain_path: str) -> int:
    """``<memory>`` in KiB, honouring libvirt's ``unit=`` (KiB when absent)."""
    path = f"{domain_path}/memory"
    node = reader.one(domain, "memory", domain_path)
    raw = (node.text or "").strip()
    unit = node.get("unit", "KiB")
    factor = _MEMORY_UNITS.get(unit.lower())
    if factor is None:
        raise reader.error(
            path, f"unknown unit {unit!r}: expected one of KiB, MiB, GiB, KB, MB, GB …", node
        )
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise reader.error(path, f"{raw!r} is not a memory size: expected a whole number", node)
    size_bytes = int(raw) * factor
    kib = max(1, -(-size_bytes // 1024))  # round up to whole KiB
    if kib > MAX_MEMORY_KIB:
        raise reader.error(
            path,
            f"{raw} {unit} is more memory than any machine has: expected at most "
            f"{MAX_MEMORY_KIB // 1024**3} TiB",
            node,
        )
    return kib


def _vcpus(reader: _Reader, domain: etree._Element, domain_path: str) -> int:
    """``<vcpu>``; libvirt's default of one where the template has none."""
    path = f"{domain_path}/vcpu"
    node = reader.optional(domain, "vcpu", domain_path)
    if node is None:
        return 1
    raw = (node.text or "").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise reader.error(path, f"{raw!r} is not a CPU count: expected a whole number >= 1", node)
    if int(raw) > MAX_NODE_CPUS:
        raise reader.error(
            path, f"{raw} vCPUs in one domain: expected at most {MAX_NODE_CPUS}", node
        )
    return int(raw)


def _interfaces(devices: etree._Element | None) -> tuple[InterfaceTemplate, ...]:
    if devices is None:
        return ()
    found: list[InterfaceTemplate] = []
    for iface in devices:
        if iface.tag != "interface":
            continue
        source = iface.find("source")
        mac = iface.find("mac")
        model = iface.find("model")
        source_name = None
        if source is not None:
            source_name = source.get("bridge") or source.get("network") or source.get("dev")
        found.append(
            InterfaceTemplate(
                type=iface.get("type", ""),
                source=source_name,
                mac=mac.get("address") if mac is not None else None,
                model=model.get("type") if model is not None else None,
            )
        )
    return tuple(found)


def _disk_sources(
    reader: _Reader, domain: etree._Element, domain_path: str, folder: Path
) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """The ``<disk device='disk'><source file=…>`` of a template, resolved under ``folder``.

    Sources must stay inside the vc-in.xml's folder (checked by name, so a symlinked
    image folder still works): a shared repository must not point a VM at host files.
    """
    disks_path = f"{domain_path}/devices/disk"
    devices = domain.find("devices")
    sources: list[str] = []
    paths: list[Path] = []
    for disk in devices if devices is not None else ():
        if disk.tag != "disk" or disk.get("device", "disk") != "disk":
            continue
        source = disk.find("source")
        value = source.get("file") if source is not None else None
        if not value:
            raise reader.error(
                f"{disks_path}/source",
                "missing file=: expected <source file='IMAGE'> with a path relative to"
                " the vc-in.xml's folder",
                disk,
            )
        relative = PurePosixPath(value)
        if relative.is_absolute() or ".." in relative.parts:
            raise reader.error(
                f"{disks_path}/source/@file",
                f"{value!r} leaves the vc-in.xml's folder: expected a path relative to it,"
                " without '..'",
                disk,
            )
        sources.append(value)
        paths.append(folder / relative)
    if not sources:
        raise reader.error(
            disks_path,
            "missing: expected at least one <disk device='disk'> with <source file='IMAGE'>",
            domain,
        )
    return tuple(sources), tuple(paths)


def _node_template(
    reader: _Reader,
    vc: etree._Element,
    role: Literal["frontend", "compute"],
    folder: Path,
) -> NodeTemplate | None:
    role_path = f"/vc/{role}"
    holder = reader.optional(vc, role, "/vc")
    if holder is None:
        if role == "frontend":
            raise reader.error(role_path, "missing: expected a <frontend> with a <domain>", vc)
        return None
    domain_path = f"{role_path}/domain"
    domain = reader.one(holder, "domain", role_path)
    domain_type = domain.get("type", "").strip()
    if not domain_type:
        raise reader.error(
            f"{domain_path}/@type", "missing: expected type='kvm' or type='qemu'", domain
        )
    # every node gets a name of its own: the template's may be anything libvirt took
    # (spaces, brackets) or missing; it is kept only to be shown
    name_node = reader.optional(domain, "name", domain_path)
    name = (name_node.text or "").strip() if name_node is not None else ""
    sources, paths = _disk_sources(reader, domain, domain_path, folder)
    problems = template_problems(domain, role)
    if problems:
        first = problems[0]
        more = (
            f" ({len(problems) - 1} more problem(s) in this template)" if len(problems) > 1 else ""
        )
        raise reader.error(f"{domain_path}/{first.path}", first.message + more, first.element)
    return NodeTemplate(
        role=role,
        domain_xml=etree.tostring(domain, encoding="unicode", with_tail=False),
        name=name,
        domain_type=domain_type,
        vcpus=_vcpus(reader, domain, domain_path),
        memory_kib=_memory_kib(reader, domain, domain_path),
        interfaces=_interfaces(domain.find("devices")),
        disk_sources=sources,
        disk_paths=paths,
    )


def _driver(reader: _Reader, vc: etree._Element) -> str:
    """``<driver>NAME</driver>`` (the seed's example) or ``<distro driver=…>`` (its text)."""
    driver_node = reader.optional(vc, "driver", "/vc")
    distro_node = reader.optional(vc, "distro", "/vc")
    from_element = (driver_node.text or "").strip() if driver_node is not None else ""
    from_attr = (distro_node.get("driver") or "").strip() if distro_node is not None else ""
    if driver_node is not None and not from_element:
        raise reader.error("/vc/driver", "is empty: expected a driver name", driver_node)
    if from_element and from_attr and from_element != from_attr:
        raise reader.error(
            "/vc/driver",
            f"<driver>{from_element}</driver> and <distro driver='{from_attr}'/> disagree:"
            " expected one driver name",
            driver_node,
        )
    value = from_element or from_attr
    if not value:
        raise reader.error(
            "/vc/driver",
            "missing: expected <driver>NAME</driver> or <distro driver='NAME'/>"
            " (for example rocks6_client)",
            vc,
        )
    node = driver_node if driver_node is not None else distro_node
    assert node is not None
    path = "/vc/driver" if from_element else "/vc/distro/@driver"
    return reader.safe_name(value, path, node, "driver name")


def _boot_wait_seconds(reader: _Reader, vc: etree._Element) -> int | None:
    compute = vc.find("compute")
    if compute is None:
        return None
    dependency = reader.optional(compute, "boot_dependency", "/vc/compute")
    if dependency is None:
        return None
    wait_path = "/vc/compute/boot_dependency/wait"
    wait = reader.one(dependency, "wait", "/vc/compute/boot_dependency")
    if wait.get("type", "clock") != "clock":
        raise reader.error(
            f"{wait_path}/@type", f"{wait.get('type')!r} is not supported: expected 'clock'", wait
        )
    raw = (wait.get("value") or "").strip()
    if not (raw.isascii() and raw.isdigit()):  # '²' is a digit to isdigit, not to int
        raise reader.error(
            f"{wait_path}/@value", f"{raw!r} is not a number of seconds such as 300", wait
        )
    return int(raw)


def _validate_schema(reader: _Reader, vc: etree._Element) -> None:
    """The shipped vc-in.xsd as a final check, after the clearer checks above passed."""
    schema = _schema()
    if not schema.validate(vc.getroottree()):
        element, line, message = schema_problem(schema)
        raise VcFormatError(
            f"does not match vc-in.xsd: {message} (line {line})",
            file=reader.file,
            element=element,
        )


@functools.cache
def _schema() -> etree.XMLSchema:
    data = resources.files("pragmash.vc.formats").joinpath("schemas", _VC_IN_XSD).read_bytes()
    return etree.XMLSchema(parse_xml_bytes(data, _VC_IN_XSD))


def load_vc_in(path: Path, *, shown: str | None = None) -> VcIn:
    """Read a vc-in.xml written for pragma_boot, unchanged, and check what pragmash needs.

    Errors name the file (``shown``, where the user knows it by another name: the URL
    of a web repository's vc-in.xml), the element path (``/vc/frontend/domain/vcpu``)
    and the line.
    """
    path = Path(path).absolute()
    reader = _Reader(path)
    if shown is not None:
        reader.file = shown
    vc = parse_xml_file(path, shown)
    if vc.tag != "vc":
        raise reader.error("/vc", f"the root element is <{vc.tag}>: expected <vc>", vc)
    virtualization = reader.optional(vc, "virtualization", "/vc")
    virt = virtualization if virtualization is not None else etree.Element("virtualization")
    driver = _driver(reader, vc)
    frontend = _node_template(reader, vc, "frontend", path.parent)
    assert frontend is not None
    compute = _node_template(reader, vc, "compute", path.parent)
    boot_wait = _boot_wait_seconds(reader, vc)

    networks = reader.one(vc, "networks", "/vc")
    private = [n for n in networks if n.tag == "network" and n.get("name") == "private"]
    private_path = "/vc/networks/network[@name='private']"
    if not private:
        raise reader.error(
            private_path,
            "missing: expected <network name='private'> with <ipaddress> and <netmask>",
            networks,
        )
    if len(private) > 1:
        raise reader.error(private_path, "found more than one; exactly one is expected", private[1])
    private_ip = reader.ipv4(private[0], "ipaddress", private_path)
    private_netmask = reader.netmask(private[0], "netmask", private_path)
    public_iface: str | None = None
    frontend_networks = reader.optional(networks, "frontend", "/vc/networks")
    if frontend_networks is not None:
        public = reader.optional(frontend_networks, "public", "/vc/networks/frontend")
        if public is not None:
            public_iface = (public.text or "").strip() or None

    _validate_schema(reader, vc)
    return VcIn(
        path=path,
        shown_as=shown,
        vc_type=vc.get("type", ""),
        engine=virt.get("engine", "kvm"),
        virt_type=virt.get("type", "hvm"),
        arch=virt.get("arch", "x86_64"),
        driver=driver,
        frontend=frontend,
        compute=compute,
        boot_wait_seconds=boot_wait,
        private_ip=private_ip,
        private_netmask=private_netmask,
        frontend_public_iface=public_iface,
    )
