"""The site's hosts as the engine layer sees them: capacity, use, reachability.

Placement (:mod:`pragmash.store.placement`) needs each reachable host's CPUs and
memory; those come from the site config where it gives them (``[[hosts]] cpus``,
``memory``; a one-host site's ``[resources] cpus``) and from libvirt otherwise
(the host's node info). ``pragmash hosts`` shows the same figures beside what the
ledger has placed on each host, so what a user reads is what allocation decides by.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from pragmash import stages
from pragmash.driver_api import Closable, EngineDriver, HostResources, SiteHosts
from pragmash.engine.run.registry import load_engine
from pragmash.errors import AllocationError, PragmashError, StepError
from pragmash.store.allocation import Allocation, plan_compute_cpus, template_memory_mib
from pragmash.store.ledger import Ledger
from pragmash.store.placement import (
    HostCapacity,
    HostUse,
    NodeNeed,
    config_capacity,
    host_use,
    place,
)
from pragmash.vc.config.hosts import gone_host, ledger_host
from pragmash.vc.config.site import HostConfig, SiteConfig
from pragmash.vc.formats.vcin import VcIn


@dataclass(frozen=True)
class PlacementInput:
    """What an allocation needs to place nodes: reachable hosts' capacity, the left out."""

    hosts: list[HostCapacity] | None  # None: the site config's own (a one-host site)
    left_out: dict[str, str]  # unreachable host -> why


def placement_input(
    site: SiteConfig, engine: EngineDriver, note: Callable[[str], None] = lambda _t: None
) -> PlacementInput:
    """Capacity of the hosts that answer; each one that does not is named through ``note``.

    Raises StepError only when the capacity of a reachable host cannot be read.
    """
    if not isinstance(engine, SiteHosts):
        return PlacementInput(None, {})
    reachable = engine.reachable()
    for name, why in engine.unreachable.items():
        note(f"warning: host {name} is unreachable, left out of placement: {why}")
    hosts = [
        capacity_of(host, site, reachable[host.name])
        for host in site.hosts
        if host.name in reachable
    ]
    return PlacementInput(hosts, dict(engine.unreachable))


def preview_placement(
    site: SiteConfig,
    engine: EngineDriver,
    ledger: Ledger,
    vcin: VcIn,
    cpus: int,
    memory_mib: Mapping[str, int] | None = None,
) -> list[str]:
    """``--dry-run``'s lines: where each node would go as things stand, and hosts left out.

    Placed in a read-only snapshot with the allocation's own rule; the allocation decides
    again in its transaction, so a run started later may place differently.
    """
    notes: list[str] = []
    given = placement_input(site, engine, notes.append)
    hosts = given.hosts if given.hosts is not None else config_capacity(site)
    per_node = plan_compute_cpus(site, vcin, cpus)
    memory = dict(memory_mib) if memory_mib else template_memory_mib(vcin)
    needs = [NodeNeed("frontend", vcin.frontend.vcpus, memory["frontend"])]
    needs += [NodeNeed(f"compute[{i}]", n, memory["compute"]) for i, n in enumerate(per_node)]
    with ledger.snapshot() as conn:
        try:
            placed = place(
                conn,
                site,
                hosts,
                needs,
                left_out=given.left_out,
                one_host=site.multi_host and site.private_network.mode == "isolated",
            )
        except AllocationError as err:
            return [*notes, f"placement: refused: {err.message}"]
    per_host: dict[str, list[str]] = {}
    for need, host in zip(needs, placed, strict=True):
        per_host.setdefault(host, []).append(need.name)
    return [*notes] + [f"placement: {host}: {', '.join(names)}" for host, names in per_host.items()]


_OFFERS_HOSTS: dict[type, bool] = {}


def hosts_of_engine(engine: EngineDriver) -> SiteHosts | None:
    """The engine as :class:`SiteHosts` when its class offers that, else None.

    Asked once per class: a runtime Protocol check costs about 100 µs, and ``status``
    asks for every node whether its host answers.
    """
    cls = type(engine)
    if cls not in _OFFERS_HOSTS:
        _OFFERS_HOSTS[cls] = isinstance(engine, SiteHosts)
    return cast(SiteHosts, engine) if _OFFERS_HOSTS[cls] else None


def unreachable_host(engine: EngineDriver, host: str) -> str | None:
    """Why ``host`` cannot be reached (the engine already connected), or None when it can."""
    hosts = hosts_of_engine(engine)
    if hosts is None:
        return None
    engine.check()
    names = hosts.engines  # by host name: asked for every node, so no scan of the hosts
    listed = ledger_host(host, names)
    if listed not in names:
        return gone_host(listed)
    return hosts.unreachable.get(listed)


def locate(engine: EngineDriver, allocation: Allocation | None) -> None:
    """Tell an engine over several hosts where the allocation placed each node.

    Called once per command by whoever reads the VC's allocation (a run adopting it,
    ``status``, ``clean``, ``list``…): the engine then sends each domain operation to its
    node's host without asking the ledger. A one-host engine needs nothing.
    """
    if allocation is not None and isinstance(engine, SiteHosts):
        engine.locate(allocation.vcname, {n.name: n.host for n in allocation.nodes})


