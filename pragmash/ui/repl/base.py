"""What every REPL command shares: the run, where output goes, and how a step is shown.

The REPL is split by concern into mixins over this base (stepping, breakpoints,
looking, help), put together in :mod:`pragmash.ui.repl.debugger`. All output goes
through :meth:`ReplBase.message` and :meth:`ReplBase.error`; long output through
:meth:`ReplBase.page`. A step's events are printed by the same
:class:`~pragmash.ui.step_printer.StepPrinter` the CLI uses; while a step runs at a
terminal a :class:`~pragmash.ui.repl.live.LiveView` shows it instead, and its lines
are printed once it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output as PtOutput

from pragmash import outcomes
from pragmash.engine.run.debug import DebugRun
from pragmash.engine.run.events import Event, StepFailed, StepFinished, StepStarted
from pragmash.engine.run.interpreter import StopReason
from pragmash.engine.run.session import Run
from pragmash.errors import PragmashError
from pragmash.language.program import FlatStep
from pragmash.ui.render import location, printable_stream, render_error, use_colour, write_painted
from pragmash.ui.repl.live import LiveView
from pragmash.ui.repl.pager import page
from pragmash.ui.step_printer import StepPrinter

Terminal = tuple["Input", "PtOutput"]


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
        self.printer.size_to(self.interp.steps)
        self.terminal: Terminal | None = None  # set when a person is at a terminal
        self.live: LiveView | None = None
        self._live_wanted = False
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
        """Interpreter events: to a live view while a step runs at a terminal, else as lines.

        The view lives for one step: it starts with the step and, when the step ends,
        is erased and the step's lines are printed, so a ``continue`` over many steps
        leaves one line per step in the scrollback as it goes.
        """
        if isinstance(event, StepStarted) and self._live_wanted and self.live is None:
            assert self.terminal is not None
            self.live = LiveView(*self.terminal, colour=self.colour)
            self.live.start()
        live = self.live
        if live is None:
            self.printer(event)
            return
        live.feed(event)
        if isinstance(event, StepFinished | StepFailed):
            self._end_live()

    def _end_live(self) -> None:
        live, self.live = self.live, None
        if live is not None:
            live.stop()
            for event in live.events:
                self.printer(event)

    def running(self, action: Callable[[], StopReason]) -> StopReason:
        """Run ``action`` (a stepping call): each step under a live view at a terminal."""
        self._live_wanted = self.terminal is not None
        try:
            return action()
        finally:
            self._live_wanted = False
            self._end_live()

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
                unset = err.message.startswith("unknown variable")
                value = "(not set yet)" if unset else f"(cannot show: {err.message})"
            self.message(f"  {number}: {expr} = {value}")

    def after(self, reason: StopReason) -> None:
        """What a stop looks like: why it stopped, the error if any, displays, where."""
        if reason == "breakpoint":
            cur = self.interp.current
            assert cur is not None
            self.message(f"breakpoint at {self._loc(cur)}")
        elif reason in (outcomes.FAILED, outcomes.INTERRUPTED):
            err = self.interp.last_error
            if err is not None:
                self.error(render_error(err))
            self.message(
                "nothing was removed; look with `show node NAME`, fix the cause, then `retry` "
                "(or `skip`); `help error` says what this error means"
            )
        self.show_displays()
        self.show_current()
