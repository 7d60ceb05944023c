"""What can be done to a VC outside a run: list, status, history, clean.

These are session-level operations: each opens the site's ledger and engine, asks
them for the truth and, for ``clean``, acts through the engine driver, the
allocation and the lock API. The front ends (``pragmash list``, ``status``,
``history``, ``clean``) only format what these return, so the REPL, a test or
another front end gets the same behaviour without copying it. (``stop`` and
``start`` are runs of their own: :mod:`~pragmash.engine.commands.power`.) Nothing here
prints: what was done is reported through a ``note`` callback or returned as data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import EngineDriver, SiteHosts
from pragmash.engine.hosts.capacity import locate, unreachable_host
from pragmash.engine.hosts.router import node_states, per_host
from pragmash.engine.run.nodes import vc_temp_dir
from pragmash.engine.run.registry import load_engine
from pragmash.engine.steps import private_network
from pragmash.engine.steps.private_network import PrivateNetworkStatus
from pragmash.errors import BusyError, PragmashError, UserError
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.store.history import POWER_FILE, run_kind, runs_of, steps_since_allocation
from pragmash.store.journal import (
    Journal,
    LockHolder,
    RunRecord,
    StepRecord,
    acquire_lock,
    all_last_runs,
    last_run,
    lock_holder,
    release_lock,
    run_outcome,
    steps_of,
    take_lock,
)
from pragmash.store.ledger import Ledger
from pragmash.store.runlog import run_log_path
from pragmash.vc.config.private_network import network_name
from pragmash.vc.config.repository import unknown_vc
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.names import is_node_of

#: Run outcomes that leave something behind for ``clean`` to mark ``cleaned``.
_UNFINISHED = (outcomes.RUNNING, outcomes.FAILED, outcomes.INTERRUPTED)


# -- list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VcSummary:
    """One line of ``pragmash list``: a VC the ledger knows."""

    vcname: str
    state: str  # "allocated" or "released"
    nodes: int
    fqdn: str | None
    last_run: int | None
    last_outcome: str | None
    private_network: PrivateNetworkStatus | None = None  # while allocated
    running: int | None = None  # nodes the engine runs now; None: released, or no engine

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        net = self.private_network
        data["private_network"] = net.to_json() if net is not None else None
        return data


def list_vcs(site: SiteConfig, *, every: bool = False) -> list[VcSummary]:
    """The VCs that hold leases or have a run to resume, by name; ``every``: released ones too.

    A VC cleaned long ago stays in the ledger (its runs are its history) but is left
    out unless ``every``, so the list says what the site is running now.
    """
    ledger = Ledger(site)
    runs = all_last_runs(ledger)
    rows: list[VcSummary] = []
    names = sorted(set(runs) | set(alloc_mod.allocated_vcs(ledger)))
    engine, why = _engine_or_why(site) if alloc_mod.allocated_vcs(ledger) else (None, "")
    for name in names:
        held = alloc_mod.current_allocation(ledger, name)
        if engine is not None:
            locate(engine, held)
        run = runs.get(name)
        outcome = run_outcome(run, lock_holder(ledger, name)) if run else None
        if held is None and not every and outcome not in _UNFINISHED:
            continue
        rows.append(
            VcSummary(
                vcname=name,
                state="allocated" if held else "released",
                nodes=len(held.nodes) if held else 0,
                fqdn=held.public.fqdn if held else None,
                last_run=run.id if run else None,
                last_outcome=outcome,
                private_network=private_network.network_status(engine, site, name, held.vlan, why)
                if held
                else None,
                running=_running(engine, held) if held and engine is not None else None,
            )
        )
    return rows


def _running(engine: EngineDriver, held: Allocation) -> int:
    """How many of the VC's nodes the engine runs now (a node of a host that is away: not)."""
    names = [n.name for n in held.nodes if unreachable_host(engine, n.host) is None]
    return sum(state == domain_states.RUNNING for state in node_states(engine, names).values())


def _engine_or_why(site: SiteConfig) -> tuple[EngineDriver | None, str]:
    """The site's engine, connected; or None and why not (a listing goes on without it)."""
    engine = load_engine(site)
    try:
        engine.check()
    except PragmashError as err:
        return None, f"engine unreachable: {err.message}"
    return engine, ""


