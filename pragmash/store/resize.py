"""Growing and shrinking a VC's allocation (``pragmash scale``), one transaction each.

A VC keeps its public address, VLAN and frontend; only computes come and go, always
at the top of the index range, so ``compute-0 … compute-(N-1)`` stay contiguous and
each keeps its private address (those count down from .254 in index order: see
:func:`pragmash.store.private_ips.compute_private_ips`). Growing takes the new computes' MACs,
addresses and CPUs inside ``BEGIN IMMEDIATE`` like ``allocate`` does: any shortage
rolls it all back, so a refused grow takes nothing. Both are idempotent for
``resume``: a VC that already has the computes asked for is left as it is.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pragmash.errors import AllocationError
from pragmash.store.allocation import (  # the ledger's one reading of a VC, and its MACs
    Allocation,
    NodeLease,
    load_allocation,
    take_macs,
    template_memory_mib,
)
from pragmash.store.ledger import Ledger
from pragmash.store.placement import HostCapacity, NodeNeed, config_capacity, place
from pragmash.store.private_ips import compute_private_ips
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.names import compute_name
from pragmash.vc.formats.vcin import VcIn


def compute_cpus(held: Allocation, site: SiteConfig, vcin: VcIn) -> int:
    """CPUs each new compute gets: as many as compute-0 has, else one template node's."""
    if held.computes:
        return held.computes[0].cpus
    if vcin.compute is None:
        raise AllocationError(f"{vcin.shown} has no <compute> node template: the VC cannot grow")
    per_node = max(vcin.compute.vcpus, 1)
    return max(per_node, site.max_cpus_per_node) if site.smp else per_node


def free_cpus(conn: sqlite3.Connection, site: SiteConfig) -> int:
    """CPUs the site has left to hand out, as the ledger stands in ``conn``."""
    held = int(conn.execute("SELECT COALESCE(SUM(cpus), 0) FROM nodes").fetchone()[0])
    return site.cpu_capacity - site.cpu_reserve - held


@dataclass(frozen=True)
class Room:
    """Where a grow may place new computes: the reachable hosts (None: the site config's),
    the hosts left out (unreachable, for a refusal's words) and each role's memory."""

    hosts: Sequence[HostCapacity] | None = None
    left_out: Mapping[str, str] = field(default_factory=dict)
    memory_mib: Mapping[str, int] | None = None


def grow_shortage(
    ledger: Ledger,
    site: SiteConfig,
    vcin: VcIn,
    vcname: str,
    count: int,
    room: Room,
    held: Allocation | None = None,
) -> str | None:
    """Why adding ``count`` computes to ``vcname`` would be refused now (None: it fits).

    For the check a front end makes before it starts a scale (placement included);
    :func:`grow` decides again in its own transaction. ``held``: the VC's allocation as
    the caller has just read it (else it is read here).
    """
    with ledger.snapshot() as conn:
        held = held or load_allocation(conn, vcname)
        if held is None:
            return f"{vcname} holds no allocation"
        try:
            _plan(conn, site, vcin, held, count, room)
        except AllocationError as err:
            return err.message
        return None


def _plan(
    conn: sqlite3.Connection,
    site: SiteConfig,
    vcin: VcIn,
    held: Allocation,
    count: int,
    room: Room,
) -> list[tuple[str, str]]:
    """Each new compute's name and host, or AllocationError saying what is short.

    Reads the ledger through ``conn`` and writes nothing. A VC on a site whose isolated
    private networks cannot span hosts grows only on its frontend's host.
    """
    per_node = compute_cpus(held, site, vcin)
    asked = per_node * count
    free = free_cpus(conn, site)
    if not site.multi_host and asked > free:  # a [[hosts]] site's room is placement's to say
        raise AllocationError(
            f"not enough CPUs to add {count} compute(s) to {held.vcname}: they need {asked} "
            f"({count} x {per_node}), {max(free, 0)} free of {site.cpu_capacity} "
            f"(reserve {site.cpu_reserve}; {site.source}: [resources])"
        )
    compute_private_ips(vcin, len(held.computes) + count)  # the VC's network has room
    memory = (dict(room.memory_mib) if room.memory_mib else template_memory_mib(vcin))["compute"]
    names = [compute_name(held.vcname, len(held.computes) + i) for i in range(count)]
    hosts = list(config_capacity(site) if room.hosts is None else room.hosts)
    if site.multi_host and site.private_network.mode == "isolated":
        hosts = [h for h in hosts if h.name == held.frontend.host]
    needs = [NodeNeed(name, per_node, memory) for name in names]
    placed = place(conn, site, hosts, needs, left_out=room.left_out)
    return list(zip(names, placed, strict=True))


