"""What every REPL command shares: the run, where output goes, and how a step is shown.

The REPL is split by concern into mixins over this base (stepping, breakpoints,
looking, help), put together in :mod:`pragmash.ui.repl.debugger`. All output goes
through :meth:`ReplBase.message` and :meth:`ReplBase.error`; long output through
:meth:`ReplBase.page`. A step's events are printed by the same
:class:`~pragmash.ui.render.StepPrinter` the CLI uses; while a step runs at a
terminal a :class:`~pragmash.ui.repl.live.LiveView` shows it instead, and its lines
are printed once it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output as PtOutput

from pragmash.engine.debug import DebugRun
from pragmash.engine.events import Event
from pragmash.engine.interpreter import StopReason
from pragmash.engine.session import Run
from pragmash.errors import PragmashError
from pragmash.language.program import FlatStep
from pragmash.ui.render import (
    StepPrinter,
    location,
    printable_stream,
    render_error,
    use_colour,
    write_painted,
)
from pragmash.ui.repl.live import LiveView
from pragmash.ui.repl.pager import page

Terminal = tuple[Input, PtOutput]


class ReplBase:
    """The state every command reads: the run, the output, the terminal if there is one."""

    def __init__(
        self,
        run: Run,
        out: TextIO,
        *,
        session: PromptSession[str] | None = None,
        colour: bool | None = None,
    ) -> None:
        self.run = DebugRun(run)
        self.interp = run.interpreter
        self.out = printable_stream(out)  # user and guest text is shown, never obeyed
        self.session = session
        self.closed = False
        self.colour = use_colour(out) if colour is None else colour
        self.printer = StepPrinter(out, out, live=False, colour=self.colour)
        self.terminal: Terminal | None = None  # set when a person is at a terminal
        self.live: LiveView | None = None
        self.displays: list[str] = []
        self.interp.set_event_sink(self.on_event)

    # -- output -----------------------------------------------------------------------

    def message(self, text: str) -> None:
        """Every line the REPL shows goes through here (or :meth:`error`, :meth:`page`)."""
        self.printer.clear_status()
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, text: str) -> None:
        """A problem for the user; the REPL goes on."""
        text = text if text.startswith("error:") else f"error: {text}"
        head, sep, rest = text.partition(":")
        self.printer.clear_status()
        write_painted(self.out, head, "error", self.colour)
        self.message(sep + rest)

    def page(self, text: str) -> None:
        """Long output: through a pager at a terminal (``$PAGER``, else our own), else plain."""
        if self.terminal is None:
            self.message(text.rstrip("\n"))
            return
        page(text, *self.terminal, fallback=self.message)

    def on_event(self, event: Event) -> None:
        """Interpreter events: to the live view while one is shown, else straight to lines."""
        if self.live is not None and self.live.active:
            self.live.feed(event)
        else:
            self.printer(event)

    def running(self, action: Callable[[], StopReason]) -> StopReason:
        """Run ``action`` (a stepping call), under the live view when at a terminal."""
        if self.terminal is None:
            return action()
        self.live = LiveView(*self.terminal, colour=self.colour)
        try:
            with self.live.showing():
                result = action()
        finally:
            for event in self.live.events:
                self.printer(event)
            self.live = None
        return result

    # -- where we are -----------------------------------------------------------------

    def _loc(self, step: FlatStep) -> str:
        span = step.statement.span
        return location(span.file, span.line, span.column)

    def show_current(self) -> None:
        """``> file:line:col  statement`` for the step the program counter points at."""
        cur = self.interp.current
        if cur is None:
            total = len(self.interp.steps)
            self.message(f"the recipe has run to its end ({total} step{'s' if total != 1 else ''})")
            return
        self.message(f"> {self._loc(cur)}  {cur.statement.text}   [{self.interp.status}]")

    def show_displays(self) -> None:
        """The ``display`` expressions, at every stop (as gdb's and pdb's)."""
        for number, expr in enumerate(self.displays, 1):
            try:
                value = self.run.expand(expr)
            except PragmashError as err:
                value = f"(cannot show: {err.message})"
            self.message(f"  {number}: {expr} = {value}")

    def after(self, reason: StopReason) -> None:
        """What a stop looks like: why it stopped, the error if any, displays, where."""
        if reason == "breakpoint":
            cur = self.interp.current
            assert cur is not None
            self.message(f"breakpoint at {self._loc(cur)}")
        elif reason in ("failed", "interrupted"):
            err = self.interp.last_error
            if err is not None:
                self.error(render_error(err))
            self.message(
                "nothing was removed; look with `show node NAME`, fix the cause, then `retry` "
                "(or `skip`); `help error` says what this error means"
            )
        self.show_displays()
        self.show_current()
