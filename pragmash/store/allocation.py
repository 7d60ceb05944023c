"""Allocation: what a VC gets from the site, decided in one ledger transaction.

A VC gets one public address (with its FQDN) for its frontend, one private VLAN,
site-unique MACs, private addresses on its own network and CPUs. ``allocate`` either
takes all of it or nothing: it runs inside ``BEGIN IMMEDIATE``, so two runs at once
never get the same lease, and any shortage rolls the whole transaction back with a
message saying what was short and who holds it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pragmash.errors import AllocationError
from pragmash.store.ledger import Ledger
from pragmash.store.placement import HostCapacity, NodeNeed, config_capacity, place
from pragmash.store.private_ips import compute_private_ips
from pragmash.vc.config.hosts import IMPLICIT_HOST
from pragmash.vc.config.limits import MAX_SITE_CPUS
from pragmash.vc.config.site import PublicAddress, SiteConfig
from pragmash.vc.formats.names import compute_name, frontend_name, validate_name
from pragmash.vc.formats.vcin import VcIn
from pragmash.vc.formats.vcout import ComputeOut, FrontendOut, VcOut

_MAC_COUNTER = "mac"
_MAC_SPACE = 1 << 24  # three octets after the site prefix
_MAX_NAMED_HOLDERS = 5


@dataclass(frozen=True)
class NodeLease:
    """One node's share: its name, CPUs, MACs (frontend: private, public) and addresses."""

    name: str
    role: Literal["frontend", "compute"]
    index: int | None
    cpus: int
    macs: tuple[str, ...]
    private_ip: str
    public_ip: str | None
    host: str = IMPLICIT_HOST  # the site host it is placed on (``[[hosts]] name``)
    memory_mib: int | None = None  # MiB placement counted for it (None: before it did)


@dataclass(frozen=True)
class Allocation:
    """Everything a VC holds. ``cpus`` is the compute CPUs asked for (the frontend's are extra)."""

    vcname: str
    vlan: int
    public: PublicAddress
    cpus: int
    nodes: tuple[NodeLease, ...]  # frontend first, then computes by index

    @property
    def frontend(self) -> NodeLease:
        return self.nodes[0]

    @property
    def computes(self) -> tuple[NodeLease, ...]:
        return self.nodes[1:]

    @property
    def total_cpus(self) -> int:
        """CPUs held, the frontend's included."""
        return sum(node.cpus for node in self.nodes)


def plan_compute_cpus(site: SiteConfig, vcin: VcIn, cpus: int) -> list[int]:
    """CPUs per compute node for ``cpus`` compute CPUs.

    Each node gets the compute template's vCPUs; a site that can make SMP nodes packs
    up to ``max(template vcpus, max_cpus_per_node)`` into one. The last node gets the
    remainder, so the plan always adds up to exactly ``cpus``.
    """
    if cpus < 0:
        raise AllocationError(f"cannot allocate {cpus} compute CPUs: expected 0 or more")
    if cpus == 0:
        return []
    if cpus > MAX_SITE_CPUS:
        # refused before any list is made: such a count would not even fit in memory
        raise AllocationError(
            f"cannot allocate {cpus} compute CPUs: no site has more than {MAX_SITE_CPUS}; "
            + capacity_words(site)
        )
    if vcin.compute is None:
        raise AllocationError(
            f"asked for {cpus} compute CPUs, but {vcin.shown} has no <compute> node template"
        )
    per_node = max(vcin.compute.vcpus, 1)
    if site.smp:
        per_node = max(per_node, site.max_cpus_per_node)
    full, remainder = divmod(cpus, per_node)
    return [per_node] * full + ([remainder] if remainder else [])


