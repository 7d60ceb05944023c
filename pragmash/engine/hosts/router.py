"""One engine connection per host, behind the one engine a run or a command talks to.

A site with ``[[hosts]]`` has an engine driver per host (libvirt at each host's URI).
:class:`HostRouter` holds them by host name and is itself an
:class:`~pragmash.driver_api.EngineDriver`: every domain operation for a node goes to
the connection of the host the allocation placed the node on, so the runtime, the boot
pipeline, the waits and the lifecycle commands need not know hosts exist. A VC's
private network is made, checked and removed on each host its nodes use.

Where each node is comes in once per command: whoever opens the VC reads its
allocation and calls :meth:`HostRouter.locate` (:func:`pragmash.engine.hosts.capacity.locate`),
and a :class:`~pragmash.driver_api.NodePlan` carries its own ``host``. The router never
reads the ledger: a domain operation costs one dictionary look-up, not a query.

Hosts are connected in parallel, once per command (:meth:`HostRouter.check`). A host
that cannot be reached is remembered in :attr:`HostRouter.unreachable` (name -> why)
rather than failing the command: allocation leaves it out, ``status`` and ``clean``
name it and go on with the rest. An operation on a node of such a host raises a
StepError naming the host.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import (
    Closable,
    Consoles,
    ConsoleStream,
    DomainStates,
    EngineDriver,
    GuestAgents,
    HostInfo,
    HostResources,
    NetworkState,
    NodePlan,
    PowerControl,
    PrivateNetworkPlan,
    PrivateNetworks,
    SiteHosts,
    StageContext,
    StageResult,
)
from pragmash.engine.hosts.disks import HostDisks, pool_host, remove_host_disk
from pragmash.engine.run.diskwork import DiskWork
from pragmash.errors import AgentUnreachable, PragmashError, StepError
from pragmash.vc.config.hosts import gone_host, ledger_host
from pragmash.vc.config.site import SiteConfig

#: At most this many hosts are connected (or worked on) at once.
CONNECT_WORKERS = 16

T = TypeVar("T")


class HostRouter:
    """The site's hosts' engines as one engine; see the module docstring."""

    def __init__(self, site: SiteConfig, engines: Mapping[str, EngineDriver]) -> None:
        self.site = site
        self.engines = dict(engines)  # host name -> engine, in the site config's order
        self.name = next(iter(self.engines.values())).name
        self.unreachable: dict[str, str] = {}
        self._checked = False
        self._lock = threading.Lock()
        self._hosts: dict[str, str] = {}  # node name -> host, as located
        self._vc_hosts: dict[str, list[str]] = {}  # vcname -> the hosts its nodes use

    # -- hosts ------------------------------------------------------------------

    @property
    def uris(self) -> dict[str, str]:
        return {h.name: h.uri for h in self.site.hosts}

    def check(self) -> None:
        """Connect every host at once (once per router); fail only when none answers."""
        with self._lock:
            if not self._checked:
                self.unreachable = connect_all(self.engines)
                self._checked = True
        if len(self.unreachable) == len(self.engines):
            raise StepError(
                "no host of the site can be reached: "
                + "; ".join(
                    f"{name} ({self.uris[name]}): {why}" for name, why in self.unreachable.items()
                ),
                stage=stages.CONNECT,
                hint="check the site config's [[hosts]] uris and that each libvirtd runs",
            )

    def reachable(self) -> dict[str, EngineDriver]:
        """The engines of the hosts that answered (connecting first if not yet done)."""
        self.check()
        return {n: e for n, e in self.engines.items() if n not in self.unreachable}

    def locate(self, vcname: str, hosts: Mapping[str, str]) -> None:
        """Where VC ``vcname``'s nodes are (node -> host), from its allocation; once a command.

        A row from before placement is on the first host; a host name the site no longer
        lists stays itself, and its nodes cannot be reached (:meth:`engine_of_host`).
        """
        names = list(self.engines)
        placed = {name: ledger_host(host, names) for name, host in hosts.items()}
        self._hosts.update(placed)
        used = set(placed.values())
        self._vc_hosts[vcname] = [h for h in self.engines if h in used]

    def host_of(self, name: str) -> str:
        """The host a node is on, as located; else where its domain is; else the first host."""
        host = self._hosts.get(name)
        if host is not None:
            return host
        for host, engine in self.reachable().items():  # a domain the allocation does not know
            if engine.state(name) != domain_states.ABSENT:
                self._hosts[name] = host
                return host
        return self.site.hosts[0].name

    def engine_for(self, name: str) -> EngineDriver:
        """The connected engine of the host node ``name`` is on; StepError when unreachable."""
        return self.engine_of_host(self.host_of(name))

    def engine_of_host(self, host: str) -> EngineDriver:
        """Host ``host``'s connected engine; StepError naming it when it cannot be reached."""
        self.check()
        if host not in self.engines:
            raise StepError(
                f"host {host}: {gone_host(host)}",
                stage=stages.CONNECT,
                hint=f"list the host again in {self.site.source} to reach its nodes",
            )
        if host in self.unreachable:
            raise StepError(
                f"host {host} ({self.uris[host]}) is unreachable: {self.unreachable[host]}",
                stage=stages.CONNECT,
                hint="bring the host back, then run the command again",
            )
        return self.engines[host]

    def _hosts_of_vc(self, vcname: str) -> list[str]:
        """The hosts VC ``vcname``'s nodes are placed on (all reachable ones before placement)."""
        return self._vc_hosts.get(vcname) or list(self.reachable())

    # -- EngineDriver -------------------------------------------------------------

    @property
    def simulated(self) -> bool:
        """True when every host that answers is simulated (an unreachable one does not count)."""
        with contextlib.suppress(PragmashError):  # none answers: every one counts
            self.check()
        return all(e.simulated for n, e in self.engines.items() if n not in self.unreachable)

    def host_info(self) -> HostInfo:
        """The first reachable host's (domain type, emulator): the site's hosts are alike."""
        return next(iter(self.reachable().values())).host_info()

    def host_memory_mib(self) -> int | None:
        """All reachable hosts' memory together (placement checks each host's own)."""
        total = 0
        for engine in self.reachable().values():
            if not isinstance(engine, HostResources):
                return None
            memory = engine.host_memory_mib()
            if memory is None:
                return None
            total += int(memory)
        return total

    def host_cpus(self) -> int:
        """All reachable hosts' CPUs together (placement reads each host's own)."""
        return sum(
            int(e.host_cpus()) for e in self.reachable().values() if isinstance(e, HostResources)
        )

    def close(self) -> None:
        for engine in self.engines.values():
            if isinstance(engine, Closable):
                engine.close()

    def list_domains(self, prefix: str) -> list[str]:
        names: set[str] = set()
        for engine in self.reachable().values():
            names.update(engine.list_domains(prefix))
        return sorted(names)

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        host = node.host if node.host in self.engines else self.host_of(node.name)
        self._hosts[node.name] = host
        result = self.engine_of_host(host).boot(node, ctx)
        result.products.setdefault("host", host)
        return result

    def state(self, name: str) -> str:
        return self.engine_for(name).state(name)

    def states(self, names: Sequence[str]) -> dict[str, str]:
        """Each node's state: one call per host whose engine reads many at once
        (:class:`~pragmash.driver_api.DomainStates`), else one per node; the hosts at once."""
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(self.host_of(name), []).append(name)

        def read(host: str) -> dict[str, str]:
            engine, group = self.engine_of_host(host), groups[host]
            if isinstance(engine, DomainStates):
                return engine.states(group)
            return {name: engine.state(name) for name in group}

        if len(groups) < 2:
            found = [read(host) for host in groups]
        else:
            with ThreadPoolExecutor(max_workers=min(CONNECT_WORKERS, len(groups))) as pool:
                found = list(pool.map(read, groups))
        done = {name: state for part in found for name, state in part.items()}
        return {name: done[name] for name in names}

    def state_reason(self, name: str) -> str:
        return self.engine_for(name).state_reason(name)

    def agent_answers(self, name: str) -> bool:
        return self.engine_for(name).agent_answers(name)

    def shutdown(self, name: str, timeout: float, ctx: StageContext) -> bool:
        return self.engine_for(name).shutdown(name, timeout, ctx)

    def destroy(self, name: str) -> None:
        """Off and undefined; on a ``pool`` host its disk volume and console log go too."""
        host = self.host_of(name)
        engine = self.engine_of_host(host)
        engine.destroy(name)
        remove_host_disk(self.site, host, engine, name)

    def remove_disks(self, name: str) -> list[str]:
        """A node whose domain is gone already (undefined by hand): what :meth:`destroy`
        would have removed with it on a ``pool`` host; each volume removed, with where."""
        host = self.host_of(name)
        config = pool_host(self.site, host)
        if config is None:
            return []
        removed = remove_host_disk(self.site, host, self.engine_of_host(host), name)
        return [f"{volume} from pool {config.pool} on {host}" for volume in removed]

    def domain_xml(self, name: str) -> str | None:
        return self.engine_for(name).domain_xml(name)

    # -- PowerControl: the node's host's, where its engine has it ------------------

    def _power(self, name: str) -> PowerControl:
        engine = self.engine_for(name)
        if not isinstance(engine, PowerControl):
            raise StepError(
                f"the engine of {name}'s host cannot power a domain off and on",
                stage=stages.START,
            )
        return engine

    def request_shutdown(self, name: str) -> bool:
        return self._power(name).request_shutdown(name)

    def power_off(self, name: str) -> bool:
        return self._power(name).power_off(name)

    def start(self, name: str) -> bool:
        return self._power(name).start(name)

    def agent_command(self, name: str, command: str, timeout: int) -> str:
        engine = self.engine_for(name)
        if not isinstance(engine, GuestAgents):
            raise AgentUnreachable(f"{name}: the engine of its host passes no guest agent commands")
        return engine.agent_command(name, command, timeout)

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        return self.engine_for(name).console_tail(name, lines)

    def console_log_path(self, name: str) -> Path | None:
        engine = self.engine_for(name)
        return engine.console_log_path(name) if isinstance(engine, Consoles) else None

    def open_console(self, name: str) -> ConsoleStream:
        engine = self.engine_for(name)
        if not isinstance(engine, Consoles):
            raise StepError(
                f"{name}: the engine driver {engine.name!r} offers no console",
                stage=stages.CONSOLE,
            )
        return engine.open_console(name)

    # -- PrivateNetworks: on every host the VC uses ---------------------------------

    def _networks(
        self, vcname: str, *, skip_unreachable: bool = False
    ) -> list[tuple[str, PrivateNetworks]]:
        out: list[tuple[str, PrivateNetworks]] = []
        for host in self._hosts_of_vc(vcname):
            if skip_unreachable and host in self.unreachable:
                continue
            engine = self.engine_of_host(host)
            if isinstance(engine, PrivateNetworks):
                out.append((host, engine))
        return out

    # A host that does not answer is skipped here: the nodes on it fail on their own,
    # naming it, and the VC's other nodes go on.

    def check_private_network(self, plan: PrivateNetworkPlan) -> None:
        for _host, networks in self._networks(plan.vcname, skip_unreachable=True):
            networks.check_private_network(plan)

    def ensure_private_network(self, plan: PrivateNetworkPlan) -> StageResult:
        networks = self._networks(plan.vcname, skip_unreachable=True)
        results = [(h, n.ensure_private_network(plan)) for h, n in networks]
        # a network made anew anywhere is said first (private_network.made_anew reads that)
        results.sort(key=lambda hr: not hr[1].message.startswith(("created", "started")))
        away = [h for h in self._hosts_of_vc(plan.vcname) if h in self.unreachable]
        return StageResult(
            outcome=outcomes.DONE,
            message="; ".join(
                [f"{r.message} (on {h})" for h, r in results]
                + [f"not on {h} (unreachable)" for h in away]
            ),
            products={"private_network": plan.attach},
        )

    def private_network_state(self, plan: PrivateNetworkPlan) -> NetworkState:
        """The network on each host the VC uses; a host that does not answer is named."""
        networks = self._networks(plan.vcname, skip_unreachable=True)
        states = [(h, n.private_network_state(plan)) for h, n in networks]
        away = [h for h in self._hosts_of_vc(plan.vcname) if h in self.unreachable]
        return NetworkState(
            name=states[0][1].name if states else plan.attach,
            exists=bool(states) and all(s.exists for _h, s in states),
            active=bool(states) and all(s.active for _h, s in states),
            detail="; ".join(
                [f"{h}: {s.detail}" for h, s in states] + [f"{h}: unreachable" for h in away]
            ),
        )

    def remove_private_network(self, vcname: str) -> bool:
        removed = False
        for engine in self.reachable().values():  # found by name, wherever it is
            if isinstance(engine, PrivateNetworks) and engine.remove_private_network(vcname):
                removed = True
        return removed


