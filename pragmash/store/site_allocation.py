"""Recording an allocation a site's own VE driver made (its ``allocate`` script's vc-out).

pragmash's own allocation takes leases from the site's pools
(:func:`pragmash.store.allocation.allocate`). A site whose engine is its own VE driver
folder decided the addresses, MACs and names itself; the ledger still records them,
in the same tables, so that ``status``, ``clean``, a second VC's allocation and the
journal see them as they see pragmash's: a public address or MAC another VC holds is
refused, and nothing is half-recorded. vc-out has no VLAN: the ledger holds one of
the site's range for the VC, as for its own allocations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from pragmash.errors import AllocationError
from pragmash.store.allocation import Allocation, _store, load_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcin import VcIn


def record_allocation(
    ledger: Ledger,
    site: SiteConfig,
    vcin: VcIn,
    vcname: str,
    made: Callable[[int], Allocation],
) -> Allocation:
    """Store ``made(vlan)`` for ``vcname`` in one transaction; the held one if it has one."""
    with ledger.transaction() as conn:
        held = load_allocation(conn, vcname)
        if held is not None:
            return held
        vlans = {int(r[0]) for r in conn.execute("SELECT value FROM leases WHERE kind = 'vlan'")}
        vlan = next((v for v in range(site.vlan_first, site.vlan_last + 1) if v not in vlans), None)
        if vlan is None:
            raise AllocationError(
                f"no free VLAN in {site.vlan_first}..{site.vlan_last} to record VC {vcname} under"
            )
        allocation = made(vlan)
        try:
            _store(conn, allocation, vcin)
        except sqlite3.IntegrityError as exc:
            raise AllocationError(
                f"the site's allocate gave VC {vcname} what the ledger says another VC holds "
                f"({_which(exc)}); nothing was recorded"
            ) from None
        return allocation


def _which(exc: sqlite3.IntegrityError) -> str:
    text = str(exc)
    if "leases.kind, leases.value" in text:
        return "a public address or MAC already leased"
    if "nodes.private_mac" in text or "nodes.public_mac" in text:
        return "a MAC already leased"
    if "vcs.public_ip" in text:
        return "its public address"
    return text
