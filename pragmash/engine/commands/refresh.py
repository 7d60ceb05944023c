"""Running nodes receive their current vc-out: ``pragmash refresh VC``, and a scale's last step.

A node reads ``/root/vc-out.xml`` (the frontend the whole VC's, each compute its own:
:func:`~pragmash.vc.formats.vcout.node_vc_out`) when its image configures itself. ``pre_boot``
puts it there before the first boot; after a scale the nodes that were already running
still hold the file they booted with, so a frontend never hears of its new computes.
Refresh puts each running node's current file in place without a reboot: through
the node's QEMU guest agent, else over ssh with the VC's key
(:class:`~pragmash.engine.guests.inside.GuestReach`); never by writing a running guest's
disk (two writers on one file system corrupt it). A node neither way reaches is
named as not updated, with the command that copies the file by hand; a node that is
not running is left alone (it is refreshed once it runs again: ``pragmash start``,
then ``pragmash refresh``). What a node then does with the new file (``rocks sync
config``, ``scontrol reconfigure``) is the recipe's to say (``exec``).

The vc-out files are written again from the ledger first, so a refresh always hands
out what the allocation holds now.

``pragmash refresh`` is not a journaled run: a node that could not be updated must
not leave the VC with an unfinished run that blocks ``scale``, ``stop`` and ``start``
until resumed. It holds the VC's lock while it works, so it never writes beside a
run (a scale refreshes as its own last step). Inside a scale, a node not updated does
not fail the scale (the new computes are up and leased): the step says which nodes
missed it and how to update them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import NodePlan
from pragmash.engine.guests.inside import at_once
from pragmash.engine.hosts.router import per_host
from pragmash.engine.run.events import EventSink, ignore
from pragmash.engine.run.interpreter import Interpreter, StepOutcome, StepReporter
from pragmash.engine.run.opening import RunOptions, load, make_ready, opened_site
from pragmash.engine.run.runtime import Runtime
from pragmash.errors import LedgerError, PragmashError, Span, StepError, UserError
from pragmash.images.nocloud import GUEST_VC_OUT
from pragmash.language import ast
from pragmash.store import allocation as alloc_mod
from pragmash.store.journal import acquire_lock, release_lock
from pragmash.vc.formats.names import validate_name
from pragmash.vc.formats.vcout import node_vc_out, write_vc_out

#: The file name a refresh's step is shown under.
REFRESH_FILE = "refresh"

Outcome = Literal["updated", "not running", "not updated"]


@dataclass(frozen=True)
class RefreshStep(ast.MadeStep):
    """``refresh all``: every running node of the VC receives its current vc-out."""

    @property
    def kind(self) -> str:
        return "refresh"


def refresh_program() -> ast.Program:
    text = "refresh all"
    step = RefreshStep(Span(REFRESH_FILE, 1, 1, 1, len(text) + 1), text)
    return ast.Program(REFRESH_FILE, text + "\n", (step,))


@dataclass(frozen=True)
class NodeRefresh:
    """What became of one node: updated (and how), not running, or not updated (and why)."""

    name: str
    outcome: Outcome
    said: str


def rewrite_vc_out(runtime: Runtime) -> Path:
    """The VC's vc-out files written again from what its allocation holds now."""
    held = runtime.allocation
    assert held is not None  # the caller adopted the VC's allocation
    vc_out = alloc_mod.build_vc_out(held, runtime.vcin, runtime.site, key=runtime.key)
    runtime.temp_dir.mkdir(parents=True, exist_ok=True)
    write_vc_out(vc_out, runtime.vc_out_path)
    return runtime.vc_out_path


def by_hand(vcname: str, name: str, source: Path, guest_path: str) -> str:
    """The command that copies a node's file in by hand (as ``pragmash ssh`` reaches it)."""
    return f"pragmash ssh {vcname} {name} -- 'cat > {guest_path}' < {source}"