def per_host(engine: EngineDriver, names: Sequence[str], work: Callable[[str], T]) -> dict[str, T]:
    """``work(name)`` for every node: one host's nodes one after another, the hosts at once.

    For the lifecycle commands (status, shutdown, clean), so a site of many hosts takes
    about as long as its busiest host. A plain one-host engine runs them in order. The
    first error raised is raised again once every host has finished.
    """
    groups: dict[str, list[str]] = {}
    if isinstance(engine, SiteHosts):
        for name in names:
            groups.setdefault(engine.host_of(name), []).append(name)
    if len(groups) < 2:
        return {name: work(name) for name in names}

    def run(group: list[str]) -> dict[str, T]:
        return {name: work(name) for name in group}

    done: dict[str, T] = {}
    with ThreadPoolExecutor(max_workers=min(CONNECT_WORKERS, len(groups))) as pool:
        for result in [pool.submit(run, group) for group in groups.values()]:
            done.update(result.result())
    return {name: done[name] for name in names}


def node_states(engine: EngineDriver, names: Sequence[str]) -> dict[str, str]:
    """Every named node's state, for the lifecycle commands: one call per host where the
    engine reads many at once (:class:`~pragmash.driver_api.DomainStates`), else one
    call per node, the hosts at once (:func:`per_host`)."""
    if isinstance(engine, DomainStates):
        return engine.states(names)
    return per_host(engine, names, engine.state)