# -- status -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStatus:
    """One node: what the engine says against what the ledger believes."""

    name: str
    role: str
    engine_state: str
    # "running" (a finished boot or start step started it), "shut off" (a stop stopped
    # it) or "not booted"
    ledger_says: str
    mismatch: bool
    cpus: int
    ip: str  # where the site reaches it: public_ip, else private_ip (kept for older readers)
    private_ip: str
    macs: tuple[str, ...]
    # MiB the run gave the node (--mem, else its template), as journaled; None before
    # runs recorded it
    memory_mib: int | None = None
    host: str = ""  # the site host it is placed on
    public_ip: str | None = None  # the frontend's; None for a compute

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "macs": list(self.macs)}


@dataclass(frozen=True)
class VcStatus:
    """``pragmash status``: the VC's allocation, nodes, lock and last run."""

    vcname: str
    allocation: Allocation | None
    nodes: list[NodeStatus]
    lock: str | None  # who holds the VC, in words, while a live run does
    run: RunRecord | None
    run_outcome: str | None  # the run's outcome as it really is (see journal.run_outcome)
    steps: list[StepRecord]
    private_network: PrivateNetworkStatus | None = None  # while allocated
    log: str | None = None  # the run's log file, where one was written

    def to_json(self) -> dict[str, Any]:
        held, run = self.allocation, self.run
        return {
            "vcname": self.vcname,
            "allocated": held is not None,
            "public_fqdn": held.public.fqdn if held else None,
            "vlan": held.vlan if held else None,
            "private_network": self.private_network.to_json() if self.private_network else None,
            "nodes": [n.to_json() for n in self.nodes],
            "lock": self.lock,
            "run": {
                "id": run.id,
                "kind": run_kind(run),
                "outcome": self.run_outcome,
                "recipe": run.recipe,
                "log": self.log,
                **times_json(run.started_at, run.ended_at),
                "steps": [
                    {
                        "index": s.idx,
                        "at": f"{s.file}:{s.line}:{s.col}",
                        "text": s.text,
                        "outcome": s.outcome,
                        "message": s.message,
                        "stage": s.stage,
                        **times_json(s.started_at, s.ended_at),
                    }
                    for s in self.steps
                ],
            }
            if run
            else None,
        }


def vc_status(site: SiteConfig, vcname: str) -> VcStatus:
    """Each node's engine state against the ledger; an unreachable engine is said, not fatal."""
    ledger = Ledger(site)
    held = alloc_mod.current_allocation(ledger, vcname)
    run = last_run(ledger, vcname)
    if held is None and run is None:
        raise UserError(f"{vcname}: no such VC in the ledger ({site.ledger_path})")
    engine = load_engine(site)
    locate(engine, held)
    engine_ok = True
    try:
        engine.check()
    except Exception:
        engine_ok = False
    expected = _expected_states(ledger, vcname) if run else {}
    memory = (run.options.get("memory_mib") if run else None) or {}
    nodes: list[NodeStatus] = []
    leases = held.nodes if held else ()
    away = {n.name for n in leases if engine_ok and unreachable_host(engine, n.host) is not None}
    states = (
        node_states(engine, [n.name for n in leases if n.name not in away]) if engine_ok else {}
    )
    for lease in leases:
        if not engine_ok:
            state = "unknown (engine unreachable)"
        elif lease.name in away:
            state = "unreachable"  # its host's: the node's own state is unknown
        else:
            state = states[lease.name]
        says = expected.get(lease.name)
        nodes.append(
            NodeStatus(
                name=lease.name,
                role=lease.role,
                engine_state=state,
                ledger_says=says or "not booted",
                mismatch=engine_ok
                and lease.name not in away
                and says is not None
                and state
                not in (says, domain_states.UNKNOWN),  # "unknown": an engine that cannot tell
                cpus=lease.cpus,
                ip=lease.public_ip or lease.private_ip,
                private_ip=lease.private_ip,
                macs=tuple(lease.macs),
                memory_mib=memory.get(lease.role),
                host=lease.host,
                public_ip=lease.public_ip,
            )
        )
    holder = lock_holder(ledger, vcname)
    return VcStatus(
        vcname=vcname,
        allocation=held,
        nodes=nodes,
        lock=holder.describe() if holder and holder.alive else None,
        run=run,
        run_outcome=run_outcome(run, holder) if run else None,
        steps=steps_of(ledger, run.id) if run else [],
        log=_log_of(site, vcname, run.id) if run else None,
        private_network=private_network.network_status(
            engine if engine_ok else None, site, vcname, held.vlan
        )
        if held
        else None,
    )