def refresh_nodes(
    runtime: Runtime,
    nodes: Sequence[NodePlan],
    reporter: StepReporter,
    guest_path: str = GUEST_VC_OUT,
) -> list[NodeRefresh]:
    """Each of ``nodes``' current vc-out put at ``guest_path`` inside it (see the module)."""
    ctx = runtime.context(reporter)
    engine = runtime.engine
    states = per_host(engine, [n.name for n in nodes], engine.state)
    files = {n.name: node_vc_out(ctx, n) for n in nodes}
    running = [n.name for n in nodes if states[n.name] == domain_states.RUNNING]
    reach = runtime.guests()
    futures = at_once(
        running, lambda name: reach.write_file(name, guest_path, files[name].read_bytes())
    )
    done: dict[str, NodeRefresh] = {}
    for future in as_completed(futures.values()):
        name = next(n for n, f in futures.items() if f is future)
        try:
            done[name] = NodeRefresh(name, "updated", future.result())
        except StepError as err:
            how = by_hand(runtime.vcname, name, files[name], guest_path)
            done[name] = NodeRefresh(name, "not updated", f"{err.message}; by hand: {how}")
        reporter.node(name, states[name], done[name].said, reached=True)
    for node in nodes:
        if node.name not in done:
            done[node.name] = NodeRefresh(
                node.name,
                "not running",
                f"{states[node.name]}: refresh it once it runs again "
                f"(`pragmash start {runtime.vcname}`, then `pragmash refresh {runtime.vcname}`)",
            )
    return [done[n.name] for n in nodes]


def refresh_outcome(results: Sequence[NodeRefresh], *, strict: bool) -> StepOutcome:
    """The step's outcome: done, or (``strict``) a StepError when a node was not updated."""
    updated = [r.name for r in results if r.outcome == "updated"]
    idle = [r.name for r in results if r.outcome == "not running"]
    missed = [r for r in results if r.outcome == "not updated"]
    said = []
    if updated:
        said.append(f"updated {', '.join(updated)}")
    if idle:
        said.append(f"not running: {', '.join(idle)}")
    if missed:
        said.append(f"NOT updated: {', '.join(r.name for r in missed)}")
    if missed and strict:
        raise StepError(
            "; ".join(said),
            stage=stages.REFRESH,
            output_tail=[r.said for r in missed],
            hint="each node above says how to copy its file in by hand",
        )
    return StepOutcome(
        outcomes.DONE,
        "; ".join(said) or "no nodes",
        {r.name: f"{r.outcome}: {r.said}" for r in results},
    )


def refresh_step(runtime: Runtime, reporter: StepReporter, *, strict: bool) -> StepOutcome:
    """Every node of the VC refreshed, as one step (the CLI's, or a scale's last)."""
    if runtime.disk_work.simulated:
        return StepOutcome(outcomes.SKIPPED, runtime.disk_work.no_guest("to receive its vc-out"))
    rewrite_vc_out(runtime)
    results = refresh_nodes(runtime, list(runtime.nodes.values()), reporter)
    for result in results:
        if result.outcome != "updated":
            reporter.note(f"{result.name}: {result.outcome}: {result.said}")
    return refresh_outcome(results, strict=strict)


@dataclass
class RefreshExecutor:
    """Carries out ``pragmash refresh``'s one step; a node not updated fails it (exit 3)."""

    runtime: Runtime

    def execute(self, statement: ast.Statement, reporter: StepReporter) -> StepOutcome:
        assert isinstance(statement, RefreshStep)
        return self.runtime.guarded(
            lambda _stmt, rep: refresh_step(self.runtime, rep, strict=True), statement, reporter
        )


def refresh(
    vcname: str, *, site: str | None = None, on_event: EventSink = ignore
) -> PragmashError | None:
    """``pragmash refresh VC``: the VC's running nodes receive their current vc-out.

    Holds the VC's lock while it works (a BusyError names a run that holds it); returns
    the step's error (a node not updated, or an Interrupted), or None when every
    running node was.
    """
    vcname = validate_name("VC name", vcname)
    opened = opened_site(site)
    _held, record = opened.allocated(
        vcname, nothing="it has no nodes to refresh", hint="`pragmash list` shows the VCs that have"
    )
    options = RunOptions.from_json(record.options)
    if opened.path:
        options.site = opened.path
    prep = load(opened, options, lambda _config: refresh_program())
    make_ready(prep, memory=False)
    acquire_lock(opened.ledger, vcname)
    try:
        held = opened.allocation(vcname)  # again, now that no scale can change it
        if held is None:
            raise UserError(f"{vcname} was cleaned meanwhile: there is nothing to refresh")
        prep.runtime.adopt(held)
        interp = Interpreter(prep.program, RefreshExecutor(prep.runtime), on_event=on_event)
        interp.run_to_end()
        return interp.last_error  # a node not updated (exit 3), or Ctrl-C (130)
    finally:
        with contextlib.suppress(LedgerError):
            release_lock(opened.ledger, vcname)
