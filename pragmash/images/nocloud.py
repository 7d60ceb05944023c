"""A node's NoCloud seed: the three documents cloud-init reads at its first boot.

Cloud images (Debian genericcloud, Ubuntu, Rocky, Alma, Fedora) configure themselves
with cloud-init from a small volume labelled ``cidata`` (:mod:`pragmash.images.fatvolume`
makes it). What goes on it comes from the node's allocation, never from a template:

* ``meta-data``: ``instance-id`` (new for each allocation of the VC, so a re-allocated
  VC is configured again, while a rebooted or scaled one is not) and ``local-hostname``;
* ``network-config`` (version 2): static addresses matched by MAC, so the interface
  names the image picks do not matter; the frontend's public interface with the site
  gateway and DNS, the private one on every node, computes routed through the
  frontend's private address (as Rocks clusters are);
* ``user-data`` (``#cloud-config``): hostname and FQDN, root's SSH keys (``--key``),
  ``/etc/hosts`` naming the VC's nodes, the node's ``/root/vc-out.xml`` and whatever
  else the driver puts in the node (``write_files``), plus what the driver or the
  recipe adds.

Every document is built as data and written by PyYAML's safe emitter (the same library
cloud-init reads it with), then read back and compared: a value from a recipe, a
vc-in.xml or the command line is a YAML scalar, quoted or escaped as needed, and can
never add a key or a line of its own. Names and addresses that end up in files the
guest parses (``/etc/hosts``) are checked to be names and addresses first.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

from pragmash import stages
from pragmash.driver_api import NodePlan
from pragmash.errors import StepError
from pragmash.images.fatvolume import make_fat_volume
from pragmash.images.inject import GuestContent, GuestLink
from pragmash.vc.formats.vcout import VcOut

NONCE_FILE = "instance-nonce"
SEED_LABEL = "cidata"  # what cloud-init's NoCloud looks for (as cloud-localds writes it)
USER_DATA_HEADER = "#cloud-config\n"
GUEST_VC_OUT = "/root/vc-out.xml"
ETC_HOSTS = "/etc/hosts"
#: A host name label (RFC 1123) and a dotted name of them: what /etc/hosts may hold.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
#: Keys pragmash sets in user-data: what a driver or recipe adds cannot replace them.
OWN_KEYS = ("hostname", "fqdn", "prefer_fqdn_over_hostname", "manage_etc_hosts", "disable_root")


@dataclass(frozen=True)
class NodeInterface:
    """One interface of a node as vc-out.xml decided it (any distro writes these)."""

    device: str
    mac: str
    ip: str
    prefix: int
    gateway: str | None


def netmask_prefix(netmask: str) -> int:
    """``255.255.255.0`` -> 24."""
    return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen


def node_interfaces(node: NodePlan, vc_out: VcOut) -> list[NodeInterface]:
    """A node's interfaces: private first, then (frontend only) public with the site gateway.

    Computes route through the frontend's private address, as Rocks clusters do.
    """
    fe = vc_out.frontend
    private_prefix = netmask_prefix(fe.private_netmask)
    if node.role == "frontend":
        return [
            NodeInterface("eth0", node.macs[0], fe.private_ip, private_prefix, None),
            NodeInterface(
                "eth1",
                node.macs[1] if len(node.macs) > 1 else fe.public_mac,
                fe.public_ip,
                netmask_prefix(fe.public_netmask),
                fe.public_gw,
            ),
        ]
    return [NodeInterface("eth0", node.macs[0], node.private_ip, private_prefix, fe.private_ip)]


def node_hostname(node: NodePlan, vc_out: VcOut) -> str:
    """The frontend takes its public FQDN (as Rocks frontends do); computes their own name."""
    return vc_out.frontend.public_fqdn if node.role == "frontend" else node.name


def _name(text: str, what: str) -> str:
    if not _HOSTNAME.match(text) or len(text) > 253:
        raise StepError(
            f"{what} {text!r} is not a host name: expected letters, digits and '-' in "
            "dot-separated labels",
            stage=stages.PRE_BOOT,
        )
    return text


def _address(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise StepError(f"{what} {text!r} is not an IP address", stage=stages.PRE_BOOT) from None


def _mac(text: str, what: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}", text):
        raise StepError(f"{what} {text!r} is not a MAC address", stage=stages.PRE_BOOT)
    return text.lower()


def meta_data(node: NodePlan, vc_out: VcOut, instance_id: str) -> dict[str, Any]:
    """``instance-id`` and ``local-hostname`` (the short name: cloud-init sets the FQDN)."""
    return {
        "instance-id": instance_id,
        "local-hostname": _name(node_hostname(node, vc_out), "host name").split(".")[0],
    }


def network_config(node: NodePlan, vc_out: VcOut) -> dict[str, Any]:
    """network-config version 2: static addresses matched by MAC, no DHCP."""
    search = [_name(s, "DNS search domain") for s in (vc_out.dns_search, vc_out.dns_domain) if s]
    ethernets: dict[str, Any] = {}
    for iface in node_interfaces(node, vc_out):
        entry: dict[str, Any] = {
            "match": {"macaddress": _mac(iface.mac, f"{node.name}'s MAC")},
            "dhcp4": False,
            "dhcp6": False,
            "addresses": [f"{_address(iface.ip, f'{node.name} address')}/{iface.prefix}"],
        }
        if iface.gateway:
            entry["routes"] = [{"to": "0.0.0.0/0", "via": _address(iface.gateway, "gateway")}]
        nameservers: dict[str, Any] = {"addresses": [_address(vc_out.dns_ip, "DNS server")]}
        if search:
            nameservers["search"] = search
        entry["nameservers"] = nameservers
        ethernets[iface.device] = entry
    return {"version": 2, "ethernets": ethernets}


def etc_hosts(vc_out: VcOut) -> str:
    """/etc/hosts naming every node of the VC.

    The frontend's short name is its private address (as Rocks frontends have it), its
    public FQDN the public one; each compute's name its private address.
    """
    fe = vc_out.frontend
    domain = vc_out.dns_domain

    def names(*given: str) -> str:
        plain = [_name(name, "node name") for name in given if name]
        if domain:
            plain = [f"{p}.{_name(domain, 'DNS domain')}" for p in plain] + plain
        return " ".join(dict.fromkeys(plain))

    fqdn = _name(fe.public_fqdn, "public FQDN")
    lines = [
        "# Written by cloud-init from pragmash's seed: the nodes of this virtual cluster.",
        "127.0.0.1  localhost",
        "::1  localhost ip6-localhost ip6-loopback",
        f"{_address(fe.private_ip, 'private address')}  {names(fqdn.split('.')[0], fe.name)}",
        f"{_address(fe.public_ip, 'public address')}  {fqdn}",
    ]
    lines += [f"{_address(c.ip, 'private address')}  {names(c.name)}" for c in vc_out.computes]
    return "\n".join(lines) + "\n"


def write_file(path: str, content: bytes, permissions: str = "0644") -> dict[str, Any]:
    """One ``write_files`` entry: UTF-8 text as it is, anything else base64-encoded."""
    entry: dict[str, Any] = {"path": path, "owner": "root:root", "permissions": permissions}
    try:
        text: str | None = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _plain_text(text):
        entry["content"] = text
    else:
        entry["encoding"] = "b64"
        entry["content"] = base64.b64encode(content).decode("ascii")
    return entry


def _plain_text(text: str) -> bool:
    """Text YAML carries unchanged: printable characters and newlines (checked by
    ``str.isprintable`` on the whole text, not character by character: a node's
    vc-out.xml is thousands of characters, and there is one per node)."""
    return text.replace("\n", "").isprintable()


def user_data(
    node: NodePlan,
    vc_out: VcOut,
    files: Mapping[str, bytes],
    *,
    run: Sequence[Sequence[str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``#cloud-config`` document for ``node``.

    ``files`` go in with ``write_files`` (the node's vc-out.xml among them), ``run``
    are commands cloud-init runs once (argument lists, never a shell), and ``extra``
    is what a driver or recipe adds: any cloud-config key except those pragmash sets
    (:data:`OWN_KEYS`); its ``write_files`` and ``runcmd`` are appended to pragmash's.
    """
    fqdn = _name(node_hostname(node, vc_out), "host name")
    if node.role == "compute" and vc_out.dns_domain:
        fqdn = f"{node.name}.{_name(vc_out.dns_domain, 'DNS domain')}"
    doc: dict[str, Any] = dict(extra or {})
    for key in ("write_files", "runcmd"):
        if key in doc and not isinstance(doc[key], list):
            raise StepError(
                f"cloud-config added for {node.name}: {key} must be a list, got "
                f"{type(doc[key]).__name__}",
                stage=stages.PRE_BOOT,
            )
    for key in OWN_KEYS:
        if key in doc:
            raise StepError(
                f"cloud-config added for {node.name} sets {key!r}, which pragmash sets itself "
                "from the allocation",
                stage=stages.PRE_BOOT,
            )
    own_files = [write_file(ETC_HOSTS, etc_hosts(vc_out).encode())]
    own_files += [write_file(path, content) for path, content in files.items()]
    doc.update(
        {
            "hostname": fqdn.split(".")[0],
            "fqdn": fqdn,
            "prefer_fqdn_over_hostname": node.role == "frontend",
            "manage_etc_hosts": False,  # ours below names every node of the VC
            "disable_root": False,  # PRAGMA clusters are run as root
        }
    )
    doc["write_files"] = own_files + list(doc.get("write_files", []))
    if node.authorized_keys:
        keys = [_key_line(k) for k in node.authorized_keys if k.strip()]
        doc["users"] = ["default", {"name": "root", "ssh_authorized_keys": keys}]
    commands = [list(c) for c in run] + list(doc.get("runcmd", []))
    if commands:
        doc["runcmd"] = commands
    return doc


