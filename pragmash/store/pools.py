"""How much of each site pool (public addresses, VLANs, CPUs, MACs) is held, for reports."""

from __future__ import annotations

from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig


def pool_summary(ledger: Ledger, site: SiteConfig) -> dict[str, dict[str, int]]:
    """Totals per resource: ``{"public": {"total", "held", "free"}, "vlans": …, "cpus": …}``.

    Only leases inside the site's current pools count as held there, so a site config
    that shrank its pool still adds up (held + free == total).
    """
    with ledger.snapshot() as conn:
        held_ips = {r[0] for r in conn.execute("SELECT value FROM leases WHERE kind = 'public_ip'")}
        held_vlans = {
            int(r[0]) for r in conn.execute("SELECT value FROM leases WHERE kind = 'vlan'")
        }
        held_macs = int(
            conn.execute("SELECT COUNT(*) FROM leases WHERE kind = 'mac'").fetchone()[0]
        )
        held_cpus = int(conn.execute("SELECT COALESCE(SUM(cpus), 0) FROM nodes").fetchone()[0])
        vcs = int(conn.execute("SELECT COUNT(*) FROM vcs").fetchone()[0])
    pool_ips = {a.ip for a in site.public_pool}
    ips_held = len(pool_ips & held_ips)
    vlan_range = range(site.vlan_first, site.vlan_last + 1)
    vlans_held = sum(1 for v in held_vlans if v in vlan_range)
    usable = site.cpu_capacity - site.cpu_reserve
    return {
        "public": {"total": len(pool_ips), "held": ips_held, "free": len(pool_ips) - ips_held},
        "vlans": {
            "total": len(vlan_range),
            "held": vlans_held,
            "free": len(vlan_range) - vlans_held,
        },
        "cpus": {
            "total": usable,
            "capacity": site.cpu_capacity,
            "reserve": site.cpu_reserve,
            "held": held_cpus,
            "free": max(usable - held_cpus, 0),
        },
        "macs": {"held": held_macs},
        "vcs": {"held": vcs},
    }
