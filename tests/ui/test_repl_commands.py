"""REPL commands beyond stepping: help from docs/language.md, `help error`, colour,
`until`, `tbreak` and `display`; driven through prompt_toolkit's pipe input."""

from __future__ import annotations

import io
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.input import PipeInput
from support.repldriver import Driver, leave_stuck_compute

from pragmash.engine.run.events import StepFailed, StepFinished
from pragmash.errors import Interrupted, StepError
from pragmash.language.parser import parse_statement
from pragmash.ui.render import use_colour
from pragmash.ui.repl.helptext import error_help, statement_help
from pragmash.ui.step_printer import StepPrinter

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("no_pager")]

LANGUAGE = Path(__file__).resolve().parents[2] / "docs" / "language.md"


def test_help_boot_and_wait_come_from_the_language_reference(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    boot = d.type("help boot")
    assert boot.startswith("boot TARGETS\n")
    assert "boot compute[1:] frontend" in boot  # the reference's own example
    wait = d.type("help wait")
    assert "wait DURATION" in wait and "wait TARGETS STATE [timeout DURATION]" in wait
    assert "wait frontend up timeout 10m" in wait
    # one source: a sentence of the page is what help shows
    page = LANGUAGE.read_text(encoding="utf-8")
    assert "A clock wait, like the seed's" in page and "A clock wait, like the seed's" in wait
    assert "no such command or statement" in d.type("help nonsense")
    assert d.type("help until").startswith("until [LINE]")


def test_every_statement_word_has_help() -> None:
    for word in ("allocate", "fix", "boot", "wait", "set", "param", "echo", "include", "run"):
        text = statement_help(word)
        assert text is not None and text.startswith(word), word
    driver = statement_help("ve_driver")
    assert driver is not None and "ve_driver/CMD ARGS…" in driver


def test_help_lists_every_command_whole_and_every_topic_by_name(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    listing = d.type("help")
    # the help entry is its whole first paragraph, not cut at the docstring's line break
    assert "a statement's grammar and example (`help boot`); `help error`: what the last" in (
        " ".join(listing.split())
    )
    assert ",," not in listing and "when," not in listing
    topics = " ".join(listing.split()).split("(lines, ")[1]
    assert (
        topics.startswith("statements, allocate, fix,") and "targets, built-in, errors)" in topics
    )
    # each listed topic answers
    for word in ("lines", "comments", "statements", "targets", "built-in", "variables", "errors"):
        assert "no such command" not in d.type(f"help {word}"), word


def test_help_targets_and_built_in_keep_their_tables() -> None:
    targets = statement_help("targets")
    assert targets is not None
    assert "`compute[i:j]`  computes i up to, not including, j" in targets
    assert "a node's name   that node (`calit2-compute-0`)" in targets
    variables = statement_help("built-in")
    assert variables is not None and variables == statement_help("variables")
    for name in ("$vcname", "$num_compute", "$base_path", "$temp_dir", "$vc_out", "$num_nodes"):
        assert f"`{name}`" in variables, name
    wait = statement_help("wait")
    assert wait is not None and "`port:N`" in wait  # a statement's table too


def test_a_mistyped_command_gets_did_you_mean(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    assert "unknown command 'shwo'; did you mean 'show'?" in d.type("shwo nodes")
    assert "did you mean 'next'?" in d.type("nxt")
    assert "did you mean 'show'?" in d.type("help shwo")
    # a mistyped statement is the parser's to name
    assert "unknown statement 'boto'" in d.type("boto frontend")
    assert "did you mean 'boot'?" in d.type("boto frontend")


def test_help_error_explains_the_last_failure(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    assert "no error yet" in d.type("help error")
    leave_stuck_compute(testconn)
    failed = d.type("continue")
    assert "`help error` says what this error means" in failed
    said = d.type("help error")
    assert said.startswith("ve_driver/wait: the nodes did not reach the state in time")
    assert "show node NODE --console" in said
    d.type("bot x")  # a typed mistake; the failed step's error still comes first
    assert d.type("help error").startswith("ve_driver/wait:")


def test_help_error_for_a_typed_mistake_and_others() -> None:
    assert error_help(Interrupted("stopped")).startswith("interrupted: Ctrl-C stopped")
    assert error_help(StepError("x", stage="ve_driver/boot")).startswith(
        "ve_driver/boot: the engine refused"
    )
    assert "no entry in docs/language.md" in error_help(StepError("x", stage="elsewhere"))


def test_outcomes_are_coloured_at_a_terminal_and_plain_otherwise(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe, colour=True)
    assert d.type("step").startswith("\x1b[32mok  \x1b[0m ")
    assert d.type("bot x").startswith("\x1b[1;31merror\x1b[0m: <repl>:1:1")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty(), {}) is True
    assert use_colour(Tty(), {"NO_COLOR": "1"}) is False
    assert use_colour(io.StringIO(), {}) is False


def test_step_printer_colours_each_outcome() -> None:
    (stmt,) = parse_statement("boot frontend")
    out = io.StringIO()
    printer = StepPrinter(out, out, live=False, colour=True)
    printer(StepFinished(0, stmt, "done", 0.1))
    printer(StepFinished(0, stmt, "skipped", 0.1))
    printer(StepFailed(0, stmt, StepError("x", stage="s"), 0.1))
    printer(StepFailed(0, stmt, Interrupted("x"), 0.1, interrupted=True))
    marks = [line.split(" ", 1)[0] for line in out.getvalue().splitlines()]
    assert marks == [
        "\x1b[32mok",
        "\x1b[33mskip\x1b[0m",
        "\x1b[1;31mFAIL\x1b[0m",
        "\x1b[35mINTR\x1b[0m",
    ]


def test_until_tbreak_and_display(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    interp = d.run.interpreter
    d.type("display $num_nodes")
    d.type("display ${vcname}-x")
    said = d.type("until 3")
    assert interp.pc == 2 and str(interp.status) == "paused"  # stopped before line 3
    assert "1: $num_nodes = 3" in said and "2: ${vcname}-x = calit2-x" in said
    assert "until 'x'" in d.type("until x")

    assert "temporary breakpoint set" in d.type("tbreak 5")
    d.type("continue")
    assert interp.pc == 4 and not interp.breakpoints  # hit once, then gone
    d.type("undisplay 1")
    said = d.type("step")
    assert "$num_nodes" not in said and "calit2-x" in said
    assert "nothing is displayed" in (d.type("undisplay"), d.type("display"))[1]
