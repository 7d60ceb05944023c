"""``pragmash stop VC`` and ``pragmash start VC``: power a VC's nodes off and on, as runs.

A VC stopped for the night must come back without being built again: its domains
stay defined, its disks staged, its leases held. ``stop`` asks every node at once
(all hosts in parallel) to power off and gives them one deadline together, so a
1+32 VC whose guests ignore ACPI costs the deadline once, not once per node; with
``force`` it then pulls the plug on what is left, keeping every definition and disk.
``start`` starts the defined domains in the order the bundled recipes boot them
(the frontend, its up test, then the computes and theirs), without staging or
``pre_boot`` again: a node whose domain or staged disk is missing is said so and
booted as ``boot`` would (staged, its vc-out.xml put in, defined), and only that node.
Nodes already running are left alone.

Both are journaled like a recipe's run (a run record whose options hold the plan
under ``power``, its steps pragmash's own), hold the VC's lock while they go, show
progress through the same events and are continued by ``pragmash resume VC`` after
a failure or Ctrl-C. Refused before anything is locked: a VC without an allocation,
an engine that cannot power a domain off and on (:class:`~pragmash.driver_api.PowerControl`),
and a VC whose recipe run or scale did not finish (a new run would hide it from
``resume``: resume or clean it first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import NodePlan, PowerControl
from pragmash.engine.hosts.capacity import unreachable_host
from pragmash.engine.hosts.router import CONNECT_WORKERS, per_host
from pragmash.engine.run import opening
from pragmash.engine.run.events import EventSink, ignore
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.run.opening import (
    OpenSite,
    Prepared,
    Run,
    RunOptions,
    load,
    make_ready,
    opened_site,
)
from pragmash.engine.run.runtime import Runtime
from pragmash.engine.run.session import provide
from pragmash.engine.steps import private_network
from pragmash.engine.steps.readiness import Goal
from pragmash.errors import Span, StepError, UserError
from pragmash.language import ast
from pragmash.store.history import POWER_FILE
from pragmash.store.journal import RunRecord, acquire_lock, lock_holder, run_outcome
from pragmash.vc.formats.names import validate_name

PowerKind = Literal["stop", "start"]
Action = Literal["shutdown", "power off", "start", "wait"]
Role = Literal["all", "frontend", "compute"]

#: ``stop``'s one deadline for every node, unless ``--timeout`` says otherwise.
STOP_TIMEOUT = 120.0
#: How long each of ``start``'s waits (frontend, computes) gives the nodes to be up.
START_TIMEOUT = 600.0
#: How often ``stop`` looks at the nodes' states while they power off.
POLL_SECONDS = 1.0
#: A node in one of these states needs nothing from ``stop``.
OFF_STATES = (domain_states.SHUT_OFF, domain_states.ABSENT)


def at_once(names: Sequence[str], work: Callable[[str], bool]) -> dict[str, bool]:
    """``work(name)`` for every node at the same time, whatever host it is on.

    Powering a node off takes QEMU a second or two to exit, and on one host those
    seconds add up node by node (libvirt answers from several threads), so a 1+32 VC
    is not forced off one node after another. The first error is raised again once
    every node was asked.
    """
    if len(names) < 2:
        return {name: work(name) for name in names}
    with ThreadPoolExecutor(max_workers=min(CONNECT_WORKERS, len(names))) as pool:
        futures = {name: pool.submit(work, name) for name in names}
        return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class PowerPlan:
    """What a stop or start run does: its kind, its deadline, whether stop forces."""

    kind: PowerKind
    timeout: float
    force: bool = False

    def describe(self) -> str:
        if self.kind == "start":
            return f"start (each wait up to {self.timeout:g} s)"
        return f"stop (deadline {self.timeout:g} s{', then forced off' if self.force else ''})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "timeout": self.timeout, "force": self.force}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PowerPlan:
        kind: PowerKind = "start" if data.get("kind") == "start" else "stop"
        return cls(kind, float(data["timeout"]), bool(data.get("force")))


@dataclass(frozen=True)
class PowerStep(ast.MadeStep):
    """One step of a stop or start run: ``action`` on the nodes of ``role``."""

    action: Action = "start"
    role: Role = "all"

    @property
    def kind(self) -> str:
        return "power"


def power_program(plan: PowerPlan) -> ast.Program:
    """The steps of a stop or a start."""
    steps: list[tuple[Action, Role, str]]
    if plan.kind == "stop":
        steps = [("shutdown", "all", f"shutdown all (deadline {plan.timeout:g} s)")]
        if plan.force:
            steps.append(("power off", "all", "power off all (what did not stop)"))
    else:
        steps = [
            ("start", "frontend", "start frontend"),
            ("wait", "frontend", "wait frontend up"),
            ("start", "compute", "start compute"),
            ("wait", "compute", "wait compute up"),
        ]
    made = []
    for line, (action, role, text) in enumerate(steps, start=1):
        span = Span(POWER_FILE, line, 1, line, len(text) + 1)
        made.append(PowerStep(span, text, action, role))
    return ast.Program(POWER_FILE, "\n".join(s.text for s in made) + "\n", tuple(made))


def power_kind(record: RunRecord) -> PowerKind | None:
    """``stop`` or ``start`` for a journaled power run; None for any other run."""
    power = record.options.get("power")
    if not isinstance(power, dict):
        return None
    return PowerPlan.from_json(power).kind


def last_is_power(vcname: str, site: str | OpenSite | None = None) -> bool:
    """Whether the VC's last run is a stop or a start (``resume`` then continues it here)."""
    record = opened_site(site).last_run(validate_name("VC name", vcname))
    return record is not None and power_kind(record) is not None


