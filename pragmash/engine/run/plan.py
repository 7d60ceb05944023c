"""``--dry-run``: what each step would touch, worked out without changing anything.

The plan follows the recipe in order, tracking variables and the node names an
``allocate`` would give, and lists for every step the nodes and driver stages it
would run. It reads the site, vc-in and ledger; it writes nothing.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pragmash import stages
from pragmash.engine.hosts.capacity import placement_input, preview_placement
from pragmash.engine.run.diskwork import PLAN_SKIPPED
from pragmash.engine.run.session import Prepared
from pragmash.engine.steps import private_network
from pragmash.errors import AllocationError, PragmashError, RecipeError
from pragmash.language import ast
from pragmash.language.program import flatten
from pragmash.language.targets import resolve_targets, select_names
from pragmash.language.vocabulary import COMMANDS_REFUSED
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.vc.formats.names import compute_name, frontend_name


@dataclass(frozen=True)
class PlannedStep:
    index: int
    statement: ast.Statement
    actions: tuple[str, ...]
    #: why the step would be refused (the run would stop there, having taken nothing)
    refused: PragmashError | None = None


def _network_action(prep: Prepared, held: Allocation | None) -> str:
    """What ``allocate`` would make of the VC's private network."""
    if held is not None:
        plan = private_network.plan_for(prep.site, prep.runtime.vcname, held.vlan)
        return f"{stages.NETWORK}: the VC's own private network {plan.describe()}"
    setting = prep.site.private_network
    where = (
        f"over {setting.ovs_bridge}, tagged with the VLAN"
        if setting.mode == "ovs"
        else f"bridge {setting.bridge_pattern}"
    )
    return f"{stages.NETWORK}: the VC's own private network ({setting.mode}, {where})"


def _rehearsed(prep: Prepared, cpus: int) -> str:
    """What the allocation would take as the ledger stands (its AllocationError if it
    would be refused: a shortage of addresses, VLANs, CPUs or memory)."""
    runtime = prep.runtime
    given = placement_input(prep.site, runtime.engine)
    taken = alloc_mod.rehearse(
        prep.ledger,
        prep.site,
        runtime.vcname,
        prep.vcin,
        cpus,
        hosts=given.hosts,
        left_out=given.left_out,
        memory_mib=runtime.memory.to_json() if runtime.memory else None,
    )
    hosts = sorted({node.host for node in taken.nodes})
    return (
        f"would take {taken.public.fqdn} ({taken.public.ip}), VLAN {taken.vlan}"
        + (f", on {', '.join(hosts)}" if prep.site.multi_host else "")
        + " (as the ledger stands now; the run decides again)"
    )


def _placement_actions(prep: Prepared, held: Allocation | None, cpus: int) -> list[str]:
    """Where each node is (held) or would go as things stand, on a site of several hosts."""
    if held is None:
        return preview_placement(
            prep.site,
            prep.runtime.engine,
            prep.ledger,
            prep.vcin,
            cpus,
            prep.runtime.memory.to_json() if prep.runtime.memory else None,
        )
    per_host: dict[str, list[str]] = {}
    for node in held.nodes:
        per_host.setdefault(node.host, []).append(node.name)
    return [f"placement (held): {h}: {', '.join(names)}" for h, names in per_host.items()]


def make_plan(prep: Prepared) -> list[PlannedStep]:
    planner = _Planner(prep)
    out: list[PlannedStep] = []
    for step in flatten(prep.program.statements):
        actions: list[str] = []
        try:
            planner.visit(step.statement, actions)
        except AllocationError as refused:
            out.append(PlannedStep(step.index, step.statement, tuple(actions), refused))
            break  # the run would stop here
        out.append(PlannedStep(step.index, step.statement, tuple(actions)))
    return out