def connect_all(engines: Mapping[str, EngineDriver]) -> dict[str, str]:
    """Connect every engine at once; the ones that failed, by host name, with why."""

    def connect(engine: EngineDriver) -> str:
        try:
            engine.check()
        except PragmashError as err:
            return err.message
        return ""

    if not engines:
        return {}
    with ThreadPoolExecutor(max_workers=min(CONNECT_WORKERS, len(engines))) as pool:
        outcomes = dict(zip(engines, pool.map(connect, engines.values()), strict=True))
    return {name: why for name, why in outcomes.items() if why}


def host_disks_for(
    site: SiteConfig, engine: EngineDriver, disk_work: DiskWork, ctx: StageContext
) -> Callable[[NodePlan], NodePlan]:
    """What the boot step calls before each domain starts: on a site with ``pool``
    hosts, send the node's disk to its host (:class:`HostDisks`); else (or where the
    run does no disk work: ``disk_work``) nothing."""
    pool_hosts = any(h.storage == "pool" for h in site.hosts)
    if not isinstance(engine, SiteHosts) or not pool_hosts or disk_work.simulated:
        return lambda node: node
    disks = HostDisks(site, engine.host_of, engine.engine_of_host, ctx.temp_dir / "upload")
    return lambda node: disks.place(node, ctx)