def grow(
    ledger: Ledger,
    site: SiteConfig,
    vcin: VcIn,
    vcname: str,
    computes: int,
    *,
    room: Room,
    check: Callable[[Allocation, int], None] | None = None,
) -> Allocation:
    """Give ``vcname`` computes up to ``computes`` in all; what it holds afterwards.

    ``check(held, count)`` is called inside the transaction before anything is taken
    (the memory check); whatever it raises takes nothing either. The new computes are
    placed (:func:`pragmash.store.placement.place`) in ``room`` in the same transaction.
    """
    with ledger.transaction() as conn:
        held = load_allocation(conn, vcname)
        if held is None:
            raise AllocationError(f"{vcname} holds no allocation: nothing to grow")
        have = len(held.computes)
        if have >= computes:
            return held  # grown already (a resumed scale)
        count = computes - have
        if check is not None:
            check(held, count)
        try:
            planned = _plan(conn, site, vcin, held, count, room)
        except AllocationError as err:
            raise AllocationError(f"{err.message}; nothing was taken") from None
        per_node = compute_cpus(held, site, vcin)
        memory = (dict(room.memory_mib) if room.memory_mib else template_memory_mib(vcin))[
            "compute"
        ]
        addresses = compute_private_ips(vcin, computes)
        macs = take_macs(conn, site, count)
        added: list[NodeLease] = []
        for offset, (name, host) in enumerate(planned):
            index = have + offset
            added.append(
                NodeLease(
                    name,
                    "compute",
                    index,
                    per_node,
                    (macs[offset],),
                    addresses[index],
                    None,
                    host,
                    memory,
                )
            )
            conn.execute(
                "INSERT INTO nodes(vcname, name, role, idx, cpus, private_ip, public_ip,"
                " private_mac, public_mac, host, memory_mib)"
                " VALUES (?, ?, 'compute', ?, ?, ?, NULL, ?, NULL, ?, ?)",
                (
                    vcname,
                    name,
                    index,
                    per_node,
                    addresses[index],
                    macs[offset],
                    host,
                    memory,
                ),
            )
            conn.execute(
                "INSERT INTO leases(kind, value, vcname, node) VALUES ('mac', ?, ?, ?)",
                (macs[offset], vcname, name),
            )
        conn.execute("UPDATE vcs SET cpus = cpus + ? WHERE vcname = ?", (per_node * count, vcname))
        # what the ledger now holds, without reading it all back
        return dataclasses.replace(
            held, cpus=held.cpus + per_node * count, nodes=held.nodes + tuple(added)
        )


def shrink(ledger: Ledger, vcname: str, computes: int) -> tuple[Allocation, list[str]]:
    """Release the computes of ``vcname`` from index ``computes`` up; what it holds now,
    and the names released (none when a resumed scale released them already)."""
    with ledger.transaction() as conn:
        held = load_allocation(conn, vcname)
        if held is None:
            raise AllocationError(f"{vcname} holds no allocation: nothing to shrink")
        going = [n for n in held.computes if n.index is not None and n.index >= computes]
        for node in going:
            conn.execute("DELETE FROM leases WHERE vcname = ? AND node = ?", (vcname, node.name))
            conn.execute("DELETE FROM nodes WHERE vcname = ? AND name = ?", (vcname, node.name))
        if going:
            conn.execute(
                "UPDATE vcs SET cpus = MAX(cpus - ?, 0) WHERE vcname = ?",
                (sum(n.cpus for n in going), vcname),
            )
        shrunk = load_allocation(conn, vcname)
        assert shrunk is not None
        return shrunk, [n.name for n in going]