@dataclass
class PowerExecutor:
    """Carries out a stop or start run's steps against the VC's runtime."""

    runtime: Runtime
    plan: PowerPlan

    def execute(self, statement: ast.Statement, reporter: StepReporter) -> StepOutcome:
        assert isinstance(statement, PowerStep)
        handler = {
            "shutdown": self._shutdown,
            "power off": self._power_off,
            "start": self._start,
            "wait": self._wait,
        }[statement.action]
        return self.runtime.guarded(handler, statement, reporter)

    @property
    def power(self) -> PowerControl:
        engine = self.runtime.engine
        assert isinstance(engine, PowerControl)  # checked when the run was opened
        return engine

    def _nodes(self, step: PowerStep) -> list[NodePlan]:
        nodes = list(self.runtime.nodes.values())
        return nodes if step.role == "all" else [n for n in nodes if n.role == step.role]

    def _away(self, nodes: list[NodePlan]) -> dict[str, str]:
        """The nodes whose host does not answer, with why (nothing can be asked of them)."""
        held = self.runtime.allocation
        hosts = {lease.name: lease.host for lease in held.nodes} if held else {}
        engine = self.runtime.engine
        return {
            n.name: f"host {hosts[n.name]} unreachable: {why}"
            for n in nodes
            if (why := unreachable_host(engine, hosts.get(n.name, ""))) is not None
        }

    # -- stop -------------------------------------------------------------------------

    def _shutdown(self, step: PowerStep, reporter: StepReporter) -> StepOutcome:
        runtime = self.runtime
        engine = runtime.engine
        nodes = self._nodes(step)
        away = self._away(nodes)
        names = [n.name for n in nodes if n.name not in away]
        before = per_host(engine, names, engine.state)
        asked = [n for n in names if before[n] not in OFF_STATES]
        for name, sent in at_once(asked, self.power.request_shutdown).items():
            reporter.node(
                name, domain_states.IN_SHUTDOWN if sent else engine.state(name), "asked to stop"
            )
        start = runtime.clock()
        left = list(asked)
        while left:
            states = per_host(engine, left, engine.state)
            for name in [n for n in left if states[n] in OFF_STATES]:
                reporter.node(name, states[name], "stopped", reached=True)
            left = [n for n in left if states[n] not in OFF_STATES]
            elapsed = runtime.clock() - start
            done = len(asked) - len(left)
            reporter.progress(
                done,
                len(asked),
                f"{done}/{len(asked)} stopped, {elapsed:.0f}s of {self.plan.timeout:g}s",
            )
            if not left or elapsed >= self.plan.timeout:
                break
            runtime.sleep(min(POLL_SECONDS, max(0.05, self.plan.timeout - elapsed)))
        took = runtime.clock() - start
        stopped = [n for n in asked if n not in left]
        already = [n for n in names if n not in asked]
        said = []
        if stopped:
            said.append(f"stopped {', '.join(stopped)} in {took:.0f} s")
        if already:
            said.append("already off: " + ", ".join(f"{n} ({before[n]})" for n in already))
        for name, why in away.items():
            reporter.note(f"{name}: not asked ({why})")
        products = {n: domain_states.SHUT_OFF for n in stopped + already}
        not_stopped = left + list(away)
        if not not_stopped:
            return StepOutcome(outcomes.DONE, "; ".join(said) or "no nodes", products)
        missed = f"did not stop within {self.plan.timeout:g} s: {', '.join(not_stopped)}"
        if self.plan.force:
            return StepOutcome(outcomes.DONE, "; ".join([*said, missed]), products)
        raise StepError(
            "; ".join([*said, missed]),
            stage=stages.SHUTDOWN,
            output_tail=[f"{n}: {why}" for n, why in away.items()],
            hint=f"`pragmash stop {runtime.vcname} --force` powers off what is left "
            "(definitions and disks are kept)",
        )

    def _power_off(self, step: PowerStep, reporter: StepReporter) -> StepOutcome:
        engine = self.runtime.engine
        nodes = self._nodes(step)
        away = self._away(nodes)
        names = [n.name for n in nodes if n.name not in away]
        states = per_host(engine, names, engine.state)
        on = [n for n in names if states[n] not in OFF_STATES]
        offed = [n for n, was in at_once(on, self.power.power_off).items() if was]
        products = {n: domain_states.SHUT_OFF for n in names}
        if away:
            raise StepError(
                f"cannot power off {', '.join(away)}: their host does not answer"
                + (f" (powered off {', '.join(offed)})" if offed else ""),
                stage=stages.POWER_OFF,
                output_tail=[f"{n}: {why}" for n, why in away.items()],
                hint=f"once the host answers, `pragmash stop {self.runtime.vcname} --force` again",
            )
        if not offed:
            return StepOutcome(outcomes.DONE, "nothing left running", products)
        return StepOutcome(outcomes.DONE, f"powered off {', '.join(offed)}", products)

    # -- start ------------------------------------------------------------------------

    def _start(self, step: PowerStep, reporter: StepReporter) -> StepOutcome:
        runtime = self.runtime
        engine = runtime.engine
        nodes = self._nodes(step)
        if not nodes:
            return StepOutcome(outcomes.SKIPPED, f"the VC has no {step.role} node")
        made = runtime.ensure_private_network()
        if private_network.made_anew(made):
            assert made is not None
            reporter.note(f"private network was missing: {made.message}")
        states = per_host(engine, [n.name for n in nodes], engine.state)
        running = [n.name for n in nodes if states[n.name] == domain_states.RUNNING]
        rebuild: list[NodePlan] = []
        plain: list[str] = []
        for node in nodes:
            if node.name in running:
                continue
            why = self._missing(node, states[node.name])
            if why:
                reporter.note(f"{node.name}: {why}: booting it as `boot` does")
                rebuild.append(node)
            else:
                plain.append(node.name)
        at_once(plain, self.power.start)
        said = []
        if plain:
            said.append(f"started {', '.join(plain)}")
        if running:
            said.append(f"already running: {', '.join(running)}")
        if rebuild:
            said.append(f"booted again: {runtime.boot(rebuild, reporter).message}")
        return StepOutcome(
            outcomes.DONE, "; ".join(said), {n.name: domain_states.RUNNING for n in nodes}
        )

    def _missing(self, node: NodePlan, state: str) -> str:
        """Why a node cannot simply be started (its domain or staged disk is gone), or ''."""
        if state == domain_states.ABSENT:
            return "its domain is not defined"
        runtime = self.runtime
        if runtime.disk_work.simulated:
            return ""
        disk = Path(node.disks[0]) if node.disks else None
        if disk is None or not runtime.folder.holds(disk) or not disk.is_file():
            return "its staged disk is missing"
        return ""

    def _wait(self, step: PowerStep, reporter: StepReporter) -> StepOutcome:
        nodes = self._nodes(step)
        if not nodes:
            return StepOutcome(outcomes.SKIPPED, f"the VC has no {step.role} node")
        return self.runtime.wait_for(nodes, Goal("up"), self.plan.timeout, reporter)