def _expected_states(ledger: Ledger, vcname: str) -> dict[str, str]:
    """What the ledger believes each node's state is: finished boot and start steps
    started it (``running``), a stop's steps stopped it (``shut off``).

    Every run since the VC was allocated counts: ``pragmash scale`` boots (and
    destroys) nodes, and ``stop`` and ``start`` power them, in runs of their own.
    """
    states: dict[str, str] = {}
    for step in steps_since_allocation(ledger, vcname):
        if step.outcome != outcomes.DONE:
            continue
        if step.text.startswith(("boot", stages.BOOT)):
            states.update(dict.fromkeys(step.products, domain_states.RUNNING))
        elif step.text.startswith(("destroy", stages.DESTROY)):
            for name in step.products:
                states.pop(name, None)
        elif step.file == POWER_FILE:
            states.update(
                {
                    n: s
                    for n, s in step.products.items()
                    if s in (domain_states.RUNNING, domain_states.SHUT_OFF)
                }
            )
    return states


def times_json(started: float, ended: float | None) -> dict[str, Any]:
    """A run's or step's start and end (ISO 8601, with the UTC offset) and its seconds."""

    def iso(at: float) -> str:
        return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")

    return {
        "start": iso(started),
        "end": iso(ended) if ended is not None else None,
        "duration": round(ended - started, 3) if ended is not None else None,
    }


# -- history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One line of ``pragmash history``: a run of the VC, whatever made it."""

    id: int
    kind: str  # see pragmash.store.history.run_kind
    what: str  # the recipe, or the scale's or stop's description
    outcome: str
    started_at: float
    ended_at: float | None
    message: str | None
    log: str | None = None  # the run's log file, where one was written

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "id": self.id,
            "kind": self.kind,
            "what": self.what,
            "outcome": self.outcome,
            **times_json(self.started_at, self.ended_at),
            "message": self.message,
        }


def _log_of(site: SiteConfig, vcname: str, run_id: int) -> str | None:
    """The run's log file (store/runlog.py), if it wrote one."""
    path = run_log_path(site.state_dir, vcname, run_id)
    return str(path) if path.is_file() else None


def vc_history(site: SiteConfig, vcname: str) -> list[RunSummary]:
    """Every run the ledger holds for the VC, oldest first (a UserError if it has none)."""
    ledger = Ledger(site)
    records = runs_of(ledger, vcname)
    if not records:
        unknown = unknown_vc(site, vcname, sorted(all_last_runs(ledger)))
        raise unknown or UserError(f"{vcname}: no run in the ledger ({site.ledger_path})")
    holder = lock_holder(ledger, vcname)
    return [
        RunSummary(
            id=r.id,
            kind=run_kind(r),
            what=r.recipe,
            outcome=run_outcome(r, holder),
            started_at=r.started_at,
            ended_at=r.ended_at,
            message=r.message,
            log=_log_of(site, vcname, r.id),
        )
        for r in records
    ]


# -- clean ------------------------------------------------------------------------------