class _Planner(ast.StatementVisitor[list[str], None]):
    """What each statement would do, appended to the step's actions; tracks variables
    and the node names an ``allocate`` would give."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        self.variables: dict[str, str] = dict(prep.runtime.variables)
        self.vcname = prep.runtime.vcname
        self.fe = frontend_name(self.vcname)
        self.held = alloc_mod.current_allocation(prep.ledger, self.vcname)
        self.computes = [c.name for c in self.held.computes] if self.held is not None else None
        self.disk_note = PLAN_SKIPPED if prep.runtime.disk_work.simulated else ""

    def value(self, word: ast.Word | None) -> str:
        """The word as the run would see it so far; an unknown variable stays ``$NAME``."""
        if word is None:
            return ""
        return word.expand(self._value_of)

    def _value_of(self, ref: ast.VarRef) -> str:
        return self.variables.get(ref.name, f"${ref.name}")

    def nodes(self, written: tuple[ast.Target, ...]) -> list[str]:
        targets = resolve_targets(written, self.value)
        if self.computes is None:
            return [str(t) for t in targets]
        try:
            return select_names(targets, self.fe, self.computes)
        except RecipeError:
            return [str(t) for t in targets]

    def visit_set(self, stmt: ast.Set, actions: list[str]) -> None:
        self.variables[stmt.name] = self.value(stmt.value)
        actions.append(f"${stmt.name} = {self.variables[stmt.name]}")

    def visit_param(self, stmt: ast.Param, actions: list[str]) -> None:
        self.variables.setdefault(stmt.name, self.value(stmt.default))
        actions.append(f"${stmt.name} = {self.variables[stmt.name]}")

    def visit_allocate(self, stmt: ast.Allocate, actions: list[str]) -> None:
        prep, fe, held = self.prep, self.fe, self.held
        cpus = int(self.value(stmt.count_word))
        per_node = alloc_mod.plan_compute_cpus(prep.site, prep.vcin, cpus)
        computes = [compute_name(self.vcname, i) for i in range(len(per_node))]
        self.computes = computes
        actions.append(
            f"{stages.ALLOCATE}: {cpus} compute CPUs -> {fe} + {len(computes)} compute(s)"
            + (f" ({', '.join(computes)})" if computes else "")
            + "; public address, VLAN, MACs; write vc-out.xml"
            + (" (already held: reused)" if held is not None else "")
        )
        if held is None or held.cpus != cpus:  # (a VC holding another count is refused)
            actions.append(_rehearsed(prep, cpus))
        actions.append(_network_action(prep, held))
        if prep.site.multi_host:
            actions += _placement_actions(prep, held, cpus)

    def visit_fix(self, stmt: ast.Fix, actions: list[str]) -> None:
        method = self.value(stmt.method)
        for name in self.nodes(stmt.targets):
            actions.append(
                f"{name}: stage image, {stages.PRE_FIX}, fix via {method}, "
                f"{stages.POST_FIX}{self.disk_note}"
            )

    def visit_boot(self, stmt: ast.Boot, actions: list[str]) -> None:
        for name in self.nodes(stmt.targets):
            actions.append(
                f"{name}: {stages.PRE_BOOT}{self.disk_note}, {stages.BOOT} (define + start)"
            )

    def visit_wait_state(self, stmt: ast.WaitState, actions: list[str]) -> None:
        actions.append(
            f"wait until {', '.join(self.nodes(stmt.targets))} {stmt.state} "
            f"(timeout {self.value(stmt.timeout_word)})"
        )

    def visit_wait_console(self, stmt: ast.WaitConsole, actions: list[str]) -> None:
        actions.append(
            f"wait until {', '.join(self.nodes(stmt.targets))} show {self.value(stmt.expect)!r} "
            f"on the console (timeout {self.value(stmt.timeout_word)})"
        )

    def visit_wait_clock(self, stmt: ast.WaitClock, actions: list[str]) -> None:
        actions.append(f"wait {self.value(stmt.duration)}{self.disk_note}")

    def visit_echo(self, stmt: ast.Echo, actions: list[str]) -> None:
        actions.append("echo: " + " ".join(self.value(w) for w in stmt.words))

    def visit_include(self, stmt: ast.Include, actions: list[str]) -> None:
        actions.append(f"include {stmt.resolved}")

    def visit_engine_call(self, stmt: ast.EngineCall, actions: list[str]) -> None:
        actions.append(f"ve_driver/{stmt.op} on {', '.join(self.nodes(stmt.targets))}")

    def visit_distro_call(self, stmt: ast.DistroCall, actions: list[str]) -> None:
        actions.append(f"vc_driver/{stmt.stage} on {', '.join(self.nodes(stmt.targets))}")

    def visit_script_call(self, stmt: ast.ScriptCall, actions: list[str]) -> None:
        # a driver folder's own script: its words are its arguments
        actions.append(f"run {stmt.written_as} " + " ".join(self.value(w) for w in stmt.args))

    def visit_run(self, stmt: ast.Run, actions: list[str]) -> None:
        actions.append("run: " + " ".join(self.value(w) for w in stmt.argv))

    def visit_exec(self, stmt: ast.Exec, actions: list[str]) -> None:
        argv = shlex.join(self.value(w) for w in stmt.argv)
        timeout = self.value(stmt.timeout_word)
        for name in self.nodes(stmt.targets):
            actions.append(
                f"{name}: exec {argv} (guest agent, else ssh; timeout {timeout})" + self.disk_note
            )

    def visit_handler(self, stmt: ast.Handler, actions: list[str]) -> None:
        assert stmt.body is not None
        sign = "+N" if stmt.event == "grow" else "-N"
        actions.append(f"kept for `pragmash scale {self.vcname} {sign}`, run after its refresh:")
        runtime = self.prep.runtime
        if isinstance(stmt.body, ast.Exec | ast.Run) and not (
            runtime.allow_run or runtime.site.allow_run
        ):
            actions.append(
                f"    skipped by a scale: '{stmt.body.kind}' is refused: {COMMANDS_REFUSED}"
            )
            return
        inner: list[str] = []
        self.visit(stmt.body, inner)
        actions += [f"    {action}" for action in inner]
