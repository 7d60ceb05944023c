"""The stepping engine, against a recording executor (a fake, as tests may have)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pragmash import outcomes
from pragmash.engine.run.events import Event, Output, StepFailed, StepFinished, StepStarted
from pragmash.engine.run.interpreter import Interpreter, StepOutcome, StepReporter
from pragmash.errors import StepError
from pragmash.language import ast
from pragmash.language.parser import parse_file, parse_recipe
from pragmash.language.program import flatten


class Recorder:
    """Executes nothing; records statement texts and fails where told."""

    def __init__(
        self, fail_on: set[str] | None = None, interrupt_on: set[str] | None = None
    ) -> None:
        self.ran: list[str] = []
        self.fail_on = fail_on or set()
        self.interrupt_on = interrupt_on or set()

    def execute(self, statement: ast.Statement, reporter: StepReporter) -> StepOutcome:
        self.ran.append(statement.text)
        if statement.text in self.interrupt_on:
            raise KeyboardInterrupt
        if statement.text in self.fail_on:
            raise StepError("engine said no", stage="ve_driver/boot", output_tail=["no"])
        if isinstance(statement, ast.Echo):
            reporter.note("said")
        return StepOutcome(outcomes.DONE, "ok")


class Journal:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, str]] = []

    def step_started(self, index: int, statement: ast.Statement) -> None:
        self.rows.append(("started", index, statement.text))

    def step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        self.rows.append((outcome, index, message))

    def step_failed(self, index: int, error: Exception, interrupted: bool) -> None:
        self.rows.append(("interrupted" if interrupted else "failed", index, str(error)))

    def step_handed_over(
        self,
        index: int,
        outcome: str,
        message: str,
        products: dict[str, str],
        next_index: int,
        next_statement: ast.Statement,
    ) -> None:
        self.step_finished(index, outcome, message, products)
        self.step_started(next_index, next_statement)

    def last_step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        self.step_finished(index, outcome, message, products)

    def flush(self) -> None:
        pass


CARD = "allocate 4; fix all via virt-v2v; boot frontend; wait 300; boot compute\n"


def test_card_line_runs_to_end_in_order() -> None:
    program = parse_recipe(CARD, "card.prg")
    rec = Recorder()
    events: list[Event] = []
    interp = Interpreter(program, rec, on_event=events.append)
    assert interp.run_to_end() == "finished"
    assert rec.ran == [
        "allocate 4",
        "fix all via virt-v2v",
        "boot frontend",
        "wait 300",
        "boot compute",
    ]
    assert interp.status == "finished" and interp.finished
    assert [type(e) for e in events[:2]] == [StepStarted, StepFinished]
    assert sum(isinstance(e, StepFinished) for e in events) == 5


def test_step_runs_exactly_one() -> None:
    interp = Interpreter(parse_recipe(CARD, "card.prg"), rec := Recorder())
    assert interp.step() == "step"
    assert rec.ran == ["allocate 4"] and interp.pc == 1
    assert interp.step() == "step"
    assert interp.pc == 2 and interp.status == "paused"


def test_breakpoint_by_line_stops_before_the_statement() -> None:
    text = "allocate 2\nboot frontend\nwait 5\nboot compute\n"
    interp = Interpreter(parse_recipe(text, "r.prg"), rec := Recorder())
    interp.add_breakpoint(3)
    assert interp.cont() == "breakpoint"
    assert rec.ran == ["allocate 2", "boot frontend"]
    assert interp.current is not None and interp.current.statement.span.line == 3
    # continuing from a breakpoint moves past it
    assert interp.cont() == "finished"
    assert rec.ran[-2:] == ["wait 5", "boot compute"]


def test_break_on_statement_kind() -> None:
    interp = Interpreter(parse_recipe(CARD, "card.prg"), rec := Recorder())
    interp.break_kinds.add("boot")
    assert interp.cont() == "breakpoint"
    assert rec.ran == ["allocate 4", "fix all via virt-v2v"]


def test_run_to_end_ignores_breakpoints_and_keeps_them() -> None:
    interp = Interpreter(parse_recipe(CARD, "card.prg"), Recorder())
    interp.add_breakpoint(1)
    assert interp.run_to_end() == "finished"
    assert interp.breakpoints == {("card.prg", 1)}


def test_failure_stops_keeps_pc_and_retry_runs_it_again() -> None:
    rec = Recorder(fail_on={"boot frontend"})
    journal = Journal()
    events: list[Event] = []
    interp = Interpreter(
        parse_recipe(CARD, "card.prg"), rec, journal=journal, on_event=events.append
    )
    assert interp.run_to_end() == "failed"
    assert interp.status == "failed" and interp.pc == 2
    assert isinstance(interp.last_error, StepError) and interp.last_error.stage == "ve_driver/boot"
    assert journal.rows[-1][0:2] == ("failed", 2)
    assert isinstance(events[-1], StepFailed)
    rec.fail_on.clear()
    assert interp.retry() == "step"
    assert interp.pc == 3 and interp.last_error is None
    assert interp.cont() == "finished"
    assert rec.ran.count("boot frontend") == 2


def test_ctrl_c_marks_step_interrupted() -> None:
    journal = Journal()
    interp = Interpreter(
        parse_recipe(CARD, "card.prg"), Recorder(interrupt_on={"wait 300"}), journal=journal
    )
    assert interp.run_to_end() == "interrupted"
    assert interp.status == "interrupted" and interp.pc == 3
    assert journal.rows[-1][:2] == ("interrupted", 3)


def test_skip_moves_past_and_journals_it() -> None:
    journal = Journal()
    interp = Interpreter(parse_recipe(CARD, "card.prg"), rec := Recorder(), journal=journal)
    interp.skip()
    assert interp.pc == 1 and journal.rows[0] == ("skipped", 0, "skipped by the user")
    interp.run_to_end()
    assert "allocate 4" not in rec.ran


def test_start_at_resumes_mid_program() -> None:
    interp = Interpreter(parse_recipe(CARD, "card.prg"), rec := Recorder(), start_at=3)
    interp.run_to_end()
    assert rec.ran == ["wait 300", "boot compute"]


def test_output_events_carry_notes(tmp_path: Path) -> None:
    events: list[Event] = []
    Interpreter(parse_recipe("echo hi\n", "e.prg"), Recorder(), on_event=events.append).run_to_end()
    assert Output(0, "said") in events
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert finished[0].notes == ("said",)


def test_include_is_flattened_and_next_steps_over_it(tmp_path: Path) -> None:
    (tmp_path / "inner.prg").write_text("echo a\necho b\n")
    (tmp_path / "main.prg").write_text('allocate 1\ninclude "inner.prg"\nboot frontend\n')
    program = parse_file(tmp_path / "main.prg")
    steps = flatten(program.statements)
    assert [(s.statement.text, s.depth) for s in steps] == [
        ("allocate 1", 0),
        ('include "inner.prg"', 0),
        ("echo a", 1),
        ("echo b", 1),
        ("boot frontend", 0),
    ]
    interp = Interpreter(program, rec := Recorder())
    interp.step()  # allocate
    assert interp.next() == "step"  # over the include and its body
    assert rec.ran == ["allocate 1", 'include "inner.prg"', "echo a", "echo b"]
    assert interp.current is not None and interp.current.statement.text == "boot frontend"
    # step goes into an include
    interp2 = Interpreter(program, rec2 := Recorder(), start_at=1)
    interp2.step()
    interp2.step()
    assert rec2.ran == ['include "inner.prg"', "echo a"]


@pytest.mark.parametrize("line", [1, 2])
def test_breakpoint_in_included_file(tmp_path: Path, line: int) -> None:
    (tmp_path / "inner.prg").write_text("echo a\necho b\n")
    (tmp_path / "main.prg").write_text('include "inner.prg"\n')
    interp = Interpreter(parse_file(tmp_path / "main.prg"), Recorder())
    inner = str(tmp_path / "inner.prg")
    steps = flatten(interp.program.statements)
    assert steps[1].statement.span.file == inner
    interp.add_breakpoint(line, inner)
    assert interp.cont() == "breakpoint"
    assert interp.current is not None and interp.current.statement.span.line == line
