"""The nine defects a site administrator met in the REPL, one test (or more) each.

Driven through prompt_toolkit's pipe input (see repldriver), except the piped-stdin
defect, which runs the real ``pragmash repl`` process with a pipe on its stdin.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput
from support.repldriver import RECIPE, Driver, leave_stuck_compute

from pragmash.errors import UserError
from pragmash.ui.repl.launch import open_run

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("no_pager")]


def test_1_show_node_takes_every_target_form(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")  # allocate
    d.type("step")  # boot frontend
    shown = d.type("show node frontend")
    assert shown.startswith("calit2-frontend: running on test:///default")
    assert d.type("show node compute[0]").startswith("calit2-compute-0: absent")
    both = d.type("show node compute")
    assert "calit2-compute-0: absent" in both and "calit2-compute-1: absent" in both
    assert "<name>calit2-frontend</name>" in d.type("show node frontend --xml")
    assert "compute[7] does not exist" in d.type("show node compute[7]")
    assert "unknown node 'nosuch'" in d.type("show node nosuch")


def test_2_list_past_the_end_says_so(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    said = d.type("list 99")
    assert said.startswith("error: list 99:") and "has only 6 line(s)" in said
    assert "expected a line number" in d.type("list x")
    # digits to str.isdigit but not to int(): an error, not a traceback
    assert "expected a line number" in d.type("list ²")
    assert "expected a line number" in d.type("until ²")
    assert "expected a number" in d.type("undisplay ²")
    assert "   6     echo" in d.type("list 6")


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("echo $nope", "unknown variable"),
        ("run /bin/true", "'run' is refused"),
        ('exec frontend "true"', "'exec' is refused"),
        ("boot compute[5]", "compute[5] does not exist"),
        ("bot frontend", "unknown statement 'bot'"),
        ('include "missing.prg"', "missing.prg"),
    ],
)
def test_3_a_typed_mistake_is_one_located_error_and_not_journaled(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect, typed: str, words: str
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")  # allocate: now compute[0] and compute[1] exist
    before = d.journal()
    said = d.type(typed)
    assert said.startswith("error: <repl>:1:"), said
    assert words in said and "^" in said and "nothing ran" in said
    assert "FAIL" not in said
    assert d.journal() == before


def test_3_a_typed_statement_that_fails_while_running_is_journaled(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    leave_stuck_compute(testconn)
    said = d.type("wait compute[1] running timeout 1s")
    assert said.startswith("FAIL <repl>:1:1") and "timed out" in said
    typed = [s for s in d.run.journal.steps() if s.file == "<repl>"]
    assert [(s.text, s.outcome) for s in typed] == [
        ("wait compute[1] running timeout 1s", "failed")
    ]


def test_4_show_journal_is_in_the_order_things_ran(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    time.sleep(0.01)
    d.type('echo "typed between"')
    time.sleep(0.01)
    d.type("step")
    rows = [line for line in d.type("show journal").splitlines() if line.startswith("  #")]
    assert [r.split()[0] for r in rows] == ["#1", "#7", "#2"]
    assert "typed between" in rows[1] and "boot frontend" in rows[2]


def test_5_list_marks_kind_and_temporary_breakpoints(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("break wait")
    d.type("break 2")
    d.type("tbreak 6")
    lines = d.type("list").splitlines()
    assert any(line.startswith("   3 b   wait frontend") for line in lines), lines
    assert any(line.startswith("   5 b   wait compute") for line in lines), lines
    assert any(line.startswith("   2 B   boot frontend") for line in lines), lines
    assert any(line.startswith("   6 T   echo") for line in lines), lines


def test_6_completion_knows_paused_and_the_compute_indices(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")  # allocate 2
    assert d.repl.reader is not None
    completer = d.repl.reader.completer  # type: ignore[attr-defined]

    def complete(text: str) -> list[str]:
        doc = Document(text, len(text))
        return [c.text for c in completer.get_completions(doc, CompleteEvent(True))]

    assert complete("wait frontend pa") == ["paused"]
    assert complete("boot compute[") == ["compute[0]", "compute[1]", "compute[1:]"]
    assert complete("show node compute[") == ["compute[0]", "compute[1]", "compute[1:]"]


def test_7_quit_on_the_demo_engine_does_not_send_you_to_shutdown(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    d.type("step")
    pipe.send_text("quit\r")
    assert not d.repl.read_and_run()
    said = d.out.getvalue()
    assert "still running: calit2-frontend; they end with this process" in said
    assert "pragmash shutdown" not in said


def test_8_piped_input_prints_each_prompt_once(tmp_path: Path) -> None:
    recipe = tmp_path / "cluster.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    pragmash = Path(sys.executable).with_name("pragmash")
    done = subprocess.run(
        [str(pragmash), "repl", str(recipe), "--vcname", "calit2"],
        input="where\nstep\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "not a terminal" not in done.stderr
    lines = done.stdout.splitlines()
    prompts = [line for line in lines if "(pragmash)" in line]
    assert prompts == ["(pragmash) where", "(pragmash) step", "(pragmash) quit"]
    assert all(line.count("(pragmash)") <= 1 for line in lines)
    assert "\r" not in done.stdout and "\x1b" not in done.stdout


def test_9_toolbar_cuts_with_an_ellipsis_and_has_the_state_colour(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    leave_stuck_compute(testconn)
    d.type("continue")
    assert str(d.run.interpreter.status) == "failed"
    (fragment,) = d.repl.toolbar()
    style, text = fragment[0], fragment[1]
    assert style == "class:toolbar.failed"
    assert len(text) == 80 and text.endswith("…")  # DummyOutput is 80 columns wide


def test_9_keys_typed_during_a_step_do_not_echo(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    leave_stuck_compute(testconn)
    d.type("step")  # boot frontend
    d.type("step")  # wait frontend
    d.type("step")  # boot compute: compute 1 stays paused

    def typing_while_waiting(seconds: float) -> None:
        pipe.send_text("xyz")  # taken by the live view, not left for the next prompt
        time.sleep(0.3)

    d.run.prepared.runtime.sleep = typing_while_waiting
    d.type("step")
    said = d.type("where")
    assert said.startswith("calit2: run"), said
    assert "xyz" not in d.out.getvalue()


def test_9_one_statement_is_not_statements(tmp_path: Path, pipe: PipeInput) -> None:
    (tmp_path / "one.prg").write_text('echo "one"\n', encoding="utf-8")
    recipe = tmp_path / "cluster.prg"
    recipe.write_text('include "one.prg"\n', encoding="utf-8")
    d = Driver(recipe, pipe)
    assert "1 statement from one.prg" in d.type("step")
    d.type("continue")
    assert "run to its end (2 steps)" in d.out.getvalue()


def test_9_attach_to_an_unknown_vc_says_no_such_vc() -> None:
    with pytest.raises(UserError, match="no such VC 'nosuchvc'"):
        open_run(["--attach", "nosuchvc"], io.StringIO())


def test_exec_is_a_step_like_any_other(
    tmp_path: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    """``exec`` steps, fails on a node not running, and ``retry`` runs it again."""
    recipe = tmp_path / "inside.prg"
    recipe.write_text('allocate 1\nboot frontend\nexec all "rocks sync config" timeout 1m\n')
    d = Driver(recipe, pipe, allow_run=True)
    d.type("step")
    d.type("step")
    failed = d.type("step")
    assert "FAIL" in failed and "calit2-compute-0 (absent): not running" in failed
    assert "exec" in d.type("help error")
    d.type("boot compute")
    again = d.type("retry")
    assert "skip" in again and "no guest runs rocks on calit2-frontend, calit2-compute-0" in again
    assert 'exec frontend "rocks sync config" timeout 2m' in d.type("help exec")
