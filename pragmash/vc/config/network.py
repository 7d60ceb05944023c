"""The ``[network]`` section of the site config: the public pool, gateway, VLANs, MACs.

How each VC's private network is made (``private``, ``private_bridge``,
``ovs_bridge``) is :mod:`pragmash.vc.config.private_network`'s.

These settings are checked against each other (the gateway and every public
address inside one public network, no address twice, a locally administered
unicast MAC prefix), because a mistake here surfaces only when a booted VC cannot
be reached.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import cast

from pragmash.vc.config.private_network import PrivateNetworkSetting, read_private_setting
from pragmash.vc.config.reader import REQUIRED, Reader, describe, did_you_mean

_FQDN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MAC_PREFIX = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){2}$")


@dataclass(frozen=True)
class PublicAddress:
    """One public address the site can give a VC's frontend."""

    ip: str
    fqdn: str


@dataclass(frozen=True)
class NetworkSettings:
    """The ``[network]`` section, validated."""

    netmask: str
    gateway: str
    dns: str
    dns_search: str
    dns_domain: str
    mac_prefix: str
    vlan_first: int
    vlan_last: int
    default_network: str | None
    bridges: dict[str, str]
    public_pool: tuple[PublicAddress, ...]
    private: PrivateNetworkSetting


def read_network(net: Reader) -> NetworkSettings:
    """Validate ``[network]``: each key, then the pool and gateway against the netmask."""
    netmask = cast(str, net.ip("netmask", REQUIRED))
    try:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        raise net.fail(
            "netmask", f"expected a netmask such as '255.255.255.0', got {netmask!r}"
        ) from None
    gateway = cast(str, net.ip("gateway", REQUIRED))
    dns = cast(str, net.ip("dns", "8.8.8.8"))
    dns_search = cast(str, net.string("dns_search", "local"))
    dns_domain = cast(str, net.string("dns_domain", ""))
    mac_prefix = _mac_prefix(net)
    vlan_first, vlan_last = _vlans(net)
    default_network = net.string("default_network", None)
    bridges = _bridges(net)
    private = read_private_setting(net.table, net.fail, (vlan_first, vlan_last))
    pool = _public_pool(net)
    _check_public_network(net, pool, gateway, netmask, prefix)
    return NetworkSettings(
        netmask=netmask,
        gateway=gateway,
        dns=dns,
        dns_search=dns_search,
        dns_domain=dns_domain,
        mac_prefix=mac_prefix,
        vlan_first=vlan_first,
        vlan_last=vlan_last,
        default_network=default_network,
        bridges=bridges,
        public_pool=pool,
        private=private,
    )


def _check_public_network(
    net: Reader, pool: tuple[PublicAddress, ...], gateway: str, netmask: str, prefix: int
) -> None:
    """The public network is the pool's: the first address with the site netmask."""
    public_net = ipaddress.IPv4Network(f"{pool[0].ip}/{prefix}", strict=False)
    if ipaddress.IPv4Address(gateway) not in public_net:
        raise net.fail(
            "gateway",
            f"{gateway} is outside the public network {public_net} "
            f"(public[0] {pool[0].ip}, netmask {netmask})",
        )
    if prefix < 31 and ipaddress.IPv4Address(gateway) in (
        public_net.network_address,
        public_net.broadcast_address,
    ):
        raise net.fail("gateway", f"{gateway} is the network or broadcast address of {public_net}")
    for number, address in enumerate(pool):
        if ipaddress.IPv4Address(address.ip) not in public_net:
            raise net.fail(
                f"public[{number}] ip",
                f"{address.ip} is outside the public network {public_net} "
                f"(gateway {gateway}, netmask {netmask})",
            )
        if address.ip == gateway:
            raise net.fail(f"public[{number}] ip", f"{address.ip} is the gateway")


def _mac_prefix(net: Reader) -> str:
    value = cast(str, net.string("mac_prefix", "7a:77:6e"))
    if not _MAC_PREFIX.match(value):
        raise net.fail("mac_prefix", f"expected three hex octets such as '7a:77:6e', got {value!r}")
    first = int(value[:2], 16)
    if first & 0x01:
        raise net.fail(
            "mac_prefix", f"{value!r} is a multicast prefix; the first octet must be even"
        )
    if not first & 0x02:
        raise net.fail(
            "mac_prefix",
            f"{value!r} is not locally administered; the first octet needs bit 0x02 set "
            "(e.g. '7a:77:6e')",
        )
    return value.lower()


def _vlans(net: Reader) -> tuple[int, int]:
    value = net.typed("vlans", [2, 4094], list, "a list [first, last]")
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise net.fail("vlans", f"expected [first, last] with two integers, got {value!r}")
    first, last = value
    if not (1 <= first <= 4094 and 1 <= last <= 4094):
        raise net.fail("vlans", f"expected VLAN ids in 1..4094, got {value!r}")
    if first > last:
        raise net.fail("vlans", f"expected first <= last, got {value!r}")
    return first, last


def _bridges(net: Reader) -> dict[str, str]:
    value = net.typed("bridges", {}, dict, 'a table such as { "eth0.2" = "net-a" }')
    for bridge, network in value.items():
        if not isinstance(network, str) or not network:
            raise net.fail(
                f"bridges.{bridge}", f"expected a site network name, got {describe(network)}"
            )
    return dict(value)


def _fqdn_ok(fqdn: str) -> bool:
    name = fqdn[:-1] if fqdn.endswith(".") else fqdn
    labels = name.split(".")
    return (
        0 < len(name) <= 253
        and len(labels) >= 2
        and all(_FQDN_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _public_pool(net: Reader) -> tuple[PublicAddress, ...]:
    entries = net.typed("public", REQUIRED, list, 'a list of { ip = "…", fqdn = "…" }')
    if not entries:
        raise net.fail("public", "the public address pool is empty; expected at least one entry")
    pool: list[PublicAddress] = []
    seen_ip: dict[str, int] = {}
    seen_fqdn: dict[str, int] = {}
    for number, entry in enumerate(entries):
        key = f"public[{number}]"
        if not isinstance(entry, dict):
            raise net.fail(key, f'expected {{ ip = "…", fqdn = "…" }}, got {describe(entry)}')
        entry_reader = Reader(net.source, "network", entry, prefix=f"{key} ")
        for extra in entry:
            if extra not in ("ip", "fqdn"):
                raise entry_reader.fail(extra, f"unknown key{did_you_mean(extra, ['ip', 'fqdn'])}")
        ip = cast(str, entry_reader.ip("ip", REQUIRED))
        fqdn = cast(str, entry_reader.string("fqdn", REQUIRED))
        if not _fqdn_ok(fqdn):
            raise net.fail(
                f"{key} fqdn",
                f"expected a fully qualified domain name such as 'calit2-119-222.ucsd.edu', "
                f"got {fqdn!r}",
            )
        if ip in seen_ip:
            raise net.fail(f"{key} ip", f"{ip} is already public[{seen_ip[ip]}]")
        if fqdn.lower() in seen_fqdn:
            raise net.fail(f"{key} fqdn", f"{fqdn} is already public[{seen_fqdn[fqdn.lower()]}]")
        seen_ip[ip] = number
        seen_fqdn[fqdn.lower()] = number
        pool.append(PublicAddress(ip=ip, fqdn=fqdn))
    return tuple(pool)
