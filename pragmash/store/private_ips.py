"""Private addresses of a VC's computes, worked out from its frontend's.

Rocks clusters count compute addresses down from .254 of the frontend's network;
pragma_boot's allocations did the same, so existing images expect it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pragmash.errors import AllocationError
from pragmash.vc.formats.vcin import VcIn


def compute_private_ips(vcin: VcIn, count: int) -> list[str]:
    """Compute addresses counting down from .254 of the frontend's /24, skipping the frontend's.

    They must also fall inside the VC's own private network (vc-in's netmask), and not
    on its network or broadcast address. A VC with more computes than its frontend's
    /24 holds goes on in the /24s below it, then those above (as Rocks clusters count
    down through a /16), never on a .0 or .255.
    """
    if count == 0:
        return []
    try:
        frontend = ipaddress.IPv4Address(vcin.private_ip)
        network = ipaddress.IPv4Network(f"{vcin.private_ip}/{vcin.private_netmask}", strict=False)
    except ValueError as exc:
        raise AllocationError(f"{vcin.shown}: bad private network: {exc}") from None
    excluded = {frontend, network.network_address, network.broadcast_address}
    addresses: list[str] = []
    for block in _blocks(frontend, network):
        candidate = block.network_address + 254
        while len(addresses) < count and int(candidate) & 0xFF >= 1:
            if candidate in network and candidate not in excluded:
                addresses.append(str(candidate))
            candidate -= 1
        if len(addresses) == count:
            return addresses
    raise AllocationError(
        f"not enough private addresses: asked {count} computes, {len(addresses)} free "
        f"within {network}, counting down from the frontend's {frontend} ({vcin.shown})"
    )


def _blocks(
    frontend: ipaddress.IPv4Address, network: ipaddress.IPv4Network
) -> Iterator[ipaddress.IPv4Network]:
    """The /24s computes' addresses are taken from, in order: the frontend's, then those
    of ``network`` below it (nearest first), then those above; made as they are needed
    (a /16 holds 256, and most VCs need only the first)."""
    home = ipaddress.IPv4Network(f"{frontend}/24", strict=False)
    yield home
    if network.prefixlen >= 24:
        return
    start, first, last = (
        int(home.network_address),
        int(network.network_address),
        int(network.broadcast_address),
    )
    for block in (*range(start - 256, first - 1, -256), *range(start + 256, last, 256)):
        yield ipaddress.IPv4Network((block, 24))
