"""The REPL driven without a terminal: pipe input, DummyOutput, the demo site on test:///default.

Each test types commands one at a time and then checks the run itself (the
interpreter's program counter and status, the journal in the ledger, the domains
in libvirt), not the screen. Failures are made the way a site gets them: a domain
left behind under a compute's name, paused, on this process's shared
test:///default, so ``boot`` finds it "already paused" and the wait for it times out;
or a compute template in (a copy of) the repository that the engine refuses, so
``boot compute`` itself fails until the template is fixed and ``reload``-ed.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput
from prompt_toolkit.output import DummyOutput
from support.repldriver import RECIPE, Driver, domain_state, leave_stuck_compute

import pragmash
from pragmash.engine.run import session
from pragmash.store.journal import last_run, lock_holder
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.ui.repl.debugger import Repl
from pragmash.ui.repl.launch import open_run

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("no_pager")]


def test_break_step_fail_fix_retry_continue(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    interp = d.run.interpreter
    assert interp.pc == 0 and str(interp.status) == "ready"

    d.type("break 4")
    assert interp.breakpoints == {(str(recipe), 4)}

    d.type("continue")
    assert interp.pc == 3 and str(interp.status) == "paused"
    assert d.journal() == {0: "done", 1: "done", 2: "done"}
    assert domain_state(testconn, "calit2-frontend") == "running"
    assert domain_state(testconn, "calit2-compute-0") == "absent"

    shown = d.type("show nodes")
    assert interp.pc == 3
    assert "calit2-compute-1" in shown and "absent" in shown

    leave_stuck_compute(testconn)  # the compute "hangs"

    booted = d.type("step")
    assert interp.pc == 4 and str(interp.status) == "paused"
    assert d.journal()[3] == "done"
    # the stale domain is named, not reported as started
    assert "started calit2-compute-0; calit2-compute-1 already paused" in booted
    assert domain_state(testconn, "calit2-compute-0") == "running"
    assert domain_state(testconn, "calit2-compute-1") == "paused"

    failed = d.type("step")
    assert interp.pc == 4 and str(interp.status) == "failed"
    assert interp.last_error is not None and "calit2-compute-1" in interp.last_error.message
    rows = {s.idx: s for s in d.run.journal.steps()}
    assert rows[4].outcome == "failed" and rows[4].stage == "ve_driver/wait"
    assert "retry" in failed

    node = d.type("show node calit2-compute-1")
    assert "paused" in node and "show node calit2-compute-1 --xml" in node
    assert (
        "up when: the QEMU guest agent answers, or a login prompt on the serial console "
        "(chosen by the distro driver rocks6_client)" in node
    )
    assert "<name>calit2-compute-1</name>" in d.type("show node compute[1] --xml")
    assert interp.pc == 4 and str(interp.status) == "failed"

    # remove the cause with recipe statements typed at the prompt: same run, same leases
    d.type("ve_driver/destroy compute[1]")
    assert domain_state(testconn, "calit2-compute-1") == "absent"
    assert interp.pc == 4 and str(interp.status) == "failed"
    d.type("boot compute[1]")
    assert domain_state(testconn, "calit2-compute-1") == "running"
    typed = {s.idx: (s.text, s.outcome) for s in d.run.journal.steps() if s.file == "<repl>"}
    assert sorted(typed.values()) == [
        ("boot compute[1]", "done"),
        ("ve_driver/destroy compute[1]", "done"),
    ]
    assert min(typed) >= len(interp.steps)

    d.type("retry")
    assert interp.pc == 5 and str(interp.status) == "paused"
    assert d.journal()[4] == "done"

    end = d.type("continue")
    assert interp.finished and str(interp.status) == "finished"
    assert "calit2 is up" in end
    assert [d.journal()[i] for i in range(len(interp.steps))] == ["done"] * 6

    pipe.send_text("quit\r")
    assert not d.repl.read_and_run()
    ledger = d.run.prepared.ledger
    record = last_run(ledger, "calit2")
    assert record is not None and record.outcome == "finished"
    assert lock_holder(ledger, "calit2") is None


def test_typo_gets_a_located_error_and_the_repl_goes_on(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    shown = d.type("boot frontend via")
    assert shown.startswith("error: <repl>:1:")
    assert "boot frontend via" in shown and "^" in shown
    assert d.run.interpreter.pc == 0 and str(d.run.interpreter.status) == "ready"
    assert d.journal() == {}

    d.type("step")
    assert d.run.interpreter.pc == 1 and d.journal()[0] == "done"

    shown = d.type("wait frontnd up")  # a node name the run does not know: a runtime check
    assert "<repl>:1:6" in shown and "unknown node 'frontnd'" in shown
    assert d.run.interpreter.pc == 1 and str(d.run.interpreter.status) == "paused"


def test_bad_commands_are_explained(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    assert "no statement starts at line 7" in d.type("break 7")
    assert "statement kind" in d.type("break nonsense")
    assert d.run.interpreter.breakpoints == set()
    assert "nothing to retry" in d.type("retry")
    assert "expected one of vc-out" in d.type("show everything")
    assert "no nodes yet" in d.type("show node calit2-compute-9")
    d.type("break boot")
    assert d.run.interpreter.break_kinds == {"boot"}
    d.type("clear")
    assert d.run.interpreter.break_kinds == set()


def test_list_where_vars_and_help(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("break 4")
    d.type("step")
    listing = d.type("list")
    lines = listing.splitlines()
    assert any(line.startswith("   2  -> boot frontend") for line in lines), listing
    assert any(line.startswith("   4 B   boot compute") for line in lines), listing
    assert any("allocate 2" in line and line.rstrip().endswith("done") for line in lines)
    assert "> " in d.type("where") and "step 2 of 6" in d.out.getvalue()
    assert "$vcname" in d.type("show vars")
    assert d.type("help retry").startswith("retry: run the failed")
    assert "137.110.119.222" in d.type("show leases")
    assert "137.110.119.222" in d.type("show vc-out")


def test_skip_marks_the_step_skipped(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    d.type("skip")
    assert d.run.interpreter.pc == 2
    assert d.journal()[1] == "skipped"
    assert domain_state(testconn, "calit2-frontend") == "absent"


def test_ctrl_c_in_a_long_step_marks_it_interrupted(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")  # allocate

    def ctrl_c(_seconds: float) -> None:
        raise KeyboardInterrupt

    d.run.prepared.runtime.sleep = ctrl_c  # the wait below sleeps: Ctrl-C arrives there
    d.type("step")  # boot frontend
    # paused, the frontend is not up yet but may still be: the wait has to sleep
    testconn.lookupByName("calit2-frontend").suspend()
    d.type("step")
    interp = d.run.interpreter
    assert str(interp.status) == "interrupted" and interp.pc == 2
    assert d.journal()[2] == "interrupted"
    d.type("where")  # the REPL is still there


def test_ctrl_c_at_the_prompt_and_ctrl_d_leaves(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    pipe.send_text("boot fr\x03")
    assert d.repl.read_and_run()  # Ctrl-C drops the line, the REPL goes on
    assert d.run.interpreter.pc == 1 and domain_state(testconn, "calit2-frontend") == "absent"
    pipe.send_text("\x04")
    assert not d.repl.read_and_run()
    ledger = d.run.prepared.ledger
    record = last_run(ledger, "calit2")
    assert record is not None and record.outcome == "interrupted"
    assert lock_holder(ledger, "calit2") is None
    assert "pragmash repl --attach calit2" in d.out.getvalue()


def test_attach_opens_the_failed_step(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect, tmp_path: Path
) -> None:
    d = Driver(recipe, pipe)
    leave_stuck_compute(testconn)
    d.type("continue")
    assert str(d.run.interpreter.status) == "failed" and d.run.interpreter.pc == 4
    pipe.send_text("quit\r")
    assert not d.repl.read_and_run()

    err = io.StringIO()
    run = open_run(["--attach", "calit2"], err)
    out = io.StringIO()
    repl = Repl(run, out)
    assert run.interpreter.pc == 4 and str(run.interpreter.status) == "failed"
    assert run.interpreter.last_error is not None
    assert "calit2-compute-1" in run.interpreter.last_error.message
    assert run.interpreter.outcomes[3] == "done"
    assert run.prepared.runtime.allocation is not None  # adopted, not allocated again

    testconn.lookupByName("calit2-compute-1").resume()
    repl.make_session(InMemoryHistory(), input=pipe, output=DummyOutput())
    pipe.send_text("retry\r")
    assert repl.read_and_run()
    assert run.interpreter.pc == 5 and str(run.interpreter.status) == "paused"
    pipe.send_text("c\r")
    assert repl.read_and_run()
    assert run.interpreter.finished
    pipe.send_text("q\r")
    assert not repl.read_and_run()
    record = last_run(run.prepared.ledger, "calit2")
    assert record is not None and record.outcome == "finished" and record.id == d.run.journal.run_id


def test_run_cli_break_opens_the_repl(
    recipe: Path, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("show nodes\ncontinue\nquit\n"))
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(recipe), "--vcname", "calit2", "--break", "4"], out=out, err=err)
    assert rc == 0, err.getvalue()
    assert "breakpoint at" in out.getvalue()
    site = session.open_site(None)
    record = last_run(Ledger(site), "calit2")
    assert record is not None and record.outcome == "finished"


def test_run_cli_debug_on_failure(
    recipe: Path, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    leave_stuck_compute(testconn)
    monkeypatch.setattr("sys.stdin", io.StringIO("where\nquit\n"))
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(recipe), "--vcname", "calit2", "--debug-on-failure"], out=out, err=err)
    assert rc == 3
    assert "calit2-compute-1" in out.getvalue() and "step 5 of 6" in out.getvalue()
    record = last_run(Ledger(session.open_site(None)), "calit2")
    assert record is not None and record.outcome == "failed"


def test_f11_and_f10_on_an_empty_line_step(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    pipe.send_text("\x1b[23~")  # F11: step
    assert d.repl.read_and_run()
    assert d.run.interpreter.pc == 1
    pipe.send_text("\x1b[21~")  # F10: next
    assert d.repl.read_and_run()
    assert d.run.interpreter.pc == 2 and domain_state(testconn, "calit2-frontend") == "running"


def test_reload_uses_a_template_fixed_in_the_repository(
    pipe: PipeInput, testconn: libvirt.virConnect, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    vc_in = _demo_repository(repo)
    recipe = tmp_path / "cluster.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    prep = session.prepare(
        session.RunOptions(recipe=str(recipe), vcname="calit2", base_path=str(repo))
    )
    run = session.start(prep)
    out = io.StringIO()
    repl = Repl(run, out)
    repl.make_session(InMemoryHistory(), input=pipe, output=DummyOutput())

    def type_(line: str) -> str:
        start = len(out.getvalue())
        pipe.send_text(line + "\r")
        assert repl.read_and_run()
        return out.getvalue()[start:]

    type_("step")
    type_("boot compute")

    def memory(name: str) -> int:
        return int(testconn.lookupByName(name).maxMemory())

    assert memory("calit2-compute-0") == 1048576
    assert "no template changed" in type_("reload")

    # the administrator fixes the compute template on disk while the run waits
    text = vc_in.read_text(encoding="utf-8")
    compute_at = text.index("<compute>")
    fixed = text[:compute_at] + text[compute_at:].replace(
        "<memory>1048576</memory>", "<memory>524288</memory>", 1
    )
    vc_in.write_text(fixed, encoding="utf-8")
    said = type_("reload")
    assert "the compute template changed" in said and "frontend" not in said.split(":", 1)[1]
    assert "still running with the old template: calit2-compute-0, calit2-compute-1" in said

    type_("ve_driver/destroy compute[0]")
    type_("boot compute[0]")
    assert memory("calit2-compute-0") == 524288  # the new template
    assert memory("calit2-compute-1") == 1048576  # left as it was
    held = run.prepared.runtime.allocation
    assert held is not None and run.prepared.runtime.nodes["calit2-compute-0"].macs == next(
        n.macs for n in held.nodes if n.name == "calit2-compute-0"
    )

    # a change the allocation cannot follow is refused, and nothing is reloaded
    frontend_end = fixed.index("</interface>") + len("</interface>")
    extra = "\n<interface type='bridge'><source bridge='eth9'/></interface>"
    vc_in.write_text(fixed[:frontend_end] + extra + fixed[frontend_end:], encoding="utf-8")
    said = type_("reload")
    # (refused when the vc-in.xml is read: a frontend has exactly two interfaces)
    assert "error:" in said and "has 3 <interface> element(s): expected 2" in said
    assert len(run.prepared.vcin.frontend.interfaces) == 2
    pipe.send_text("quit\r")
    assert not repl.read_and_run()


def _demo_repository(dest: Path) -> Path:
    """A copy of the demo repository that a test may break and fix; returns calit2's vc-in."""
    shutil.copytree(Path(pragmash.__file__).parent / "demo" / "repository", dest)
    return dest / "calit2" / "vc-in.xml"


