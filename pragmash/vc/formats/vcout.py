"""vc-out.xml: what allocation decided, in the forms PRAGMA images read.

The whole VC's file (the frontend boots with it) serves both its readers: the seed
README's attributes where the seed put them, and what pragma_boot's last code wrote
for vc-out-parser. Each compute boots with a file of its own beside it (``NAME.xml``),
since vc-out-parser configures a compute only from that form. Which file a node gets
is :func:`node_vc_out`; :func:`write_vc_out` writes them all.

**Durability: the ledger is the truth, these files are derived from it.** Every byte
of them follows from the VC's allocation (held in the ledger, durable: SQLite commits
with a full sync), its vc-in, the site config and the run's key
(:func:`pragmash.store.allocation.build_vc_out`). So they are written atomically (temp
file, then rename: a process killed at any moment leaves each file whole, old or new)
but not synced one by one: one fsync per compute cost most of a large VC's allocation
(N=256: 2.83 s under load, 1.23 s without; issue 24). What an operating-system crash
or power cut can still do to a file written without a sync (leave it empty, missing,
or as it was before) is undone before any node is given one: :func:`repair_vc_out`
compares every file with what the ledger derives and rewrites those that differ. It
runs on every path that hands a file to a node or carries a VC on in a new process
(:meth:`pragmash.engine.run.runtime.Runtime.repair_vc_out`: a boot that injects files,
a recipe's own ``pre_boot``, ``resume``, ``start``; ``refresh`` and ``scale`` write
them all again anyway), so a crash cannot leave a node booting with a truncated,
missing or stale vc-out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from pragmash.atomic_files import write_all_atomic
from pragmash.driver_api import ComputeVcOut, NodePlan, Role, StageContext
from pragmash.errors import VcFormatError
from pragmash.vc.formats.xmlsafe import parse_xml_bytes, parse_xml_file, schema_problem


@dataclass(frozen=True)
class FrontendOut:
    name: str  # the frontend's node (and domain) name: <frontend name>, vc-out-parser's
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


def compute_vc_out_path(vc_out_path: Path, name: str) -> Path:
    """Compute ``name``'s own vc-out file: ``NAME.xml`` beside the VC's vc-out.xml.

    pragma_boot's allocate wrote these as ``TEMP/<compute-name>.xml`` and its boot copied
    them into each compute; :func:`write_vc_out` writes them with vc-out.xml.
    """
    return Path(vc_out_path).with_name(f"{name}.xml")


def node_vc_out_path(
    vc_out_path: Path, name: str, role: Role, computes: ComputeVcOut = "own"
) -> Path:
    """The vc-out file node ``name`` boots with (its ``/root/vc-out.xml``).

    The frontend gets the whole VC's ``vc_out_path``; a compute its own file
    (:func:`compute_vc_out_path`), or the whole VC's where the site chose ``"whole"``.
    """
    if role == "frontend" or computes == "whole":
        return Path(vc_out_path)
    return compute_vc_out_path(vc_out_path, name)


def node_vc_out(ctx: StageContext, node: NodePlan) -> Path:
    """The vc-out file ``node`` boots with in this VC; pre_boot puts it at /root/vc-out.xml."""
    return node_vc_out_path(ctx.vc_out_path, node.name, node.role, ctx.computes_vc_out)


_VC_OUT_XSD = "vc-out.xsd"
_COMPUTE_XSD = "vc-out-compute.xsd"


@functools.cache
def _schema(name: str = _VC_OUT_XSD) -> etree.XMLSchema:
    data = resources.files("pragmash.vc.formats").joinpath("schemas", name).read_bytes()
    return etree.XMLSchema(parse_xml_bytes(data, name))


def _check_schema(root: etree._Element, name: str, xsd: str) -> None:
    schema = _schema(xsd)
    if not schema.validate(root.getroottree()):
        element, line, message = schema_problem(schema)
        where = f" (line {line})" if line else ""
        raise VcFormatError(f"does not match {xsd}: {message}{where}", file=name, element=element)


def _validate(root: etree._Element, name: str) -> None:
    """vc-out.xsd, then what a schema cannot say: each value found in one of its places."""
    _check_schema(root, name, _VC_OUT_XSD)
    frontend = root.find("frontend")
    assert frontend is not None  # the schema requires it
    for tag in ("public", "private"):
        if len(frontend.findall(tag)) != 1:
            raise VcFormatError(
                f"<frontend> has {len(frontend.findall(tag))} <{tag}> elements: expected one",
                file=name,
                element=f"/vc/frontend/{tag}",
            )
    public = frontend.find("public")
    assert public is not None
    for attr in ("fqdn", "gw"):
        if frontend.get(attr) is None and public.get(attr) is None:
            raise VcFormatError(
                f"the frontend's {attr} is missing: expected it on <frontend> or on <public>",
                file=name,
                element="/vc/frontend",
            )
    compute = root.find("compute")
    assert compute is not None  # the schema requires it
    nodes = compute.findall("node")
    for n, node in enumerate(nodes, 1):
        for attr in ("ip", "mac"):
            if node.get(attr) is None and node.find(f"private[@{attr}]") is None:
                raise VcFormatError(
                    f"node {node.get('name')!r} has no {attr}: expected it on <node> or on "
                    "its <private>",
                    file=name,
                    element=f"/vc/compute/node[{n}]",
                )
    if int(compute.get("count", "-1")) != len(nodes):
        raise VcFormatError(
            f"count={compute.get('count')!r} but there are {len(nodes)} <node> elements:"
            " expected them to be equal",
            file=name,
            element="/vc/compute/@count",
        )


def _network_and_key(vc: etree._Element, vc_out: VcOut) -> None:
    network = etree.SubElement(vc, "network")
    etree.SubElement(
        network, "dns", ip=vc_out.dns_ip, search=vc_out.dns_search, domain=vc_out.dns_domain
    )
    if vc_out.key is not None:
        etree.SubElement(vc, "key").text = vc_out.key


def _private(parent: etree._Element, ip: str, netmask: str, mac: str) -> None:
    etree.SubElement(parent, "private", ip=ip, netmask=netmask, mac=mac)


def _build(vc_out: VcOut) -> etree._Element:
    """The whole VC's form: the seed README's attributes and pragma_boot's, in one document."""
    front = vc_out.frontend
    vc = etree.Element("vc")
    frontend = etree.SubElement(vc, "frontend", fqdn=front.public_fqdn)
    if front.name:
        frontend.set("name", front.name)
    frontend.set("gw", front.public_gw)
    etree.SubElement(
        frontend,
        "public",
        fqdn=front.public_fqdn,
        ip=front.public_ip,
        netmask=front.public_netmask,
        gw=front.public_gw,
        mac=front.public_mac,
    )
    _private(frontend, front.private_ip, front.private_netmask, front.private_mac)
    compute = etree.SubElement(vc, "compute", count=str(len(vc_out.computes)))
    for node in vc_out.computes:
        element = etree.SubElement(
            compute,
            "node",
            name=node.name,
            mac=node.mac,
            ip=node.ip,
            cpus=str(node.cpus),
            gw=front.private_ip,
        )
        _private(element, node.ip, front.private_netmask, node.mac)
    _network_and_key(vc, vc_out)
    etree.indent(vc, space="  ")
    return vc


