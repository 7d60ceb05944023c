"""Placement: which host each node of a VC goes to, decided inside the allocation.

pragma_boot's kvm_rocks driver spread a VC over the site's vm-containers, most free
capacity first, keeping some processors reserved on each. Here a host's capacity is
its CPUs (and memory, where known) less the site's ``[resources] reserve`` less what
the ledger has already placed there, and :func:`place` runs inside the allocation's
``BEGIN IMMEDIATE`` transaction, so two runs at once never fill the same room twice
and a VC that does not fit takes nothing.

- The frontend goes to the host with the most free CPUs.
- Computes are ``spread`` (each to the host with the most free CPUs then, the
  default) or ``packed`` (on the host in use while it has room, then the next with
  the most free), by ``[resources] placement``.
- A site whose private networks are ``isolated`` (a libvirt network that cannot span
  hosts) keeps each VC on one host: the one with the most free CPUs that holds it all.

Capacity comes from the engine layer (libvirt's count of each host's CPUs and memory,
see :mod:`pragmash.engine.hosts.capacity`), handed in as :class:`HostCapacity`; hosts that
could not be reached are left out by the caller and only named here, in the refusal.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pragmash.errors import AllocationError
from pragmash.vc.config.hosts import ledger_host
from pragmash.vc.config.site import SiteConfig


@dataclass(frozen=True)
class HostCapacity:
    """What one reachable host offers VCs: ``cpus`` and ``memory_mib`` in all (None:
    memory does not limit placement), of which ``reserve`` CPUs are kept back."""

    name: str
    cpus: int
    reserve: int
    memory_mib: int | None = None

    @property
    def usable_cpus(self) -> int:
        return max(self.cpus - self.reserve, 0)


@dataclass(frozen=True)
class HostUse:
    """What the ledger has placed on one host: CPUs, memory (where known), nodes, VCs."""

    cpus: int = 0
    memory_mib: int = 0
    nodes: int = 0
    vcs: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeNeed:
    """One node to place: its name, CPUs and memory in MiB."""

    name: str
    cpus: int
    memory_mib: int


def config_capacity(site: SiteConfig) -> list[HostCapacity]:
    """Capacity from the site config alone: the one-host site's ``[resources] cpus``.

    A ``[[hosts]]`` site's capacity is libvirt's (see ``pragmash.engine.hosts.capacity``); here
    only its hosts whose ``cpus`` the config gives count, for callers with no engine.
    """
    return [
        HostCapacity(h.name, h.cpus, site.cpu_reserve, h.memory_mib)
        for h in site.hosts
        if h.cpus is not None
    ]


def host_of(stored: str | None, site: SiteConfig) -> str:
    """The host a node's ledger row names (:func:`~pragmash.vc.config.hosts.ledger_host`)."""
    return ledger_host(stored, [h.name for h in site.hosts])


def host_use(conn: sqlite3.Connection, site: SiteConfig) -> dict[str, HostUse]:
    """What every host of the site holds now, by host name (every host present, and any
    host the ledger names that the site config no longer lists)."""
    cpus: dict[str, int] = {h.name: 0 for h in site.hosts}
    memory = dict.fromkeys(cpus, 0)
    nodes = dict.fromkeys(cpus, 0)
    vcs: dict[str, set[str]] = {name: set() for name in cpus}
    for row in conn.execute("SELECT vcname, host, cpus, memory_mib FROM nodes"):
        host = host_of(row["host"], site)  # a host gone from the config: its own entry
        cpus[host] = cpus.get(host, 0) + int(row["cpus"])
        memory[host] = memory.get(host, 0) + int(row["memory_mib"] or 0)
        nodes[host] = nodes.get(host, 0) + 1
        vcs.setdefault(host, set()).add(row["vcname"])
    return {
        name: HostUse(cpus[name], memory[name], nodes[name], tuple(sorted(vcs[name])))
        for name in cpus
    }


