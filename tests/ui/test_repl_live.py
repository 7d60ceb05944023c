"""The live per-node view, ``watch nodes`` and the pager, through prompt_toolkit's pipe input.

The REPL is given a PipeInput and a DummyOutput (40 rows, 80 columns), so it behaves as
at a terminal: steps run under the live view (a prompt_toolkit application in a thread
of its own), long output goes to the built-in pager. Keys are typed into the pipe
while those applications run.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from support.repldriver import Driver, leave_stuck_compute

from pragmash.ui.render import ellipsize
from pragmash.ui.repl.live import LiveView
from pragmash.ui.repl.pager import Pager, page

pytestmark = pytest.mark.libvirt


def _to_the_compute_wait(d: Driver, conn: libvirt.virConnect) -> None:
    d.type("step")  # allocate
    leave_stuck_compute(conn)
    d.type("step")  # boot frontend
    d.type("step")  # wait frontend
    d.type("step")  # boot compute: compute 1 stays paused


def test_the_wait_shows_each_node_live(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    _to_the_compute_wait(d, testconn)
    seen: list[tuple[str, int]] = []

    def look_while_waiting(seconds: float) -> None:
        view = d.repl.live
        assert view is not None and view.active
        before = view.renders
        time.sleep(0.7)  # the view redraws itself every 0.5 s
        seen.append((view.text(), view.renders - before))

    d.run.prepared.runtime.sleep = look_while_waiting
    said = d.type("step")
    assert said.startswith("FAIL"), said  # the view is gone; its lines are printed after it
    text, drawn = seen[0]
    assert drawn >= 1  # the application drew the view while the step ran, not only our look
    lines = text.splitlines()
    assert lines[0].startswith("running: wait compute running timeout 1s")
    compute0 = next(line for line in lines if "calit2-compute-0" in line)
    compute1 = next(line for line in lines if "calit2-compute-1" in line)
    assert "✓" in compute0 and "running" in compute0  # there
    assert "…" in compute1 and "paused" in compute1  # still waited for
    assert d.repl.live is None  # and the view is closed once the step ends


def test_the_boot_shows_each_node_live(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    views: list[LiveView] = []
    original = d.repl.on_event

    def keep_view(event: object) -> None:
        if d.repl.live is not None and d.repl.live not in views:
            views.append(d.repl.live)
        original(event)  # type: ignore[arg-type]

    d.repl.interp.set_event_sink(keep_view)
    said = d.type("step")  # boot frontend
    assert said.startswith("ok ") and "started calit2-frontend" in said
    text = views[0].text()
    assert "✓ calit2-frontend" in text and "running" in text and "calit2-frontend started" in text


def test_ctrl_c_in_the_live_view_interrupts_the_step(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    _to_the_compute_wait(d, testconn)

    def press_ctrl_c(seconds: float) -> None:
        pipe.send_text("\x03")  # the view's Ctrl-C binding interrupts the main thread
        for _ in range(100):
            time.sleep(0.05)

    d.run.prepared.runtime.sleep = press_ctrl_c
    said = d.type("step")
    assert said.startswith("INTR"), said
    assert str(d.run.interpreter.status) == "interrupted"
    assert d.journal()[4] == "interrupted"
    assert "calit2: run" in d.type("where")  # the REPL goes on


def test_watch_nodes_redraws_until_a_key(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    d.type("step")
    timer = threading.Timer(1.5, pipe.send_text, ["q"])
    timer.start()
    started = time.monotonic()
    try:
        said = d.type("watch nodes")
    finally:
        timer.cancel()
    assert time.monotonic() - started >= 1.0  # it stayed until the key came
    assert "calit2-frontend" in said and "running" in said
    assert "calit2-compute-1" in said and "absent" in said
    assert "expected `watch nodes`" in d.type("watch x")


def test_watch_without_a_terminal_shows_the_nodes_once(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect
) -> None:
    d = Driver(recipe, pipe)
    d.type("step")
    d.repl.read_plainly(io.StringIO("watch nodes\n"))
    assert d.repl.read_and_run()
    said = d.out.getvalue()
    assert "not at a terminal" in said and "calit2-compute-0" in said


def test_the_journal_is_paged_when_longer_than_the_window(
    recipe: Path, pipe: PipeInput, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAGER", raising=False)
    d = Driver(recipe, pipe)
    d.type("; ".join(f"echo line{i}" for i in range(50)))
    timer = threading.Timer(1.0, pipe.send_text, [" q"])
    timer.start()
    try:
        said = d.type("show journal")
    finally:
        timer.cancel()
    assert "line30" not in said  # shown in the pager, not left in the scrollback
    monkeypatch.setenv("PAGER", "cat")  # PAGER=cat: no pager, as git does
    assert "line30" in d.type("show journal")


def test_the_pager_pages_and_quits() -> None:
    text = "\n".join(f"row {i}" for i in range(100))
    with create_pipe_input() as inp:
        pager = Pager(text, inp, DummyOutput())
        inp.send_text(" j")  # a page (39 rows under the status line) and a line
        inp.send_text("q")
        pager.run()
        assert pager.top == 40
        assert pager._status()[0][1].startswith(" lines 41-79 of 100")
    with create_pipe_input() as inp:
        pager = Pager(text, inp, DummyOutput())
        inp.send_text("Gbq")
        pager.run()
        assert pager.top == 100 - 39 - 39


def test_page_respects_pager_and_short_text(tmp_path: Path) -> None:
    shown: list[str] = []
    with create_pipe_input() as inp:
        page("short\ntext\n", inp, DummyOutput(), fallback=shown.append, environ={})
        assert shown == ["short\ntext"]  # fits the window: printed as is
        long = "\n".join(str(i) for i in range(200))
        page(long, inp, DummyOutput(), fallback=shown.append, environ={"PAGER": "cat"})
        assert shown[-1] == long
        sink = tmp_path / "paged"
        pager = f"tee {sink}"  # a $PAGER with arguments, run without a shell
        page(long, inp, DummyOutput(), fallback=shown.append, environ={"PAGER": pager})
        assert sink.read_text() == long and len(shown) == 2


def test_ellipsize() -> None:
    assert ellipsize("abcdef", 4) == "abc…"
    assert ellipsize("abc", 4) == "abc"