def _build_compute(vc_out: VcOut, node: ComputeOut) -> etree._Element:
    """One compute's own form (pragma_boot's ``get_compute_vc_out``): its interface only.

    Its gateway is the frontend's private address: computes route through the frontend,
    and vc-out-parser puts that address in /etc/hosts under the frontend's fqdn.
    """
    front = vc_out.frontend
    vc = etree.Element("vc")
    etree.SubElement(vc, "frontend", fqdn=front.public_fqdn)
    compute = etree.SubElement(vc, "compute", name=node.name, gw=front.private_ip)
    _private(compute, node.ip, front.private_netmask, node.mac)
    _network_and_key(vc, vc_out)
    etree.indent(vc, space="  ")
    return vc


def _to_bytes(
    build: Callable[[], etree._Element], name: str, check: Callable[[etree._Element, str], None]
) -> bytes:
    try:
        root = build()
    except (ValueError, TypeError) as exc:  # lxml refuses control characters, non-strings
        raise VcFormatError(f"a value cannot be written as XML: {exc}", file=name) from None
    check(root, name)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def _check_compute(root: etree._Element, name: str) -> None:
    _check_schema(root, name, _COMPUTE_XSD)


def vc_out_to_bytes(vc_out: VcOut) -> bytes:
    """The whole VC's vc-out.xml text for ``vc_out``, validated against vc-out.xsd.

    Raises VcFormatError (file ``vc-out.xml``) when a value does not fit the format,
    so a bad allocation is caught before any node is given the file.
    """
    return _to_bytes(lambda: _build(vc_out), "vc-out.xml", _validate)