def _key_line(key: str) -> str:
    """One authorized_keys line: a key spanning lines would add lines of its own."""
    line = key.strip()
    if "\n" in line or "\r" in line:
        raise StepError("an SSH public key must be one line", stage=stages.PRE_BOOT)
    return line


@functools.cache
def _emitter() -> tuple[type[yaml.SafeDumper], type[yaml.SafeLoader]]:
    """PyYAML's emitter (as :func:`dump_yaml` wants it) and safe loader, made on first use.

    libyaml's emitter and parser through PyYAML where PyYAML was built with them (a
    seed per node: the pure-Python ones cost milliseconds a node), else PyYAML's own;
    both are the safe kinds, and both read and write the same YAML. PyYAML is loaded
    here, when a seed is written or a cloud-config read, not when pragmash starts:
    ``check``, ``list`` and ``status`` load this module and write no YAML.
    """
    import yaml

    safe_dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    safe_loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Dumper(safe_dumper):  # type: ignore[valid-type,misc]
        """PyYAML's safe emitter, multi-line strings as literal blocks where YAML allows
        it, and no anchors or aliases (a reader should see each value where it applies)."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    def literal_blocks(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, literal_blocks)
    return Dumper, safe_loader


def dump_yaml(data: Mapping[str, Any], what: str) -> str:
    """``data`` as YAML, read back and compared before it is trusted."""
    import yaml  # on first use (see _emitter)

    dumper, loader = _emitter()
    text = yaml.dump(
        dict(data),
        Dumper=dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
    )
    if yaml.load(text, Loader=loader) != data:  # a safe loader
        raise StepError(
            f"{what}: the YAML written does not read back the same", stage=stages.PRE_BOOT
        )
    return text


@dataclass(frozen=True)
class Seed:
    """A node's three NoCloud documents, as data."""

    meta_data: dict[str, Any]
    user_data: dict[str, Any]
    network_config: dict[str, Any]

    def files(self) -> dict[str, bytes]:
        """The seed's files by name, as they go on the ``cidata`` volume."""
        return {
            "meta-data": dump_yaml(self.meta_data, "meta-data").encode(),
            "user-data": (USER_DATA_HEADER + dump_yaml(self.user_data, "user-data")).encode(),
            "network-config": dump_yaml(self.network_config, "network-config").encode(),
        }


