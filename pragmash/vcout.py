"""vc-out.xml: what allocation decided, in the format pragma_boot's images read."""

from __future__ import annotations

from dataclasses import dataclass


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