def template_memory_mib(vcin: VcIn) -> dict[str, int]:
    """Each role's memory as the vc-in templates ask it, in MiB (rounded up)."""
    frontend = -(-vcin.frontend.memory_kib // 1024)
    compute = -(-vcin.compute.memory_kib // 1024) if vcin.compute is not None else frontend
    return {"frontend": frontend, "compute": compute}


def site_cpus(site: SiteConfig) -> int:
    """CPUs the site hands out to VCs in all (what its config keeps for the host aside)."""
    return site.cpu_capacity - site.cpu_reserve


def capacity_words(site: SiteConfig) -> str:
    """The site's CPU capacity as a sentence naming the settings it comes from."""
    if site.multi_host:
        return (
            f"the site's CPUs are its {len(site.hosts)} hosts' ({site.source}: [[hosts]], "
            f"less [resources] reserve {site.cpu_reserve} on each; `pragmash hosts` shows them)"
        )
    return (
        f"the site has {site_cpus(site)} CPUs to hand out in all "
        f"({site.source}: [resources] cpus {site.cpu_capacity} - reserve {site.cpu_reserve})"
    )


def allocate(
    ledger: Ledger,
    site: SiteConfig,
    vcname: str,
    vcin: VcIn,
    cpus: int,
    *,
    check_vlan: Callable[[int], None] | None = None,
    hosts: Sequence[HostCapacity] | None = None,
    left_out: Mapping[str, str] | None = None,
    memory_mib: Mapping[str, int] | None = None,
) -> Allocation:
    """Take a public address, a VLAN, MACs, private addresses and CPUs for ``vcname``,
    and place each node on a host (:mod:`pragmash.store.placement`) in the same transaction.

    Idempotent for resume: a VC that already holds an allocation of the same ``cpus``
    gets it back unchanged. All or nothing: any shortage raises AllocationError and
    the ledger is left as it was. ``check_vlan`` is called with the VLAN chosen, inside
    the transaction: whatever it raises (the VLAN's bridge clashes on the engine host)
    takes nothing either.

    ``hosts`` is the reachable hosts' capacity (default: the site config's, enough for a
    one-host site); ``left_out`` names unreachable hosts for a refusal's message;
    ``memory_mib`` is each role's memory (default: the vc-in templates').
    """
    validate_name("VC", vcname)
    plan = plan_compute_cpus(site, vcin, cpus)
    memory = dict(memory_mib) if memory_mib else template_memory_mib(vcin)
    with ledger.transaction() as conn:
        held = load_allocation(conn, vcname)
        if held is not None:
            if held.cpus == cpus:
                return held
            raise AllocationError(held_elsewise(site, vcin, held, cpus))
        private_ips = compute_private_ips(vcin, len(plan))
        public, vlan = _take_public_and_vlan(conn, site, vcin, plan)
        if check_vlan is not None:
            check_vlan(vlan)
        macs = take_macs(conn, site, 2 + len(plan))
        nodes = [
            NodeLease(
                name=frontend_name(vcname),
                role="frontend",
                index=None,
                cpus=vcin.frontend.vcpus,
                macs=(macs[0], macs[1]),
                private_ip=vcin.private_ip,
                public_ip=public.ip,
            )
        ]
        for index, node_cpus in enumerate(plan):
            nodes.append(
                NodeLease(
                    name=compute_name(vcname, index),
                    role="compute",
                    index=index,
                    cpus=node_cpus,
                    macs=(macs[2 + index],),
                    private_ip=private_ips[index],
                    public_ip=None,
                )
            )
        placed = place(
            conn,
            site,
            config_capacity(site) if hosts is None else hosts,
            [NodeNeed(n.name, n.cpus, memory[n.role]) for n in nodes],
            left_out=left_out,
            one_host=site.multi_host and site.private_network.mode == "isolated",
        )
        nodes = [
            dataclasses.replace(n, host=host, memory_mib=memory[n.role])
            for n, host in zip(nodes, placed, strict=True)
        ]
        allocation = Allocation(
            vcname=vcname, vlan=vlan, public=public, cpus=cpus, nodes=tuple(nodes)
        )
        try:
            _store(conn, allocation, vcin)
        except sqlite3.IntegrityError as exc:
            raise AllocationError(
                f"ledger refused a lease for VC {vcname} ({exc}); nothing was taken"
            ) from None
        return allocation


def held_elsewise(site: SiteConfig, vcin: VcIn, held: Allocation, cpus: int) -> str:
    """The refusal of ``cpus`` for a VC that holds another count, saying what does it:
    ``scale`` to change the count, ``clean`` to start over."""
    text = (
        f"VC {held.vcname} already holds an allocation of {held.cpus} compute CPUs, not {cpus}"
        f" (a scale changed it, or --num_compute differs): `--num_compute {held.cpus}` goes"
        " on with what it holds"
    )
    change = len(plan_compute_cpus(site, vcin, cpus)) - len(held.computes)
    if change:
        return (
            f"{text}; `pragmash scale {held.vcname} {change:+d}` makes it"
            f" {len(held.computes) + change} compute(s) and keeps the VC; or"
            f" `pragmash clean {held.vcname}` first releases it all"
        )
    return f"{text}; or run `pragmash clean {held.vcname}` first to release it"


class _Rehearsed(Exception):
    """Rolls a rehearsal's transaction back."""


def rehearse(
    ledger: Ledger,
    site: SiteConfig,
    vcname: str,
    vcin: VcIn,
    cpus: int,
    *,
    hosts: Sequence[HostCapacity] | None = None,
    left_out: Mapping[str, str] | None = None,
    memory_mib: Mapping[str, int] | None = None,
) -> Allocation:
    """What :func:`allocate` would take now (``--dry-run``), taking nothing: the same
    checks and choices in a transaction rolled back. A shortage is its AllocationError;
    a run started later decides again, so it may get another address."""
    taken: Allocation | None = None
    try:
        with ledger.transaction():
            taken = allocate(
                ledger,
                site,
                vcname,
                vcin,
                cpus,
                hosts=hosts,
                left_out=left_out,
                memory_mib=memory_mib,
            )
            raise _Rehearsed
    except _Rehearsed:
        pass
    assert taken is not None
    return taken


def _holders(names: list[str]) -> str:
    """``calit2, demo, …`` naming at most a few VCs so the message stays one line."""
    unique = sorted(set(names))
    text = ", ".join(unique[:_MAX_NAMED_HOLDERS])
    if len(unique) > _MAX_NAMED_HOLDERS:
        text += f" and {len(unique) - _MAX_NAMED_HOLDERS} more"
    return text


def _take_public_and_vlan(
    conn: sqlite3.Connection, site: SiteConfig, vcin: VcIn, plan: list[int]
) -> tuple[PublicAddress, int]:
    """Pick the first free public address and VLAN and check CPUs; report every shortage."""
    short: list[str] = []

    held_ips = {
        row["value"]: row["vcname"]
        for row in conn.execute("SELECT value, vcname FROM leases WHERE kind = 'public_ip'")
    }
    public = next((a for a in site.public_pool if a.ip not in held_ips), None)
    if public is None:
        holders = [held_ips[a.ip] for a in site.public_pool]
        short.append(
            f"no free public address: all {len(site.public_pool)} in the site pool are held "
            f"(by {_holders(holders)})"
        )

    held_vlans = {
        int(row["value"]): row["vcname"]
        for row in conn.execute("SELECT value, vcname FROM leases WHERE kind = 'vlan'")
    }
    vlan = next(
        (v for v in range(site.vlan_first, site.vlan_last + 1) if v not in held_vlans), None
    )
    if vlan is None:
        size = site.vlan_last - site.vlan_first + 1
        holders = [
            held_vlans[v] for v in range(site.vlan_first, site.vlan_last + 1) if v in held_vlans
        ]
        short.append(
            f"no free VLAN: all {size} in {site.vlan_first}..{site.vlan_last} are held "
            f"(by {_holders(holders)})"
        )

    # a one-host site's CPUs, said beside the other shortages; hosts: placement's to say
    held_cpus = int(conn.execute("SELECT COALESCE(SUM(cpus), 0) FROM nodes").fetchone()[0])
    free_cpus = site.cpu_capacity - site.cpu_reserve - held_cpus
    asked = sum(plan)
    if not site.multi_host and asked + vcin.frontend.vcpus > free_cpus:
        short.append(
            f"not enough CPUs: asked {asked} (+{vcin.frontend.vcpus} frontend), "
            f"{max(free_cpus, 0)} free of {site.cpu_capacity} (reserve {site.cpu_reserve})"
        )

    if short or public is None or vlan is None:
        raise AllocationError("; ".join(short))
    return public, vlan


def take_macs(conn: sqlite3.Connection, site: SiteConfig, count: int) -> list[str]:
    """``count`` MACs from the site prefix and a counter; never one that is held.

    Call inside the ledger transaction that stores them (``allocate``, ``resize.grow``).
    """
    row = conn.execute("SELECT value FROM counters WHERE name = ?", (_MAC_COUNTER,)).fetchone()
    counter = int(row["value"]) if row else 0
    macs: list[str] = []
    tried = 0
    while len(macs) < count:
        if tried >= _MAC_SPACE:
            raise AllocationError(
                f"no free MAC address: all {_MAC_SPACE} under prefix {site.mac_prefix} are held"
            )
        counter = (counter + 1) % _MAC_SPACE
        tried += 1
        mac = site.mac_prefix + "".join(f":{octet:02x}" for octet in counter.to_bytes(3, "big"))
        held = conn.execute(
            "SELECT 1 FROM leases WHERE kind = 'mac' AND value = ?", (mac,)
        ).fetchone()
        if held is None:
            macs.append(mac)
    conn.execute(
        "INSERT INTO counters(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (_MAC_COUNTER, counter),
    )
    return macs


def _store(conn: sqlite3.Connection, allocation: Allocation, vcin: VcIn) -> None:
    conn.execute(
        "INSERT INTO vcs(vcname, vc_in_path, cpus, vlan, public_ip, public_fqdn, created_at, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'allocated')",
        (
            allocation.vcname,
            str(vcin.path),
            allocation.cpus,
            allocation.vlan,
            allocation.public.ip,
            allocation.public.fqdn,
            datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    vc = allocation.vcname
    conn.execute(
        "INSERT INTO leases(kind, value, vcname, node) VALUES ('public_ip', ?, ?, ?)",
        (allocation.public.ip, vc, allocation.frontend.name),
    )
    conn.execute(
        "INSERT INTO leases(kind, value, vcname, node) VALUES ('vlan', ?, ?, NULL)",
        (str(allocation.vlan), vc),
    )
    for node in allocation.nodes:
        conn.execute(
            "INSERT INTO nodes(vcname, name, role, idx, cpus, private_ip, public_ip,"
            " private_mac, public_mac, host, memory_mib) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                vc,
                node.name,
                node.role,
                node.index,
                node.cpus,
                node.private_ip,
                node.public_ip,
                node.macs[0],
                node.macs[1] if len(node.macs) > 1 else None,
                node.host,
                node.memory_mib,
            ),
        )
        for mac in node.macs:
            conn.execute(
                "INSERT INTO leases(kind, value, vcname, node) VALUES ('mac', ?, ?, ?)",
                (mac, vc, node.name),
            )


def load_allocation(conn: sqlite3.Connection, vcname: str) -> Allocation | None:
    """The VC's allocation as the ledger holds it, read on ``conn`` (inside the caller's
    transaction, so what is read is what that transaction then changes); None if none."""
    vc = conn.execute(
        "SELECT vcname, cpus, vlan, public_ip, public_fqdn FROM vcs WHERE vcname = ?", (vcname,)
    ).fetchone()
    if vc is None:
        return None
    rows = conn.execute(
        "SELECT name, role, idx, cpus, private_ip, public_ip, private_mac, public_mac,"
        " host, memory_mib FROM nodes WHERE vcname = ?"
        " ORDER BY CASE role WHEN 'frontend' THEN 0 ELSE 1 END, idx",
        (vcname,),
    ).fetchall()
    nodes = tuple(
        NodeLease(
            name=row["name"],
            role=row["role"],
            index=row["idx"],
            cpus=row["cpus"],
            macs=(row["private_mac"], row["public_mac"])
            if row["public_mac"]
            else (row["private_mac"],),
            private_ip=row["private_ip"],
            public_ip=row["public_ip"],
            host=row["host"] or IMPLICIT_HOST,
            memory_mib=row["memory_mib"],
        )
        for row in rows
    )
    return Allocation(
        vcname=vc["vcname"],
        vlan=int(vc["vlan"]),
        public=PublicAddress(ip=vc["public_ip"], fqdn=vc["public_fqdn"]),
        cpus=int(vc["cpus"]),
        nodes=nodes,
    )


def next_free_vlan(ledger: Ledger, site: SiteConfig) -> int | None:
    """The VLAN the next allocation would take, as things stand (None: none is free).

    For checks made before allocating; the allocation itself decides in its transaction.
    """
    with ledger.snapshot() as conn:
        held = {int(r[0]) for r in conn.execute("SELECT value FROM leases WHERE kind = 'vlan'")}
    return next((v for v in range(site.vlan_first, site.vlan_last + 1) if v not in held), None)


def current_allocation(ledger: Ledger, vcname: str) -> Allocation | None:
    """What ``vcname`` holds now, or None."""
    with ledger.snapshot() as conn:
        return load_allocation(conn, vcname)


def allocated_vcs(ledger: Ledger) -> list[str]:
    """Names of the VCs that hold an allocation, sorted (for listings)."""
    with ledger.snapshot() as conn:
        return [row[0] for row in conn.execute("SELECT vcname FROM vcs ORDER BY vcname")]


def release(ledger: Ledger, vcname: str) -> bool:
    """Free everything ``vcname`` holds; True if it held anything. Safe to repeat."""
    with ledger.transaction() as conn:
        conn.execute("DELETE FROM leases WHERE vcname = ?", (vcname,))
        conn.execute("DELETE FROM nodes WHERE vcname = ?", (vcname,))
        cursor = conn.execute("DELETE FROM vcs WHERE vcname = ?", (vcname,))
        return cursor.rowcount > 0


def release_nodes(ledger: Ledger, vcname: str, *, keep: set[str]) -> list[str]:
    """Free the nodes of ``vcname`` not in ``keep`` (their rows and MACs); their names.

    For a clean that could not reach every host: the VC itself (address, VLAN) and the
    kept nodes stay held until a later clean destroys them.
    """
    with ledger.transaction() as conn:
        rows = conn.execute("SELECT name FROM nodes WHERE vcname = ?", (vcname,)).fetchall()
        gone = [r["name"] for r in rows if r["name"] not in keep]
        for name in gone:
            conn.execute(
                "DELETE FROM leases WHERE vcname = ? AND node = ? AND kind = 'mac'",
                (vcname, name),
            )
            conn.execute("DELETE FROM nodes WHERE vcname = ? AND name = ?", (vcname, name))
        return gone


def build_vc_out(
    allocation: Allocation, vcin: VcIn, site: SiteConfig, *, key: str | None = None
) -> VcOut:
    """The vc-out.xml content for an allocation: public side from the site, private from vc-in.

    ``key`` is the ``--key`` text (one public key a line), written as ``<key>``.
    """
    fe = allocation.frontend
    frontend = FrontendOut(
        name=fe.name,
        public_fqdn=allocation.public.fqdn,
        public_ip=allocation.public.ip,
        public_netmask=site.netmask,
        public_gw=site.gateway,
        public_mac=fe.macs[1],
        private_ip=fe.private_ip,
        private_netmask=vcin.private_netmask,
        private_mac=fe.macs[0],
    )
    computes = tuple(
        ComputeOut(name=node.name, mac=node.macs[0], ip=node.private_ip, cpus=node.cpus)
        for node in sorted(allocation.computes, key=lambda n: n.index or 0)
    )
    return VcOut(
        frontend=frontend,
        computes=computes,
        dns_ip=site.dns,
        dns_search=site.dns_search,
        dns_domain=site.dns_domain,
        key=key,
    )