def write_seed(dest: Path, seed: Seed) -> Path:
    """The seed as a FAT volume labelled ``cidata`` at ``dest`` (replacing an older one)."""
    files = {PurePosixPath("/") / name: content for name, content in seed.files().items()}
    return make_fat_volume(dest, SEED_LABEL, files, stage=stages.PRE_BOOT)


def node_seed(
    node: NodePlan,
    vc_out: VcOut,
    instance_id: str,
    files: Mapping[str, GuestContent],
    *,
    extra: Mapping[str, Any] | None = None,
) -> Seed:
    """Everything cloud-init needs to configure ``node`` as the allocation decided.

    ``files`` are what a disk-writing driver would have put into the disk, by guest
    path: contents and files go in with ``write_files``; a :class:`GuestLink` (an
    enabled unit) is made by a ``runcmd`` ``ln -sf`` (an argument list, no shell).
    """
    contents: dict[str, bytes] = {}
    links: list[list[str]] = []
    for path, content in files.items():
        if isinstance(content, GuestLink):
            links.append(["ln", "-sf", content.target, path])
        elif isinstance(content, Path):
            contents[path] = content.read_bytes()
        else:
            contents[path] = content
    return Seed(
        meta_data(node, vc_out, instance_id),
        user_data(node, vc_out, contents, run=links, extra=extra),
        network_config(node, vc_out),
    )


def seed_volume_path(vc_folder: Path, node_name: str) -> Path:
    """Where a node's seed volume lies on the head node (``clean`` removes the folder)."""
    return vc_folder / "seeds" / f"{node_name}.cidata.img"


def instance_nonce(vc_folder: Path) -> str:
    """A random word kept in the VC's folder, part of every node's ``instance-id``.

    Made once per allocation: ``clean`` removes the folder with the leases, so a VC
    allocated again gets a new word and cloud-init configures its nodes again, while a
    rebooted, resumed or scaled VC keeps it (cloud-init then leaves its nodes alone).
    """
    path = vc_folder / NONCE_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    vc_folder.mkdir(parents=True, exist_ok=True)
    word = secrets.token_hex(8)
    try:
        with path.open("x", encoding="ascii") as out:  # another worker may be first
            out.write(word + "\n")
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    return word


def read_cloud_config(path: Path) -> dict[str, Any]:
    """A ``#cloud-config`` file a recipe names: a YAML mapping, or a clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise StepError(f"cannot read cloud-config {path}: {err}", stage=stages.PRE_BOOT) from None
    import yaml  # on first use (see _emitter)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise StepError(
            f"{where}: not valid YAML ({problem}); expected a #cloud-config mapping",
            stage=stages.PRE_BOOT,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise StepError(
            f"{path}: expected a #cloud-config mapping of keys to values, got "
            f"{type(data).__name__}",
            stage=stages.PRE_BOOT,
        )
    return data
