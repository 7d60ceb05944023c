"""A live per-node view that updates in place: while a step runs, and for ``watch nodes``.

"0/2 up" says nothing about *which* node is stuck or why. This view shows, for each
node a step works on, its state, the last line on its console and how long it has
taken, redrawn in place by a small prompt_toolkit application under the prompt.

While a step runs the application runs in a thread of its own and the step stays in
the main thread, so Ctrl-C still interrupts the step where it is (the view's Ctrl-C
binding raises it there) and keys typed meanwhile are taken by the view instead of
echoing as a stray line. The step's own lines (notes, ``ok``/``FAIL``) are kept and
printed once the view is gone, so the scrollback reads as it does without a view.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompt_toolkit.application import Application
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.output import Output

from pragmash import domain_states
from pragmash.engine.run.debug import NodeView
from pragmash.engine.run.events import (
    Event,
    NodeProgress,
    Progress,
    StepStarted,
)
from pragmash.engine.run.events import (
    Output as OutputEvent,
)
from pragmash.ui.render import ellipsize

# node states by meaning: where a step wants a node is green, on the way yellow, stuck red
STATE_STYLES = {
    domain_states.RUNNING: "ansigreen",
    domain_states.PAUSED: "ansired",
    domain_states.CRASHED: "ansired bold",
    domain_states.SHUT_OFF: "ansiyellow",
    domain_states.ABSENT: "ansibrightblack",
}


@dataclass
class _Row:
    state: str
    detail: str
    reached: bool
    since: float
    took: float | None = None


class LiveView:
    """The per-node table, redrawn in place until the step (or the watch) ends."""

    def __init__(self, input: Input, output: Output, *, colour: bool = True) -> None:
        self.input = input
        self.output = output
        self.colour = colour
        self.events: list[Event] = []  # the lines to print once the view is gone
        self.nodes: dict[str, _Row] = {}
        self.statement = ""
        self.progress: Progress | None = None
        self.notes: deque[str] = deque(maxlen=3)
        self.started = time.monotonic()
        self.active = False
        self.renders = 0
        self._lock = threading.Lock()
        self._app: Application[None] | None = None
        self._thread: threading.Thread | None = None

    # -- what the step says -----------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Take one interpreter event (from any thread: boots run in parallel)."""
        with self._lock:
            if isinstance(event, StepStarted):
                self.statement = event.statement.text
                self.started = time.monotonic()
            elif isinstance(event, Progress):
                self.progress = event
            elif isinstance(event, NodeProgress):
                self._node(event)
            else:
                if isinstance(event, OutputEvent):
                    self.notes.append(event.text)
                self.events.append(event)
        if self._app is not None:
            self._app.invalidate()

    def _node(self, event: NodeProgress) -> None:
        now = time.monotonic()
        row = self.nodes.get(event.node)
        if row is None:
            row = self.nodes[event.node] = _Row(event.state, event.detail, False, self.started)
        row.state, row.detail = event.state, event.detail or row.detail
        if event.reached and not row.reached:
            row.took = now - row.since
        row.reached = event.reached

    def show_views(self, views: Sequence[NodeView]) -> None:
        """Take nodes as the engine reports them now (``watch nodes``)."""
        with self._lock:
            for view in views:
                row = self.nodes.get(view.name)
                if row is None or row.state != view.state:
                    self.nodes[view.name] = _Row(
                        view.state, view.last_line, False, time.monotonic()
                    )
                else:
                    row.detail = view.last_line

    # -- drawing ----------------------------------------------------------------------

    def width(self) -> int:
        try:
            return max(20, self.output.get_size().columns)
        except Exception:  # an output that cannot say (no terminal): a usual width
            return 80

    def fragments(self) -> StyleAndTextTuples:
        """The view as styled text: a heading, one line per node, the latest notes."""
        self.renders += 1
        width = self.width()
        now = time.monotonic()
        out: StyleAndTextTuples = []
        with self._lock:
            if self.statement:
                head = f"running: {self.statement}  ({now - self.started:.0f}s)"
                if self.progress is not None:
                    head += f"  {self.progress.label}"
                out.append(("bold", ellipsize(head, width - 1) + "\n"))
            name_w = max([len(n) for n in self.nodes] + [4])
            for name, row in self.nodes.items():
                took = row.took if row.took is not None else now - row.since
                mark = "✓" if row.reached else "…"
                state_w = 9
                left = f"  {mark} {name:<{name_w}}  "
                right = f"  {took:5.0f}s  "
                room = width - 1 - len(left) - state_w - len(right)
                style = STATE_STYLES.get(row.state, "") if self.colour else ""
                out.append(("", left))
                out.append((style, f"{row.state:<{state_w}}"))
                out.append(("", right))
                out.append(("ansibrightblack" if self.colour else "", ellipsize(row.detail, room)))
                out.append(("", "\n"))
            for note in self.notes:
                out.append(
                    (
                        "ansibrightblack" if self.colour else "",
                        ellipsize(f"    {note}", width - 1) + "\n",
                    )
                )
        return out

    def text(self) -> str:
        """The view as plain text (what a test reads)."""
        return "".join(fragment[1] for fragment in self.fragments())

    def _application(self, keys: KeyBindings, refresh: float) -> Application[None]:
        from prompt_toolkit.application import Application
        from prompt_toolkit.layout import FormattedTextControl, Layout, Window

        control = FormattedTextControl(self.fragments, focusable=True, show_cursor=False)
        return Application(
            layout=Layout(Window(control, dont_extend_height=True)),
            key_bindings=keys,
            input=self.input,
            output=self.output,
            refresh_interval=refresh,
            erase_when_done=True,
        )

    # -- while a step runs ------------------------------------------------------------

    def start(self) -> None:
        """Start drawing, in a thread of its own; the caller goes on with the step."""
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.keys import Keys

        keys = KeyBindings()

        @keys.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            """Ctrl-C: interrupt the step, as it would without a view."""
            _thread.interrupt_main()

        @keys.add(Keys.Any)
        def _swallow(event: KeyPressEvent) -> None:
            """Any other key: taken, so nothing typed during a step echoes as a stray line."""

        app = self._app = self._application(keys, 0.5)
        ready = threading.Event()

        def run() -> None:
            try:
                app.run(pre_run=ready.set, handle_sigint=False, set_exception_handler=False)
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="live-view", daemon=True)
        self.active = True
        self._thread.start()
        ready.wait(5)

    def stop(self) -> None:
        """Stop drawing and erase the view (its lines are in :attr:`events`)."""
        self.active = False
        app, thread = self._app, self._thread
        if app is not None:
            self._stop(app)
        if thread is not None:
            thread.join(5)
        self._app = self._thread = None

    @staticmethod
    def _stop(app: Application[None]) -> None:
        loop = app.loop
        if loop is None or not app.is_running:
            return

        def exit_once() -> None:
            if app.is_running and not app.future.done():  # type: ignore[union-attr]
                app.exit()

        loop.call_soon_threadsafe(exit_once)

    # -- watch nodes ------------------------------------------------------------------

    def watch(self, poll: Callable[[], Sequence[NodeView]], every: float = 1.0) -> None:
        """Poll the nodes and redraw until a key is pressed (``watch nodes``)."""
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.keys import Keys
        from prompt_toolkit.layout import FormattedTextControl, Layout, Window

        keys = KeyBindings()

        @keys.add(Keys.Any)
        @keys.add("c-c")
        def _stop(event: KeyPressEvent) -> None:
            """Any key, Ctrl-C included: stop watching."""
            event.app.exit()

        last = 0.0

        def fragments() -> StyleAndTextTuples:
            nonlocal last
            if time.monotonic() - last >= every:
                last = time.monotonic()
                self.show_views(poll())
            stamp = time.strftime("%H:%M:%S")
            return [("bold", f"nodes at {stamp} (any key stops)\n"), *self.fragments()]

        app = self._application(keys, every)
        app.layout = Layout(
            Window(FormattedTextControl(fragments, focusable=True), dont_extend_height=True)
        )
        self._app = app
        try:
            app.run(handle_sigint=False)
        finally:
            self._app = None