def placement_products(allocation: Allocation, site: SiteConfig) -> dict[str, str]:
    """The journal's record of where each node went (``hosts``: ``node=host …``).

    Empty for a one-host site, whose journal stays as it was.
    """
    if not site.multi_host:
        return {}
    return {"hosts": " ".join(f"{n.name}={n.host}" for n in allocation.nodes)}


def placement_words(allocation: Allocation, site: SiteConfig) -> str:
    """``; placed: vmc-0 frontend + 2 computes, vmc-1 3 computes`` (one-host site: nothing)."""
    if not site.multi_host:
        return ""
    per_host: dict[str, list[str]] = {}
    for node in allocation.nodes:
        per_host.setdefault(node.host, []).append(node.role)
    parts = []
    for host, roles in per_host.items():
        computes = roles.count("compute")
        words = (["frontend"] if "frontend" in roles else []) + (
            [f"{computes} compute{'s' if computes != 1 else ''}"] if computes else []
        )
        parts.append(f"{host} {' + '.join(words)}")
    return "; placed: " + ", ".join(parts)


def capacity_of(host: HostConfig, site: SiteConfig, engine: EngineDriver) -> HostCapacity:
    """One host's capacity: the config's figures, else the engine's (libvirt node info)."""
    cpus = host.cpus
    resources = engine if isinstance(engine, HostResources) else None
    if cpus is None:
        if resources is None:
            raise StepError(
                f"host {host.name}: the engine driver {engine.name!r} cannot say how many "
                "CPUs the host has",
                stage=stages.CONNECT,
                hint=f"give the host's cpus in the site config ({site.source}: [[hosts]])",
            )
        cpus = int(resources.host_cpus())
    memory = host.memory_mib
    if memory is None and site.multi_host and resources is not None:
        found = resources.host_memory_mib()
        memory = int(found) if found is not None else None
    return HostCapacity(host.name, cpus, site.cpu_reserve, memory)


@dataclass(frozen=True)
class HostReport:
    """One line of ``pragmash hosts``: a host's capacity, what is placed there, reachability."""

    name: str
    uri: str
    storage: str
    reachable: bool
    problem: str  # why it cannot be reached, or why its capacity is unknown
    cpus: int | None
    reserve: int
    cpus_used: int
    cpus_free: int | None
    memory_mib: int | None  # None: unknown, or not limited (one-host site)
    memory_used_mib: int
    nodes: int
    vcs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "vcs": list(self.vcs)}


def site_hosts(site: SiteConfig) -> list[HostReport]:
    """``pragmash hosts``: every host of the site, connected once each, in parallel."""
    engine = load_engine(site)
    try:
        return host_reports(site, engine)
    finally:
        if isinstance(engine, Closable):
            engine.close()


def host_reports(site: SiteConfig, engine: EngineDriver) -> list[HostReport]:
    """Every host of the site, reachable or not, with the ledger's use of it; and every host
    the ledger still places nodes on that the site config no longer lists (unreachable)."""
    ledger = Ledger(site)
    with ledger.snapshot() as conn:
        use = host_use(conn, site)
    engines, unreachable = _engines(site, engine)
    reports = []
    for host in site.hosts:
        problem = unreachable.get(host.name, "")
        capacity: HostCapacity | None = None
        if not problem:
            try:
                capacity = capacity_of(host, site, engines[host.name])
            except PragmashError as err:
                problem = err.message
        if capacity is None and host.cpus is not None:
            capacity = HostCapacity(host.name, host.cpus, site.cpu_reserve, host.memory_mib)
        reachable = host.name not in unreachable
        reports.append(_report(host, site, capacity, use[host.name], reachable, problem))
    listed = {h.name for h in site.hosts}
    for name in sorted(set(use) - listed):  # the ledger's nodes on a host the site lost
        gone = HostConfig(name=name, uri="", storage="shared")
        reports.append(_report(gone, site, None, use[name], False, gone_host(name)))
    return reports


def _engines(
    site: SiteConfig, engine: EngineDriver
) -> tuple[Mapping[str, EngineDriver], dict[str, str]]:
    """Each host's engine, and the hosts that did not answer (name -> why)."""
    if isinstance(engine, SiteHosts):
        with contextlib.suppress(PragmashError):  # every host unreachable: each named below
            engine.check()
        return engine.engines, dict(engine.unreachable)
    name = site.hosts[0].name
    try:
        engine.check()
    except PragmashError as err:
        return {name: engine}, {name: err.message}
    return {name: engine}, {}


def _report(
    host: HostConfig,
    site: SiteConfig,
    capacity: HostCapacity | None,
    use: HostUse,
    reachable: bool,
    problem: str,
) -> HostReport:
    return HostReport(
        name=host.name,
        uri=host.uri,
        storage=host.storage,
        reachable=reachable,
        problem=problem,
        cpus=capacity.cpus if capacity else None,
        reserve=site.cpu_reserve,
        cpus_used=use.cpus,
        cpus_free=max(capacity.usable_cpus - use.cpus, 0) if capacity else None,
        memory_mib=capacity.memory_mib if capacity else None,
        memory_used_mib=use.memory_mib,
        nodes=use.nodes,
        vcs=use.vcs,
    )