def compute_vc_out_to_bytes(vc_out: VcOut, name: str) -> bytes:
    """Compute ``name``'s own vc-out text, validated against vc-out-compute.xsd."""
    node = next((c for c in vc_out.computes if c.name == name), None)
    if node is None:
        raise VcFormatError(f"no compute named {name!r} in this VC", file="vc-out.xml")
    return _compute_bytes(vc_out, node)


def _compute_bytes(vc_out: VcOut, node: ComputeOut) -> bytes:
    return _to_bytes(lambda: _build_compute(vc_out, node), f"{node.name}.xml", _check_compute)


def _computes_bytes(vc_out: VcOut) -> dict[str, bytes]:
    """Every compute's own file, by name, from one tree made and validated once.

    Only a compute's name, address and MAC differ between the files; each value in
    them is also in the whole VC's file, under the same schema types, so the caller
    validates the values there (:func:`_files`). The first file is built and checked
    as :func:`compute_vc_out_to_bytes` does; the others change its three values and
    are serialized as they stand: the same bytes, without a tree and a schema check
    per compute (most of a large VC's vc-out time).
    """
    if not vc_out.computes:
        return {}
    first = vc_out.computes[0]
    out = {first.name: _compute_bytes(vc_out, first)}
    root = _build_compute(vc_out, first)
    compute = root.find("compute")
    assert compute is not None
    private = compute.find("private")
    assert private is not None
    for node in vc_out.computes[1:]:
        try:
            compute.set("name", node.name)
            private.set("ip", node.ip)
            private.set("mac", node.mac)
        except (ValueError, TypeError) as exc:
            raise VcFormatError(
                f"a value cannot be written as XML: {exc}", file=f"{node.name}.xml"
            ) from None
        out[node.name] = etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"
    return out


def _old_computes(path: Path) -> set[str]:
    """The computes a valid vc-out.xml already at ``path`` names (none if absent or invalid).

    Validated first: a name is used to delete that compute's file, so it must be a node
    name (no ``/``), as the schema says.
    """
    if not path.is_file():
        return set()
    try:
        return {c.name for c in read_vc_out(path).computes}
    except VcFormatError:
        return set()


def _files(vc_out: VcOut, path: Path) -> dict[Path, bytes]:
    """Every file of ``vc_out`` by path, validated: each compute's own, then the VC's."""
    whole = vc_out_to_bytes(vc_out)  # validates every value the computes' files hold too
    own = _computes_bytes(vc_out)
    if path.name in {f"{name}.xml" for name in own}:
        raise VcFormatError(
            f"a compute named {path.stem!r} would overwrite the VC's own file", file=str(path)
        )
    files = {compute_vc_out_path(path, name): data for name, data in own.items()}
    files[path] = whole
    return files


