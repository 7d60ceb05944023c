"""What a PRAGMA guest makes of its /root/vc-out.xml: vc-out-parser's decisions, for tests.

PRAGMA images run pragmagrid's vc-out-parser at boot. This module follows its
decisions as /work/shared/pragma_boot-code.md ("vc-out.xml as the guests read it")
describes them, so a test can say what a real image would configure from the file a
node was given, without booting one:

* the role: **compute** when ``./compute/private`` exists, else **frontend**;
* a compute's ``name``/``gw`` on ``<compute>`` and the frontend's ``fqdn`` on
  ``<frontend>``, failing any of those (older form) ``compute/private@fqdn``,
  ``compute/private@gw`` and ``frontend/public@fqdn``;
* a frontend's ``fqdn``/``gw``/``name`` on ``<frontend>``, failing any of those
  ``frontend/public@fqdn``/``@gw``/``@name``;
* every child of ``<compute>`` (compute) or ``<frontend>`` (frontend) is an interface
  (``ip``, ``netmask``, ``mac`` required, ``mtu`` optional), configured when the
  guest has a NIC with that MAC; the ``private`` one (compute) or ``public`` one
  (frontend) gets the gateway; each goes into /etc/hosts (``private`` as
  ``IP NAME.local NAME``, ``public`` as ``IP FQDN``, any other tag ``IP NAME.TAG``);
* a compute's /etc/hosts also names the frontend at its gateway address; a
  frontend's names each ``compute/node`` by its interface children (or, older, its
  ``ip`` attribute), and /tmp/machinefile repeats each node's name ``cpus`` times
  (1 without ``cpus``);
* always: ``./key`` text for root's authorized_keys; ``./network/dns@ip`` (comma
  list) into resolv.conf; the hostname (``NAME.local`` for a compute, the fqdn for a
  frontend).

Where the real parser would stop with a Python exception (a missing attribute), this
raises :class:`ParserCrash` saying which. Test code, not product code: pragmash writes
vc-out files; this only reads what it wrote the way the guests do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from lxml import etree

Role = Literal["frontend", "compute"]


class ParserCrash(Exception):
    """Where vc-out-parser would end with a traceback instead of configuring the node."""


@dataclass(frozen=True)
class Interface:
    """One interface the guest configures (``ifcfg-DEV`` / ``/etc/network/interfaces``)."""

    network: str  # the element's tag: private, public, …
    ip: str
    netmask: str
    mac: str
    mtu: str
    gateway: str | None


@dataclass(frozen=True)
class GuestConfig:
    """What vc-out-parser writes on a node from its vc-out file."""

    role: Role
    hostname: str
    interfaces: tuple[Interface, ...]
    hosts: tuple[str, ...]  # /etc/hosts, one entry a line ("IP\tNAMES")
    machinefile: tuple[str, ...]  # /tmp/machinefile (a frontend's), one name a line
    key: str | None  # what is appended to /root/.ssh/authorized_keys
    dns: tuple[str, ...]  # resolv.conf's nameservers
    unmatched: tuple[str, ...] = ()  # interface MACs the guest has no NIC for (skipped)


def _attr(element: etree._Element | None, name: str, where: str) -> str:
    if element is None:
        raise ParserCrash(f"{where} is missing")
    value = element.get(name)
    if value is None:
        raise ParserCrash(f"{where} has no {name!r} attribute")
    return value


def _host_line(name: str, fqdn: str | None, iface: etree._Element) -> str:
    ip = _attr(iface, "ip", f"<{iface.tag}>")
    if iface.tag == "private":
        return f"{ip}\t{name}.local {name}"
    if iface.tag == "public":
        return f"{ip}\t{fqdn}"
    return f"{ip}\t{name}.{iface.tag}"


def _interfaces(
    parent: etree._Element,
    name: str,
    fqdn: str | None,
    gw: str,
    gw_iface: str,
    macs: Iterable[str] | None,
) -> tuple[list[Interface], list[str], list[str]]:
    """Every child of ``parent`` as an interface: (configured, hosts lines, unmatched MACs)."""
    have = None if macs is None else {m.lower() for m in macs}
    configured: list[Interface] = []
    hosts = ["127.0.0.1\tlocalhost.localdomain localhost"]
    unmatched: list[str] = []
    for iface in parent:
        where = f"<{parent.tag}>/<{iface.tag}>"
        ip = _attr(iface, "ip", where)
        netmask = _attr(iface, "netmask", where)
        mac = _attr(iface, "mac", where)
        if have is not None and mac.lower() not in have:
            unmatched.append(mac)  # "Unable to find interface for mac": skipped, no hosts line
            continue
        gateway = gw if iface.tag == gw_iface else None
        configured.append(Interface(iface.tag, ip, netmask, mac, iface.get("mtu", "1500"), gateway))
        hosts.append(_host_line(name, fqdn, iface))
    return configured, hosts, unmatched


def _compute(root: etree._Element, macs: Iterable[str] | None) -> GuestConfig:
    compute = root.find("compute")
    assert compute is not None
    name, gw, fe_fqdn = compute.get("name"), compute.get("gw"), None
    frontend = root.find("frontend")
    if frontend is not None:
        fe_fqdn = frontend.get("fqdn")
    if name is None or gw is None or fe_fqdn is None:  # the older form
        private = compute.find("private")
        name = _attr(private, "fqdn", "<compute>/<private>")
        gw = _attr(private, "gw", "<compute>/<private>")
        fe_fqdn = _attr(root.find("frontend/public"), "fqdn", "<frontend>/<public>")
    interfaces, hosts, unmatched = _interfaces(compute, name, None, gw, "private", macs)
    hosts.append(f"{gw}\t{fe_fqdn} {fe_fqdn.split('.')[0]}")
    return GuestConfig(
        "compute",
        f"{name}.local",
        tuple(interfaces),
        tuple(hosts),
        (),
        *_common(root),
        tuple(unmatched),
    )


def _frontend(root: etree._Element, macs: Iterable[str] | None) -> GuestConfig:
    frontend = root.find("frontend")
    if frontend is None:
        raise ParserCrash("<frontend> is missing")
    fqdn, gw, name = frontend.get("fqdn"), frontend.get("gw"), frontend.get("name")
    if fqdn is None or gw is None or name is None:  # "is old version"
        public = frontend.find("public")
        fqdn = _attr(public, "fqdn", "<frontend>/<public>")
        gw = _attr(public, "gw", "<frontend>/<public>")
        name = _attr(public, "name", "<frontend>/<public>")
    interfaces, hosts, unmatched = _interfaces(frontend, name, fqdn, gw, "public", macs)
    machine: list[str] = []
    for node in root.iterfind("compute/node"):
        node_name = _attr(node, "name", "<compute>/<node>")
        if len(node):
            hosts += [_host_line(node_name, None, iface) for iface in node]
        else:  # the older form: the address on <node>
            hosts.append(f"{_attr(node, 'ip', '<node>')}\t{node_name}.local {node_name}")
        machine += [node_name] * int(node.get("cpus", "1"))
    return GuestConfig(
        "frontend",
        fqdn,
        tuple(interfaces),
        tuple(hosts),
        tuple(machine),
        *_common(root),
        tuple(unmatched),
    )


def _common(root: etree._Element) -> tuple[str | None, tuple[str, ...]]:
    """(key, dns): what every node does first, whatever its role."""
    key_element = root.find("key")
    key = None
    if key_element is not None:
        if key_element.text is None:
            raise ParserCrash("<key> is empty")  # .text.strip() on None
        key = key_element.text.strip()
    dns = _attr(root.find("network/dns"), "ip", "<network>/<dns>")
    return key, tuple(dns.split(","))


def parse(text: str | bytes, macs: Iterable[str] | None = None) -> GuestConfig:
    """What vc-out-parser configures from ``text`` on a guest whose NICs have ``macs``.

    ``macs`` None: every interface in the file is taken as present.
    """
    data = text.encode() if isinstance(text, str) else text
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    if root.find("compute/private") is not None:
        return _compute(root, macs)
    return _frontend(root, macs)
