"""The stepping engine: a program counter over a recipe's statements.

Modelled on CPython's ``bdb``: the interpreter knows how to run one step and when
to stop (one helper, :meth:`Interpreter._should_stop`), and nothing about terminals.
The CLI runs it to the end; the REPL steps it; tests drive it directly. What a
statement *does* belongs to the executor (the runtime); what happened is reported
as events and written to the journal.

The interpreter walks the flattened program (:func:`pragmash.language.program.flatten`):
every step has a stable index, which is what the journal records and what
``resume`` continues from; ``next`` uses a step's include depth to step over an
include.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

from pragmash import outcomes
from pragmash.engine.run.events import (
    EventSink,
    NodeProgress,
    Output,
    Progress,
    StepFailed,
    StepFinished,
    StepStarted,
    ignore,
)
from pragmash.errors import Interrupted, PragmashError
from pragmash.language.ast import Program, Statement
from pragmash.language.program import FlatStep, flatten


@dataclass
class StepOutcome:
    """What the executor reports for one statement that did not fail."""

    outcome: outcomes.DoneOrSkipped = outcomes.DONE
    message: str = ""
    products: dict[str, str] = field(default_factory=dict)


class StepReporter:
    """Handed to the executor for one step: its way to say things while working."""

    def __init__(self, index: int, sink: EventSink, *, node_status: bool = True) -> None:
        self.index = index
        self._sink = sink
        self.notes: list[str] = []
        #: whether the front end shows each node's state (a live view): only then is it
        #: worth asking the engine for every node's state and console line every round
        self.node_status = node_status

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._sink(Output(self.index, text))

    def progress(self, done: float, total: float | None, label: str) -> None:
        self._sink(Progress(self.index, done, total, label))

    def node(
        self, name: str, state: str | Callable[[], str], detail: str = "", *, reached: bool = False
    ) -> None:
        """Where one node stands while the step works on it (a front end's live view).

        Nothing is sent, and a ``state`` given as a callable is never asked, when the
        front end shows no node status: an engine call per node nobody looks at.
        """
        if not self.node_status:
            return
        now = state() if callable(state) else state
        self._sink(NodeProgress(self.index, name, now, detail, reached))


class Executor(Protocol):
    """Carries out one statement. Raises a PragmashError on failure."""

    def execute(self, statement: Statement, reporter: StepReporter) -> StepOutcome: ...


class JournalSink(Protocol):
    """Where step records go as they happen (the ledger's journal, or nothing)."""

    def step_started(self, index: int, statement: Statement) -> None: ...

    def step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None: ...

    def step_failed(self, index: int, error: PragmashError, interrupted: bool) -> None: ...

    def step_handed_over(
        self,
        index: int,
        outcome: str,
        message: str,
        products: dict[str, str],
        next_index: int,
        next_statement: Statement,
    ) -> None:
        """``index`` finished and ``next_index`` starts straight away (one record)."""

    def last_step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        """The last step finished and the run ends straight after: kept for the end."""

    def flush(self) -> None:
        """Write whatever :meth:`last_step_finished` kept back."""


class NullJournal:
    """A journal that keeps nothing, for runs that need no record (``check``, tests)."""

    def step_started(self, index: int, statement: Statement) -> None:
        pass

    def step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        pass

    def step_failed(self, index: int, error: PragmashError, interrupted: bool) -> None:
        pass

    def step_handed_over(
        self,
        index: int,
        outcome: str,
        message: str,
        products: dict[str, str],
        next_index: int,
        next_statement: Statement,
    ) -> None:
        pass

    def last_step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        pass

    def flush(self) -> None:
        pass


#: What the journal is told when a step finishes: the step that follows straight away
#: (its start goes in the same write), "end" (the run ends straight after: the record
#: goes with the run's end), or None (the interpreter stops here: written at once).
After: TypeAlias = Literal["end"] | FlatStep | None

Status = Literal["ready", "paused"] | outcomes.Ended
StopReason = Literal["step", "breakpoint", "until"] | outcomes.Ended
Mode = Literal["step", "next", "continue", "until"]


class Interpreter:
    """Runs a program's flattened steps against an executor, stopping where asked."""

    def __init__(
        self,
        program: Program,
        executor: Executor,
        *,
        journal: JournalSink | None = None,
        on_event: EventSink = ignore,
        start_at: int = 0,
        start_recorded: bool = False,
    ) -> None:
        """``start_recorded``: the journal already holds step ``start_at`` as started
        (written with the run's opening, which a run going straight on may do)."""
        self.program = program
        self.steps = flatten(program.statements)
        self.executor = executor
        self.journal: JournalSink = journal or NullJournal()
        self.on_event = on_event
        self.node_status = True  # see set_event_sink
        self.pc = start_at
        self.status: Status = "ready"
        self.last_error: PragmashError | None = None
        self.outcomes: dict[int, str] = {}
        self.breakpoints: set[tuple[str, int]] = set()
        self.temporary: set[tuple[str, int]] = set()
        self.break_kinds: set[str] = set()
        self._until: tuple[str, int] | None = None
        # the step whose start the journal already holds (written ahead, in one write
        # with the run's opening or with the previous step's end)
        self._recorded_start: int | None = start_at if start_recorded else None

    # -- where we are -----------------------------------------------------------------

    @property
    def current(self) -> FlatStep | None:
        """The step the program counter points at (the next to run, or the one that failed)."""
        return self.steps[self.pc] if self.pc < len(self.steps) else None

    @property
    def finished(self) -> bool:
        return self.pc >= len(self.steps)

    # -- breakpoints ------------------------------------------------------------------

    def add_breakpoint(
        self, line: int, file: str | None = None, *, temporary: bool = False
    ) -> None:
        """Stop before the statement at ``file:line``; a temporary one is cleared when hit."""
        key = (file or self.program.file, line)
        self.breakpoints.add(key)
        if temporary:
            self.temporary.add(key)
        else:
            self.temporary.discard(key)

    def remove_breakpoint(self, line: int, file: str | None = None) -> bool:
        """Clear one line breakpoint; False when there was none."""
        key = (file or self.program.file, line)
        self.temporary.discard(key)
        if key not in self.breakpoints:
            return False
        self.breakpoints.discard(key)
        return True

    def add_break_kind(self, kind: str) -> None:
        """Stop before every statement of this kind (``boot``, ``wait``, …)."""
        self.break_kinds.add(kind)

    def remove_break_kind(self, kind: str) -> bool:
        """Clear a kind breakpoint; False when there was none."""
        if kind not in self.break_kinds:
            return False
        self.break_kinds.discard(kind)
        return True

    def clear_breakpoints(self) -> None:
        self.breakpoints.clear()
        self.temporary.clear()
        self.break_kinds.clear()

    def set_event_sink(self, sink: EventSink, *, node_status: bool = True) -> None:
        """Where events go from now on (a front end that opened the run after it started).

        ``node_status``: the sink shows each node's state as a step works (NodeProgress);
        False spares the engine a call per node and round that nobody would see.
        """
        self.on_event = sink
        self.node_status = node_status

    def restore(self, recorded: dict[int, str], stopped: PragmashError | None = None) -> None:
        """Show a reopened run as it was left: each step's outcome, and the error it stopped on.

        ``stopped`` is the error of the step at the program counter when that step
        failed (or was interrupted, if it is an :class:`Interrupted`).
        """
        for idx, outcome in recorded.items():
            if idx < len(self.steps):
                self.outcomes[idx] = outcome
        if stopped is not None:
            self.status = (
                outcomes.INTERRUPTED if isinstance(stopped, Interrupted) else outcomes.FAILED
            )
            self.last_error = stopped

    # -- stepping ---------------------------------------------------------------------

    def step(self) -> StopReason:
        """Run exactly one step."""
        return self._resume("step")

    def next(self) -> StopReason:
        """Run one step, stepping over an include as a whole."""
        return self._resume("next")

    def cont(self) -> StopReason:
        """Run until a breakpoint, a failure or the end."""
        return self._resume("continue")

    def until(self, line: int, file: str | None = None) -> StopReason:
        """Run until a statement at ``line`` or later in ``file`` (as pdb's ``until``),
        a breakpoint, a failure or the end."""
        self._until = (file or self.program.file, line)
        try:
            return self._resume("until")
        finally:
            self._until = None

    def retry(self) -> StopReason:
        """Run the failed (or interrupted) step again, then stop."""
        return self._resume("step")

    def skip(self) -> None:
        """Leave the current step undone and move past it."""
        cur = self.current
        if cur is None:
            return
        self.outcomes[cur.index] = outcomes.SKIPPED
        self.journal.step_finished(cur.index, outcomes.SKIPPED, "skipped by the user", {})
        self.on_event(
            StepFinished(cur.index, cur.statement, outcomes.SKIPPED, 0.0, "skipped by the user")
        )
        self.pc += 1
        self.status = outcomes.FINISHED if self.finished else "paused"

    def run_to_end(self, *, ending: bool = False) -> StopReason:
        """Run everything left, ignoring breakpoints (the CLI's plain run).

        ``ending``: the caller ends the run (``Run.close``) as soon as this returns
        ``finished``; the last step's record is then written with the run's end, in one
        write (:meth:`JournalSink.last_step_finished`).
        """
        saved = self.breakpoints, self.break_kinds
        self.breakpoints, self.break_kinds = set(), set()
        try:
            return self._resume("continue", ending=ending)
        finally:
            self.breakpoints, self.break_kinds = saved

    def run_statement(self, statement: Statement, index: int | None = None) -> StepOutcome:
        """Run a statement that is not in the recipe (typed at the REPL) against the same run.

        It is journaled and reported like a step, under its own ``index`` (default: past
        the recipe's steps), but the program counter, status and last error are left
        alone, so ``retry`` and ``continue`` still mean the recipe's steps. Failures are
        raised (a KeyboardInterrupt as :class:`Interrupted`) for the caller to show.
        """
        idx = len(self.steps) if index is None else index
        result, error = self._execute(idx, statement)
        if error is not None:
            raise error from None
        assert result is not None
        return result

    def _execute(
        self, index: int, statement: Statement, step: FlatStep | None = None, after: After = None
    ) -> tuple[StepOutcome | None, PragmashError | None]:
        """Run one statement, journaled and reported: the one way a step is run.

        For a recipe ``step`` the interpreter's own state (outcomes, status, last error)
        is set before the journal and the front end hear of it; a statement typed at
        the REPL leaves it alone. A KeyboardInterrupt comes back as :class:`Interrupted`.
        ``after`` is what follows straight away if the step succeeds (see :data:`After`):
        each step boundary is then one journal write.
        """
        self.on_event(StepStarted(index, statement))
        if self._recorded_start == index:
            self._recorded_start = None
        else:
            self.journal.step_started(index, statement)
        reporter = StepReporter(index, self.on_event, node_status=self.node_status)
        started = time.monotonic()
        try:
            result = self.executor.execute(statement, reporter)
        except (KeyboardInterrupt, PragmashError) as exc:
            err = (
                exc
                if isinstance(exc, PragmashError)
                else Interrupted(f"interrupted during '{statement.text}'")
            )
            interrupted = isinstance(err, Interrupted)
            if step is not None:
                self.last_error = err
                self.status = outcomes.INTERRUPTED if interrupted else outcomes.FAILED
                self.outcomes[index] = self.status
            self.journal.step_failed(index, err, interrupted)
            self.on_event(
                StepFailed(index, statement, err, time.monotonic() - started, interrupted)
            )
            return None, err
        duration = time.monotonic() - started
        if step is not None:
            self.outcomes[index] = result.outcome
        if after == "end":
            self.journal.last_step_finished(index, result.outcome, result.message, result.products)
        elif after is not None:
            self.journal.step_handed_over(
                index,
                result.outcome,
                result.message,
                result.products,
                after.index,
                after.statement,
            )
            self._recorded_start = after.index
        else:
            self.journal.step_finished(index, result.outcome, result.message, result.products)
        self.on_event(
            StepFinished(
                index, statement, result.outcome, duration, result.message, tuple(reporter.notes)
            )
        )
        return result, None

    def _should_stop(
        self, mode: Mode, first: bool, base_depth: int, step: FlatStep, *, peek: bool = False
    ) -> StopReason | None:
        """The one stop-condition helper every stepping mode goes through (as bdb's).

        ``peek``: only ask (a temporary breakpoint is not cleared)."""
        if first:
            return None
        if mode == "step":
            return "step"
        if mode == "next" and step.depth <= base_depth:
            return "step"
        stmt = step.statement
        key = (stmt.span.file, stmt.span.line)
        if key in self.breakpoints or stmt.kind in self.break_kinds:
            if key in self.temporary and not peek:
                self.temporary.discard(key)
                self.breakpoints.discard(key)
            return "breakpoint"
        if mode == "until" and self._until is not None:
            file, line = self._until
            if stmt.span.file == file and stmt.span.line >= line:
                return "until"
        return None

    def _resume(self, mode: Mode, *, ending: bool = False) -> StopReason:
        base = self.current
        base_depth = base.depth if base else 0
        first = True
        while not self.finished:
            step = self.steps[self.pc]
            reason = self._should_stop(mode, first, base_depth, step)
            if reason is not None:
                self.status = "paused"
                return reason
            first = False
            if not self._run_one(step, self._after(mode, base_depth, ending)):
                return (
                    outcomes.INTERRUPTED if self.status == outcomes.INTERRUPTED else outcomes.FAILED
                )
        self.status = outcomes.FINISHED
        return outcomes.FINISHED

    def _after(self, mode: Mode, base_depth: int, ending: bool) -> After:
        """What follows the step at the program counter straight away, if it succeeds."""
        following = self.pc + 1
        if following >= len(self.steps):
            return "end" if ending else None
        step = self.steps[following]
        return step if self._should_stop(mode, False, base_depth, step, peek=True) is None else None

    def _run_one(self, step: FlatStep, after: After = None) -> bool:
        _, error = self._execute(step.index, step.statement, step, after)
        if error is not None:
            return False
        self.last_error = None
        self.pc += 1
        return True
