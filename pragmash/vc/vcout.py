"""vc-out.xml: what allocation decided, in the format pragma_boot's images read."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from pragmash.errors import VcFormatError
from pragmash.vc.xmlsafe import parse_xml_bytes, parse_xml_file, schema_problem


@dataclass(frozen=True)
class FrontendOut:
    name: str  # the frontend's node (and domain) name; not written to the file
    public_fqdn: str
    public_ip: str
    public_netmask: str
    public_gw: str
    public_mac: str
    private_ip: str
    private_netmask: str
    private_mac: str


@dataclass(frozen=True)
class ComputeOut:
    name: str
    mac: str
    ip: str
    cpus: int


@dataclass(frozen=True)
class VcOut:
    frontend: FrontendOut
    computes: tuple[ComputeOut, ...]
    dns_ip: str
    dns_search: str
    dns_domain: str
    # The SSH public key(s) root accepts (``--key``), as pragma_boot's <key>; None: no <key>.
    key: str | None = None


_VC_OUT_XSD = "vc-out.xsd"


@functools.cache
def _schema() -> etree.XMLSchema:
    data = resources.files("pragmash.vc").joinpath("schemas", _VC_OUT_XSD).read_bytes()
    return etree.XMLSchema(parse_xml_bytes(data, _VC_OUT_XSD))


def _validate(root: etree._Element, name: str) -> None:
    schema = _schema()
    if not schema.validate(root.getroottree()):
        element, line, message = schema_problem(schema)
        where = f" (line {line})" if line else ""
        raise VcFormatError(
            f"does not match vc-out.xsd: {message}{where}", file=name, element=element
        )
    compute = root.find("compute")
    assert compute is not None  # the schema requires it
    nodes = compute.findall("node")
    if int(compute.get("count", "-1")) != len(nodes):
        raise VcFormatError(
            f"count={compute.get('count')!r} but there are {len(nodes)} <node> elements:"
            " expected them to be equal",
            file=name,
            element="/vc/compute/@count",
        )


def _build(vc_out: VcOut) -> etree._Element:
    front = vc_out.frontend
    vc = etree.Element("vc")
    frontend = etree.SubElement(vc, "frontend")
    etree.SubElement(
        frontend,
        "public",
        fqdn=front.public_fqdn,
        ip=front.public_ip,
        netmask=front.public_netmask,
        gw=front.public_gw,
        mac=front.public_mac,
    )
    etree.SubElement(
        frontend,
        "private",
        ip=front.private_ip,
        netmask=front.private_netmask,
        mac=front.private_mac,
    )
    compute = etree.SubElement(vc, "compute", count=str(len(vc_out.computes)))
    for node in vc_out.computes:
        etree.SubElement(
            compute, "node", name=node.name, mac=node.mac, ip=node.ip, cpus=str(node.cpus)
        )
    network = etree.SubElement(vc, "network")
    etree.SubElement(
        network, "dns", ip=vc_out.dns_ip, search=vc_out.dns_search, domain=vc_out.dns_domain
    )
    if vc_out.key is not None:
        etree.SubElement(vc, "key").text = vc_out.key
    etree.indent(vc, space="  ")
    return vc


def vc_out_to_bytes(vc_out: VcOut) -> bytes:
    """The vc-out.xml text for ``vc_out``, validated against vc-out.xsd.

    Raises VcFormatError (file ``vc-out.xml``) when a value does not fit the format,
    so a bad allocation is caught before any node is given the file.
    """
    try:
        root = _build(vc_out)
    except (ValueError, TypeError) as exc:  # lxml refuses control characters, non-strings
        raise VcFormatError(f"a value cannot be written as XML: {exc}", file="vc-out.xml") from None
    _validate(root, "vc-out.xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def write_vc_out(vc_out: VcOut, path: Path) -> None:
    """Validate, then write ``path`` atomically: readers see the old file or the whole new one.

    A temp file in the same folder is written, fsynced and renamed over ``path``, so a
    crash or a validation failure never leaves a partial vc-out.xml behind.
    """
    data = vc_out_to_bytes(vc_out)
    path = Path(path)
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)  # nodes and drivers read it; mkstemp gives 0600
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_vc_out(path: Path) -> VcOut:
    """Read and validate a vc-out.xml (ours or pragma_boot's, which lacks mac= and cpus=).

    ``FrontendOut.name`` is not in the file and is read as ``""``; missing macs read as
    ``""`` and missing cpus as 1.
    """
    name = str(path)
    root = parse_xml_file(Path(path))
    if root.tag != "vc":
        raise VcFormatError(
            f"the root element is <{root.tag}>: expected <vc>", file=name, element="/vc"
        )
    _validate(root, name)
    public = root.find("frontend/public")
    private = root.find("frontend/private")
    dns = root.find("network/dns")
    key = root.find("key")
    assert public is not None and private is not None and dns is not None  # schema-checked
    return VcOut(
        frontend=FrontendOut(
            name="",
            public_fqdn=public.get("fqdn", ""),
            public_ip=public.get("ip", ""),
            public_netmask=public.get("netmask", ""),
            public_gw=public.get("gw", ""),
            public_mac=public.get("mac", ""),
            private_ip=private.get("ip", ""),
            private_netmask=private.get("netmask", ""),
            private_mac=private.get("mac", ""),
        ),
        computes=tuple(
            ComputeOut(
                name=node.get("name", ""),
                mac=node.get("mac", ""),
                ip=node.get("ip", ""),
                cpus=int(node.get("cpus", "1")),
            )
            for node in root.iterfind("compute/node")
        ),
        dns_ip=dns.get("ip", ""),
        dns_search=dns.get("search", ""),
        dns_domain=dns.get("domain", ""),
        key=(key.text or "").strip() if key is not None else None,
    )
