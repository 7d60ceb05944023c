"""What a debugger front end may ask of a started run, as one public API.

The REPL looks at nodes, leases and the journal, checks and runs typed statements,
reloads vc-in.xml and reopens a journaled run through :class:`DebugRun`, never by
reaching into the runtime's engine, the ledger or the interpreter's attributes.
Stepping itself is the interpreter's own public API (``step``, ``next``, ``cont``,
``until``, ``retry``, ``skip``, breakpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pragmash import domain_states, outcomes
from pragmash.driver_api import NodePlan, describe_up_tests
from pragmash.engine.hosts.console import ConsoleStream, console_of
from pragmash.engine.run.interpreter import Interpreter, StepOutcome
from pragmash.engine.run.reload import reload_vc_in
from pragmash.engine.run.session import RecipeCheckFailed, Run, check_context
from pragmash.errors import Interrupted, PragmashError, RecipeError, Span, StepError, UserError
from pragmash.language import ast
from pragmash.language.checker import check_program, needs_allocation_first
from pragmash.language.parser import parse_statement
from pragmash.language.program import FlatStep, flatten
from pragmash.language.sources import remember
from pragmash.language.targets import parse_target_word, select_names
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.store.journal import StepRecord

REPL_FILE = "<repl>"


@dataclass(frozen=True)
class NodeView:
    """One node as the engine sees it now: for ``show nodes`` and ``watch nodes``."""

    name: str
    role: str
    cpus: int
    private_ip: str
    state: str
    last_line: str


class DebugRun:
    """A started run seen by a debugger: its nodes, journal, leases, typed statements."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.interpreter: Interpreter = run.interpreter
        self._runtime = run.prepared.runtime
        recorded = [s.idx for s in run.journal.steps()]
        self._typed_index = max([len(self.interpreter.steps) - 1, *recorded]) + 1

    # -- what the run is --------------------------------------------------------------

    @property
    def vcname(self) -> str:
        return self._runtime.vcname

    @property
    def uri(self) -> str:
        return self._runtime.site.uri

    @property
    def run_id(self) -> int:
        return self.run.journal.run_id

    @property
    def simulated(self) -> bool:
        """True on a simulated engine (``test:///``): no disks, no consoles."""
        return self._runtime.disk_work.simulated

    @property
    def domains_outlive_process(self) -> bool:
        """False where the engine lives inside this process (``test:///default``):
        its domains end when pragmash does, so there is nothing to shut down later."""
        return self._runtime.disk_work.real

    @property
    def state_dir(self) -> Path:
        return self.run.prepared.site.state_dir

    @property
    def vc_in_shown(self) -> str:
        """The VC's vc-in.xml as the user knows it: its URL for a web repository, else its path."""
        return self.run.prepared.vcin.shown

    @property
    def vc_out_path(self) -> Path:
        return self._runtime.vc_out_path

    def variables(self) -> dict[str, str]:
        return dict(self._runtime.variables)

    def nodes(self) -> list[NodePlan]:
        return list(self._runtime.nodes.values())

    def leases(self) -> Allocation | None:
        return alloc_mod.current_allocation(self.run.prepared.ledger, self.vcname)

    def journal(self) -> list[StepRecord]:
        """The run's journal in the order things happened (typed statements among steps)."""
        return sorted(self.run.journal.steps(), key=lambda r: (r.started_at, r.idx))

    # -- nodes ------------------------------------------------------------------------

    def resolve_nodes(self, text: str) -> list[str]:
        """Node names for a target as recipes write it: a name, ``frontend``, ``compute``,
        ``compute[i]``, ``compute[i:j]`` or ``all``; UserError when it names none."""
        nodes = self.nodes()
        if not nodes:
            raise UserError("no nodes yet: nothing is allocated (`allocate` makes them)")
        frontend = next(n.name for n in nodes if n.role == "frontend")
        computes = [n.name for n in nodes if n.role == "compute"]
        target = parse_target_word(text, Span(REPL_FILE, 1, 1, 1, len(text) + 1))
        try:
            return select_names([target], frontend, computes)
        except RecipeError as err:
            raise UserError(err.message) from None

    def up_when(self, name: str) -> str:
        """How ``up`` is told for the node, and who chose that (the distro driver, the site)."""
        node = self._runtime.nodes[name]
        return f"{describe_up_tests(node.up_tests)} (chosen by {self._runtime.up_tests_source})"

    def state(self, name: str) -> str:
        """The engine's word for the node now (``running``, ``paused``, ``absent``, …)."""
        return self._runtime.engine.state(name)

    def domain_xml(self, name: str) -> str | None:
        return self._runtime.engine.domain_xml(name)

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        return self._runtime.engine.console_tail(name, lines)

    def open_console(self, text: str) -> tuple[str, ConsoleStream]:
        """The interactive console of the one node ``text`` names (``console NODE``)."""
        names = self.resolve_nodes(text)
        if len(names) != 1:
            raise UserError(f"console {text}: names {len(names)} nodes; expected one")
        return names[0], console_of(self._runtime.engine, self._runtime.disk_work, names[0])

    def node_views(self) -> list[NodeView]:
        """Every node's state and last console line, asked of the engine now."""
        views = []
        for node in self.nodes():
            try:
                state = self.state(node.name)
                tail = self.console_tail(node.name, 1)
            except PragmashError as err:
                state, tail = domain_states.UNKNOWN, [err.message]
            views.append(
                NodeView(
                    node.name,
                    node.role,
                    node.cpus,
                    node.private_ip,
                    state,
                    tail[-1] if tail else "",
                )
            )
        return views

    def running_domains(self) -> list[str]:
        running = []
        for node in self.nodes():
            try:
                if self.state(node.name) == domain_states.RUNNING:
                    running.append(node.name)
            except PragmashError:
                continue
        return running

    # -- typed statements -------------------------------------------------------------

    def parse_typed(self, text: str) -> list[FlatStep]:
        """What was typed, parsed and checked like a recipe against the run as it is now.

        A mistake (syntax, an unknown variable, a node the VC does not have, a ``run``
        the site refuses, a missing include) raises a RecipeError before anything runs,
        so nothing is journaled for it; only statements that ran are.
        """
        remember(REPL_FILE, text)  # so errors show the typed line with a caret
        statements = parse_statement(text, file=REPL_FILE)
        program = ast.Program(REPL_FILE, text, statements)
        allocation = self._runtime.allocation
        allocated = len(allocation.computes) if allocation is not None else None
        problems = check_program(
            program, check_context(self.run.prepared, allocated=allocated)
        ) + needs_allocation_first(program, allocation is not None)
        if problems:
            raise RecipeCheckFailed(problems)
        return flatten(statements)

    def run_typed(self, step: FlatStep) -> StepOutcome:
        """Run one typed statement against this run, journaled under an index of its own."""
        index = self._typed_index
        self._typed_index += 1
        return self.interpreter.run_statement(step.statement, index=index)

    def expand(self, text: str) -> str:
        """Words as ``echo`` would print them, variables substituted (for ``display``)."""
        remember(REPL_FILE, f"echo {text}")
        (stmt,) = parse_statement(f"echo {text}", file=REPL_FILE)
        assert isinstance(stmt, ast.Echo)
        return " ".join(self._runtime.word(w) for w in stmt.words)

    # -- the run's lifecycle ----------------------------------------------------------

    def reload(self) -> tuple[list[str], list[str]]:
        """Read vc-in.xml again: what changed, and which nodes still run the old template."""
        changed = reload_vc_in(self.run.prepared)
        running = [
            node.name
            for node in self.nodes()
            if f"the {node.role} template changed" in changed
            and self.state(node.name) not in (domain_states.ABSENT, domain_states.SHUT_OFF)
        ]
        return changed, running

    def restore_from_journal(self) -> None:
        """Show an attached run as it was left: step outcomes, and the failed step's error."""
        records = {r.idx: r for r in self.run.journal.steps()}
        stopped = records.get(self.interpreter.pc)
        error: PragmashError | None = None
        if stopped is not None and stopped.outcome in (outcomes.FAILED, outcomes.INTERRUPTED):
            message = stopped.message or f"the step was {stopped.outcome}"
            if stopped.outcome == outcomes.INTERRUPTED:
                error = Interrupted(message)
            elif stopped.stage:
                error = StepError(message, stage=stopped.stage, output_tail=stopped.output_tail)
            else:
                error = PragmashError(message)
        self.interpreter.restore({i: r.outcome for i, r in records.items()}, error)

    def close(self, outcome: outcomes.RunEnd, message: str | None = None) -> None:
        self.run.close(outcome, message)