def place(
    conn: sqlite3.Connection,
    site: SiteConfig,
    hosts: Sequence[HostCapacity],
    nodes: Sequence[NodeNeed],
    *,
    left_out: Mapping[str, str] | None = None,
    one_host: bool = False,
) -> list[str]:
    """The host of each node (frontend first), or AllocationError saying what is short.

    ``hosts`` are the reachable hosts and their capacity; ``left_out`` names the hosts
    that could not be reached (and why), for the refusal's message; ``one_host`` keeps
    the whole VC on one host. Reads the ledger through ``conn`` (the allocation's
    transaction) and writes nothing: the caller stores the result with the leases.
    """
    use = host_use(conn, site)
    free_cpus = {h.name: h.usable_cpus - use[h.name].cpus for h in hosts}
    free_mem: dict[str, int | None] = {
        h.name: None if h.memory_mib is None else h.memory_mib - use[h.name].memory_mib
        for h in hosts
    }
    order = [h.name for h in hosts]
    if not nodes:
        return []

    def fits(host: str, need: NodeNeed) -> bool:
        mem = free_mem[host]
        return free_cpus[host] >= need.cpus and (mem is None or mem >= need.memory_mib)

    def take(host: str, need: NodeNeed) -> None:
        free_cpus[host] -= need.cpus
        mem = free_mem[host]
        if mem is not None:
            free_mem[host] = mem - need.memory_mib

    def most_free(candidates: Sequence[str]) -> str | None:
        # ties go to the host listed first in the site config
        best: str | None = None
        for name in candidates:
            if best is None or free_cpus[name] > free_cpus[best]:
                best = name
        return best

    if one_host:
        total = NodeNeed("", sum(n.cpus for n in nodes), sum(n.memory_mib for n in nodes))
        only = most_free([h for h in order if fits(h, total)])
        if only is None:
            raise AllocationError(_refusal(nodes, hosts, use, left_out, whole=True))
        return [only] * len(nodes)

    # the hosts by most free CPUs, then as listed: a heap, so placing N nodes over H hosts
    # costs N log H, not N * H (entries are replaced, not updated: a stale one is skipped)
    rank = {name: i for i, name in enumerate(order)}
    heap = [(-free_cpus[h], rank[h], h) for h in order]
    heapq.heapify(heap)

    def most_free_fitting(need: NodeNeed) -> str | None:
        passed: list[tuple[int, int, str]] = []
        found: str | None = None
        while heap:
            entry = heapq.heappop(heap)
            if -entry[0] != free_cpus[entry[2]]:
                continue  # stale: the host's current entry is in the heap too
            passed.append(entry)
            if fits(entry[2], need):
                found = entry[2]
                break
        for entry in passed:
            heapq.heappush(heap, entry)
        return found

    placed: list[str] = []
    current: str | None = None
    for need in nodes:
        if site.placement == "packed" and current is not None and fits(current, need):
            host: str | None = current
        else:
            host = most_free_fitting(need)
        if host is None:
            # a host with the CPUs left that still did not fit the node: memory was short
            memory = any(free_cpus[h] >= need.cpus for h in order)
            raise AllocationError(_refusal(nodes, hosts, use, left_out, short=need, memory=memory))
        take(host, need)
        heapq.heappush(heap, (-free_cpus[host], rank[host], host))
        placed.append(host)
        current = host
    return placed


def _refusal(
    nodes: Sequence[NodeNeed],
    hosts: Sequence[HostCapacity],
    use: Mapping[str, HostUse],
    left_out: Mapping[str, str] | None,
    *,
    short: NodeNeed | None = None,
    whole: bool = False,
    memory: bool = False,
) -> str:
    """Why the VC does not fit, naming every host's free room and the hosts left out."""
    asked_cpus = sum(n.cpus for n in nodes)
    asked_mem = sum(n.memory_mib for n in nodes)
    free = sum(max(h.usable_cpus - use[h.name].cpus, 0) for h in hosts)
    if whole:
        head = (
            f"not enough room on any one host for the VC's {len(nodes)} nodes "
            f"({asked_cpus} CPUs, {asked_mem} MiB): the site's private networks are "
            f"'isolated', which cannot span hosts, so a VC stays on one host"
        )
    else:
        assert short is not None
        head = (
            f"not enough {'memory' if memory else 'CPUs'}: the VC's {len(nodes)} nodes need {asked_cpus} CPUs "
            f"({asked_mem} MiB), the reachable hosts have {free} free, and no host has room "
            f"left for {short.name} ({short.cpus} CPUs, {short.memory_mib} MiB)"
        )
    rooms = []
    for h in hosts:
        room = f"{h.name} {max(h.usable_cpus - use[h.name].cpus, 0)} of {h.cpus} CPUs free"
        room += f" (reserve {h.reserve})"
        if h.memory_mib is not None:
            room += f", {max(h.memory_mib - use[h.name].memory_mib, 0)} of {h.memory_mib} MiB"
        rooms.append(room)
    text = f"{head}; {'; '.join(rooms) if rooms else 'no host is reachable'}"
    if left_out:
        text += "; left out, unreachable: " + ", ".join(sorted(left_out))
    return text + "; nothing was taken"