def test_a_compute_boot_fails_is_fixed_in_the_repository_and_retried(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect, tmp_path: Path
) -> None:
    """The failure is in `boot compute` itself: the engine refuses the compute's domain."""
    vc_in = _demo_repository(tmp_path / "repo")
    good = vc_in.read_text(encoding="utf-8")
    compute_at = good.index("<compute>")
    broken = good[:compute_at] + good[compute_at:].replace("bus='ide'", "bus='bogus'")
    vc_in.write_text(broken, encoding="utf-8")
    d = Driver(recipe, pipe, base_path=tmp_path / "repo")
    interp = d.run.interpreter

    failed = d.type("continue")
    assert interp.pc == 3 and str(interp.status) == "failed"
    assert "boot compute" in failed and "bogus" in failed
    rows = {s.idx: s for s in d.run.journal.steps()}
    assert rows[3].outcome == "failed" and rows[3].stage == "ve_driver/boot"
    assert domain_state(testconn, "calit2-frontend") == "running"
    assert domain_state(testconn, "calit2-compute-0") == "absent"
    assert "absent" in d.type("show node calit2-compute-0")

    vc_in.write_text(good, encoding="utf-8")
    assert "the compute template changed" in d.type("reload")
    d.type("retry")
    assert interp.pc == 4 and str(interp.status) == "paused"
    assert d.journal()[3] == "done"
    assert domain_state(testconn, "calit2-compute-0") == "running"
    assert domain_state(testconn, "calit2-compute-1") == "running"
    d.type("continue")
    assert interp.finished
    assert [d.journal()[i] for i in range(len(interp.steps))] == ["done"] * 6
    record = last_run(d.run.prepared.ledger, "calit2")
    assert record is not None and record.id == d.run.journal.run_id