# -- opening a stop or start run ----------------------------------------------------------


def begin(
    vcname: str,
    plan: PowerPlan,
    *,
    site: str | OpenSite | None = None,
    on_event: EventSink = ignore,
) -> Run:
    """Lock the VC and open a stop or start run (nothing has run yet).

    Raises a UserError (nothing changed) when the VC cannot be stopped or started.
    """
    vcname = validate_name("VC name", vcname)
    opened = opened_site(site)
    ledger = opened.ledger
    held, record = opened.allocated(
        vcname,
        nothing=f"there is nothing to {plan.kind}",
        hint=f"boot it with `pragmash RECIPE --vcname {vcname}`",
    )
    outcome = run_outcome(record, lock_holder(ledger, vcname))
    if outcome == outcomes.RUNNING:
        acquire_lock(ledger, vcname)  # raises BusyError naming the holder
    if power_kind(record) is None and outcome not in (outcomes.FINISHED, outcomes.CLEANED):
        what = "a scale" if isinstance(record.options.get("scale"), dict) else record.recipe
        raise UserError(
            f"{vcname}: its run {record.id} ({what}) is {outcome}: a {plan.kind} now would "
            "hide it from `resume`",
            hint=f"`pragmash resume {vcname}` finishes it first (or `pragmash clean {vcname}`)",
        )
    prep = _load(opened, RunOptions.from_json(record.options), plan)

    def then() -> None:
        prep.runtime.adopt(held)
        if plan.kind == "start":  # a crash since the VC's run may have lost its vc-out
            prep.runtime.repair_vc_out()
        _provide_if_needed(prep, plan, on_event)

    return opening.begin(
        prep,
        PowerExecutor(prep.runtime, plan),
        journaled=lambda: (plan.describe(), {**prep.options.to_json(), "power": plan.to_json()}),
        then=then,
        on_event=on_event,
    )


