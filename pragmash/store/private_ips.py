"""Private addresses of a VC's computes, worked out from its frontend's.

Rocks clusters count compute addresses down from .254 of the frontend's network;
pragma_boot's allocations did the same, so existing images expect it.
"""

from __future__ import annotations

import ipaddress

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
    home = ipaddress.IPv4Network(f"{frontend}/24", strict=False)
    blocks = [home]
    if network.prefixlen < 24:
        others = [b for b in network.subnets(new_prefix=24) if b != home]
        blocks += sorted((b for b in others if b < home), reverse=True)
        blocks += [b for b in others if b > home]
    excluded = {frontend, network.network_address, network.broadcast_address}
    addresses: list[str] = []
    for block in blocks:
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