def write_vc_out(vc_out: VcOut, path: Path) -> list[Path]:
    """Write the whole VC's vc-out.xml at ``path`` and each compute's own file beside it.

    Every file is validated first, then each whose content differs from what is there
    is written atomically, not synced (derived from the ledger: see the module's note
    on durability). A file already holding its bytes is left alone: a ``scale`` of
    4096 computes rewrites the few that changed, and writing over a file costs more
    than reading it (ext4 flushes a file renamed over another). The computes' files
    (``NAME.xml``, :func:`compute_vc_out_path`) are renamed before the VC's, so a
    vc-out.xml that names a compute always has that compute's file beside it. The
    files of computes the previous vc-out.xml named and this one does not (``scale``
    removed them) are deleted. Returns the computes' files.
    """
    path = Path(path)
    _put(vc_out, path)
    return [compute_vc_out_path(path, c.name) for c in vc_out.computes]


def repair_vc_out(vc_out: VcOut, path: Path) -> list[Path]:
    """Make the files at ``path`` hold ``vc_out`` again where a crash lost them.

    As :func:`write_vc_out` (its folder made if a crash lost that too): only the files
    that differ (empty, cut short, missing, from before) are written again. Returns
    them (empty: every file was right).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _put(vc_out, path)


def _put(vc_out: VcOut, path: Path) -> list[Path]:
    """Write the files of ``vc_out`` that differ from what is there; return them."""
    files = _files(vc_out, path)
    changed = {p: data for p, data in files.items() if _content(p) != data}
    # the VC's own file unchanged names the same computes: none of them is gone
    gone = _old_computes(path) - {c.name for c in vc_out.computes} if path in changed else set()
    write_all_atomic(changed, durable=False)
    for name in sorted(gone):
        compute_vc_out_path(path, name).unlink(missing_ok=True)
    return list(changed)


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_vc_out(path: Path) -> VcOut:
    """Read and validate a whole VC's vc-out.xml: ours, the seed README's, pragma_boot's.

    Values are looked up where vc-out-parser looks for them, then where the seed put
    them: the frontend's fqdn and gw on ``<frontend>``, else on ``<public>``; its name on
    ``<frontend>`` (``""`` in the seed's form, which has none); a node's ip and mac on
    ``<node>``, else on its ``<private>``. Missing macs read as ``""``, missing cpus as 1.
    """
    name = str(path)
    root = parse_xml_file(Path(path))
    if root.tag != "vc":
        raise VcFormatError(
            f"the root element is <{root.tag}>: expected <vc>", file=name, element="/vc"
        )
    _validate(root, name)
    frontend = root.find("frontend")
    public = root.find("frontend/public")
    private = root.find("frontend/private")
    dns = root.find("network/dns")
    key = root.find("key")
    assert frontend is not None and public is not None and private is not None
    assert dns is not None  # schema-checked

    def front(attr: str) -> str:
        return frontend.get(attr) or public.get(attr) or ""

    def of_node(node: etree._Element, attr: str) -> str:
        value = node.get(attr)
        if value is None:
            iface = node.find("private")
            value = iface.get(attr) if iface is not None else None
        return value or ""

    return VcOut(
        frontend=FrontendOut(
            name=front("name"),
            public_fqdn=front("fqdn"),
            public_ip=public.get("ip", ""),
            public_netmask=public.get("netmask", ""),
            public_gw=front("gw"),
            public_mac=public.get("mac", ""),
            private_ip=private.get("ip", ""),
            private_netmask=private.get("netmask", ""),
            private_mac=private.get("mac", ""),
        ),
        computes=tuple(
            ComputeOut(
                name=node.get("name", ""),
                mac=of_node(node, "mac"),
                ip=of_node(node, "ip"),
                cpus=int(node.get("cpus", "1")),
            )
            for node in root.iterfind("compute/node")
        ),
        dns_ip=dns.get("ip", ""),
        dns_search=dns.get("search", ""),
        dns_domain=dns.get("domain", ""),
        key=(key.text or "").strip() if key is not None else None,
    )