def clean_vc(
    site: SiteConfig,
    vcname: str,
    *,
    force: bool = False,
    note: Callable[[str], None] = lambda _text: None,
) -> list[str]:
    """Destroy the VC's domains and private network, remove its folder, release its leases.

    Safe to repeat. Returns the nodes kept because their host could not be reached
    (with their leases, the VC's address and folder): empty when the VC is clean.

    Domains are found by the ledger's leases and by the VC's exact node names
    (``VCNAME-frontend``, ``VCNAME-compute-N``), so domains the ledger forgot are removed
    too, and never another VC's whose name merely starts the same (``VCNAME-b``). A VC held by a live run is refused unless
    ``force``; then the VC is taken from the run first and the run is stopped (Ctrl-C,
    when it runs on this host), so it cannot boot a node after its domains were
    destroyed; a run that does not stop notices at its next step that the VC is no
    longer its own and stops there, touching nothing. The last run, if it did not
    finish, is marked ``cleaned`` so ``resume`` will not boot without an allocation.
    """
    ledger = Ledger(site)
    holder = lock_holder(ledger, vcname)
    live = holder is not None and holder.alive
    if live and not force:
        assert holder is not None
        raise BusyError(
            f"{vcname} is mid-run: held by {holder.describe()}",
            hint="use --force to clean it anyway",
        )
    held = alloc_mod.current_allocation(ledger, vcname)
    engine = load_engine(site)
    engine.check()
    locate(engine, held)
    if live:
        taken = take_lock(ledger, vcname)
        if taken is not None and taken.alive:
            _stop_run(taken, vcname, note)
    else:
        acquire_lock(ledger, vcname)
    try:
        # nodes on a host that cannot be reached keep their leases, for a later clean
        kept = {
            n.name: f"host {n.host} unreachable: {why}"
            for n in (held.nodes if held else ())
            if (why := unreachable_host(engine, n.host)) is not None
        }
        names = [n.name for n in held.nodes if n.name not in kept] if held else []
        known = {*names, *kept}  # a set: a list rebuilt per domain was quadratic in N
        names += [
            n for n in engine.list_domains(f"{vcname}-") if is_node_of(vcname, n) and n not in known
        ]
        if held is None and not names and last_run(ledger, vcname) is None:
            raise UserError(
                f"{vcname}: no such VC in the ledger ({site.ledger_path}), and no domain of "
                "that name: nothing to clean"
            )

        states = node_states(engine, names)  # one call per host where the engine can

        def destroy(name: str) -> str:
            state = states[name]
            if state != domain_states.ABSENT:
                engine.destroy(name)
            return state

        for name, state in per_host(engine, names, destroy).items():  # the hosts at once
            if (
                state == domain_states.UNKNOWN
            ):  # an engine that cannot tell (a site's VE scripts) says why
                note(f"{name}: {engine.state_reason(name)}")
            elif state != domain_states.ABSENT:
                note(f"destroyed {name} (was {state})")
            elif isinstance(engine, SiteHosts):  # undefined by hand: its pool volumes stay
                for volume in engine.remove_disks(name):
                    note(f"removed {volume}")
        if private_network.remove(engine, vcname):  # found by name: even once released
            note(f"removed network {network_name(vcname)}")
        if kept:
            _keep_unreachable(ledger, vcname, kept, note)
            return list(kept)
        temp = vc_temp_dir(site, vcname)
        if temp.exists():
            shutil.rmtree(temp)
            note(f"removed {temp}")
        if alloc_mod.release(ledger, vcname):
            note(f"released {vcname}'s leases")
        run = last_run(ledger, vcname)
        if run is not None and run.outcome in _UNFINISHED:
            Journal(ledger, run.id).end(
                outcomes.CLEANED, f"cleaned at {time.strftime('%Y-%m-%d %H:%M:%S')}"
            )
        return []
    finally:
        release_lock(ledger, vcname)


def _keep_unreachable(
    ledger: Ledger, vcname: str, kept: dict[str, str], note: Callable[[str], None]
) -> None:
    """A clean that could not reach every host: release what was destroyed, keep the rest.

    The VC keeps its address, VLAN and folder (its kept nodes' disks may be in it), and
    the kept nodes their leases, so ``clean`` can be run again once the hosts answer.
    """
    released = alloc_mod.release_nodes(ledger, vcname, keep=set(kept))
    if released:
        note(f"released the leases of {', '.join(released)}")
    for name, why in kept.items():
        note(f"kept {name} and its leases: {why}")
    note(f"run `pragmash clean {vcname}` again once the hosts answer")


#: How long a forced clean waits for the run it took the VC from to stop.
STOP_WAIT_SECONDS = 30.0


def _stop_run(holder: LockHolder, vcname: str, note: Callable[[str], None]) -> None:
    """Interrupt the run a forced clean took the VC from, and wait for it to end."""
    run = f"run {holder.run_id}" if holder.run_id else "the session"
    if holder.host != socket.gethostname():
        note(
            f"{run} of {vcname} runs on {holder.host} (pid {holder.pid}): it stops at its next "
            "step, seeing the VC is no longer its own"
        )
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(holder.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while holder.alive and time.monotonic() < deadline:
        time.sleep(0.1)
    if holder.alive:
        note(
            f"{run} (pid {holder.pid}) did not stop within {STOP_WAIT_SECONDS:g} s: it stops at "
            "its next step, seeing the VC is no longer its own"
        )
    else:
        note(f"stopped {run} of {vcname} (pid {holder.pid})")
