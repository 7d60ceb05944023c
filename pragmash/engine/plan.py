"""``--dry-run``: what each step would touch, worked out without changing anything.

The plan follows the recipe in order, tracking variables and the node names an
``allocate`` would give, and lists for every step the nodes and driver stages it
would run. It reads the site, vc-in and ledger; it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pragmash.engine import private_network
from pragmash.engine.diskwork import PLAN_SKIPPED
from pragmash.engine.hosts import preview_placement
from pragmash.engine.session import Prepared
from pragmash.errors import RecipeError
from pragmash.language import ast
from pragmash.language.program import flatten
from pragmash.language.targets import resolve_targets, select_names
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.vc.names import compute_name, frontend_name


@dataclass(frozen=True)
class PlannedStep:
    index: int
    statement: ast.Statement
    actions: tuple[str, ...]


def _network_action(prep: Prepared, held: Allocation | None) -> str:
    """What ``allocate`` would make of the VC's private network."""
    if held is not None:
        plan = private_network.plan_for(prep.site, prep.runtime.vcname, held.vlan)
        return f"ve_driver/network: the VC's own private network {plan.describe()}"
    setting = prep.site.private_network
    where = (
        f"over {setting.ovs_bridge}, tagged with the VLAN"
        if setting.mode == "ovs"
        else f"bridge {setting.bridge_pattern}"
    )
    return f"ve_driver/network: the VC's own private network ({setting.mode}, {where})"


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
    runtime = prep.runtime
    variables = dict(runtime.variables)
    vcname = runtime.vcname
    fe = frontend_name(vcname)
    computes: list[str] | None = None
    held = alloc_mod.current_allocation(prep.ledger, vcname)
    if held is not None:
        computes = [c.name for c in held.computes]
    simulated = runtime.disk_work.simulated
    disk_note = PLAN_SKIPPED if simulated else ""
    out: list[PlannedStep] = []

    def value(word: ast.Word | None) -> str:
        if word is None:
            return ""
        return "".join(
            p if isinstance(p, str) else variables.get(p.name, f"${p.name}") for p in word.parts
        )

    def nodes(written: tuple[ast.Target, ...]) -> list[str]:
        targets = resolve_targets(written, value)
        if computes is None:
            return [str(t) for t in targets]
        try:
            return select_names(targets, fe, computes)
        except RecipeError:
            return [str(t) for t in targets]

    for step in flatten(prep.program.statements):
        stmt = step.statement
        actions: list[str] = []
        if isinstance(stmt, ast.Set):
            variables[stmt.name] = value(stmt.value)
            actions.append(f"${stmt.name} = {variables[stmt.name]}")
        elif isinstance(stmt, ast.Param):
            variables.setdefault(stmt.name, value(stmt.default))
            actions.append(f"${stmt.name} = {variables[stmt.name]}")
        elif isinstance(stmt, ast.Allocate):
            word = stmt.count
            cpus = int(value(word) if word else variables.get("num_compute", "0"))
            per_node = alloc_mod.plan_compute_cpus(prep.site, prep.vcin, cpus)
            computes = [compute_name(vcname, i) for i in range(len(per_node))]
            actions.append(
                f"ve_driver/allocate: {cpus} compute CPUs -> {fe} + {len(computes)} compute(s)"
                + (f" ({', '.join(computes)})" if computes else "")
                + "; public address, VLAN, MACs; write vc-out.xml"
                + (" (already held: reused)" if held is not None else "")
            )
            actions.append(_network_action(prep, held))
            if prep.site.multi_host:
                actions += _placement_actions(prep, held, cpus)
        elif isinstance(stmt, ast.Fix):
            method = value(stmt.method)
            for name in nodes(stmt.targets):
                actions.append(
                    f"{name}: stage image, vc_driver/pre_fix, fix via {method}, vc_driver/post_fix{disk_note}"
                )
        elif isinstance(stmt, ast.Boot):
            for name in nodes(stmt.targets):
                actions.append(
                    f"{name}: vc_driver/pre_boot{disk_note}, ve_driver/boot (define + start)"
                )
        elif isinstance(stmt, ast.WaitState):
            timeout = value(stmt.timeout) or "5m"
            actions.append(
                f"wait until {', '.join(nodes(stmt.targets))} {stmt.state} (timeout {timeout})"
            )
        elif isinstance(stmt, ast.WaitConsole):
            timeout = value(stmt.timeout) or "5m"
            actions.append(
                f"wait until {', '.join(nodes(stmt.targets))} show {value(stmt.expect)!r} "
                f"on the console (timeout {timeout})"
            )
        elif isinstance(stmt, ast.WaitClock):
            actions.append(f"wait {value(stmt.duration)}" + (PLAN_SKIPPED if simulated else ""))
        elif isinstance(stmt, ast.Echo):
            actions.append("echo: " + " ".join(value(w) for w in stmt.words))
        elif isinstance(stmt, ast.Include):
            actions.append(f"include {stmt.resolved}")
        elif isinstance(stmt, ast.EngineCall):
            actions.append(f"ve_driver/{stmt.op} on {', '.join(nodes(stmt.targets))}")
        elif isinstance(stmt, ast.DistroCall):
            actions.append(f"vc_driver/{stmt.stage} on {', '.join(nodes(stmt.targets))}")
        elif isinstance(stmt, ast.ScriptCall):  # a driver folder's own script: words are arguments
            actions.append(f"run {stmt.written_as} " + " ".join(value(w) for w in stmt.args))
        elif isinstance(stmt, ast.Run):
            actions.append("run: " + " ".join(value(w) for w in stmt.argv))
        out.append(PlannedStep(step.index, stmt, tuple(actions)))
    return out