def resume(vcname: str, *, site: str | OpenSite | None = None, on_event: EventSink = ignore) -> Run:
    """Reopen the VC's last run, a stop or a start, at its first unfinished step."""
    vcname = validate_name("VC name", vcname)
    opened = opened_site(site)
    record = opened.last_run(vcname)
    if record is None or power_kind(record) is None:
        raise UserError(f"{vcname}'s last run is not a stop or a start")
    if record.outcome in (outcomes.FINISHED, outcomes.CLEANED):
        raise UserError(
            f"{vcname}'s last run ({record.id}, {record.recipe}) {record.outcome}; there is "
            "nothing to resume"
        )
    plan = PowerPlan.from_json(record.options["power"])
    prep = _load(opened, RunOptions.from_json(record.options), plan)

    def then(_start_at: int) -> None:
        held = opened.allocation(vcname)
        if held is None:
            raise UserError(f"{vcname} holds no allocation any more: the {plan.kind} cannot go on")
        prep.runtime.adopt(held)
        if plan.kind == "start":
            prep.runtime.repair_vc_out()
        _provide_if_needed(prep, plan, on_event)

    return opening.reopen(
        prep, record, PowerExecutor(prep.runtime, plan), then=then, on_event=on_event
    )


def _load(opened: OpenSite, options: RunOptions, plan: PowerPlan) -> Prepared:
    """The VC's site, vc-in, drivers and runtime, as its run had them; the engine answers
    and can power domains off and on."""
    if opened.path:
        options.site = opened.path
    prep = load(opened, options, lambda _config: power_program(plan))
    engine = prep.runtime.engine
    if not isinstance(engine, PowerControl):
        raise UserError(
            f"the site's engine ({engine.name}, {prep.site.uri}) cannot power a domain off and "
            f"on without forgetting it: `pragmash {plan.kind}` needs that",
            hint=f"`pragmash clean {options.vcname}` and a new run, instead",
        )
    make_ready(prep, memory=False)  # a stop must not be refused for the nodes' memory
    return prep


def _provide_if_needed(prep: Prepared, plan: PowerPlan, on_event: EventSink) -> None:
    """A start that must stage a node again needs the VC's images local and verified
    (a web repository's are fetched into the cache); the nodes are then made anew."""
    runtime = prep.runtime
    held = runtime.allocation
    if plan.kind != "start" or runtime.disk_work.simulated or held is None:
        return
    if all(runtime.folder.staged(n.name, prep.site.staging).is_file() for n in held.nodes):
        return
    provide(prep, on_event)
    runtime.nodes = {}
    runtime.adopt(held)


def plan_of(run: Run) -> PowerPlan:
    """The plan of a stop or start run (for its front end's last line)."""
    executor = run.interpreter.executor
    assert isinstance(executor, PowerExecutor)
    return executor.plan
