"""How the front ends show a run: one line per step, a live status line for long work.

Only front ends print; this is the printer both the CLI and the REPL use. It writes
step lines to ``out`` and transient progress to ``err`` — on a terminal as a status
line that redraws in place, elsewhere as an occasional plain line, never silence.
Outcome words are coloured by meaning (:func:`pragmash.ui.render.use_colour`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from pragmash import outcomes
from pragmash.engine.run.events import (
    Event,
    Output,
    Progress,
    StepFailed,
    StepFinished,
    StepStarted,
)
from pragmash.errors import Span
from pragmash.language.ast import Statement
from pragmash.language.program import FlatStep
from pragmash.textsafe import printable
from pragmash.ui.render import (
    ellipsize,
    ellipsize_start,
    location,
    unescaped,
    use_colour,
    write_painted,
)

#: The step table's columns: where a step is and its statement, at least this wide ...
WHERE_WIDTH, TEXT_WIDTH = 24, 36
#: ... and at most this wide; a longer location or statement is shortened.
MAX_WHERE_WIDTH, MAX_TEXT_WIDTH = 44, 52


def _where(span: Span) -> str:
    return location(span.file, span.line, span.column)


class StepPrinter:
    """Turns interpreter events into lines for people."""

    def __init__(
        self,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        *,
        live: bool | None = None,
        colour: bool | None = None,
    ) -> None:
        self.out = out
        self.err = err
        self.live = err.isatty() if live is None else live
        self.colour = use_colour(out) if colour is None else colour
        self._status_shown = False
        self._step_started = time.monotonic()
        self._last_plain = self._step_started
        self.where_width, self.text_width = WHERE_WIDTH, TEXT_WIDTH

    def size_to(self, steps: Sequence[FlatStep]) -> None:
        """Size the location and statement columns to the recipe's own steps.

        Up to a cap: a long include path or statement makes its column wider (the
        table stays a table), and one longer than the cap is shortened in the middle
        of the path (or at the end of the statement) rather than push the columns on
        its line out of line with the others.
        """
        wheres = [len(_where(s.statement.span)) for s in steps]
        texts = [len(s.statement.text) for s in steps]
        self.where_width = max(WHERE_WIDTH, min(max(wheres, default=0), MAX_WHERE_WIDTH))
        self.text_width = max(TEXT_WIDTH, min(max(texts, default=0), MAX_TEXT_WIDTH))

    def _row(self, statement: Statement) -> str:
        where = ellipsize_start(_where(statement.span), self.where_width)
        text = ellipsize(statement.text, self.text_width)
        return f" {where:<{self.where_width}} {text:<{self.text_width}} "

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._step_started = time.monotonic()
            self._last_plain = self._step_started
            return
        if isinstance(event, Progress):
            self._progress(event)
            return
        if not isinstance(event, Output | StepFinished | StepFailed):
            return  # e.g. NodeProgress: for live views, not for a log of lines
        self.clear_status()
        if isinstance(event, Output):
            self.out.write(f"    {event.text}\n")
        elif isinstance(event, StepFinished):
            self._mark("ok" if event.outcome == outcomes.DONE else "skip")
            msg = f"  {event.message}" if event.message else ""
            self.out.write(f"{self._row(event.statement)}{event.duration:6.2f}s{msg}\n")
        elif isinstance(event, StepFailed):
            self._mark("INTR" if event.interrupted else "FAIL")
            self.out.write(f"{self._row(event.statement)}{event.duration:6.2f}s\n")
        self.out.flush()

    def _mark(self, word: str) -> None:
        """The outcome word, padded, in its colour: our own control sequence, written raw."""
        write_painted(self.out, f"{word:<4}", word, self.colour)

    def _progress(self, event: Progress) -> None:
        if event.total:
            frac = max(0.0, min(1.0, event.done / event.total))
            bar = "#" * int(frac * 20)
            text = f"  [{bar:<20}] {frac * 100:5.1f}%  {event.label}"
        else:
            text = f"  ... {event.label}"
        if self.live:
            raw = unescaped(self.err)
            raw.write("\r\x1b[2K" + printable(text)[:120])
            raw.flush()
            self._status_shown = True
        elif time.monotonic() - self._last_plain > 10:
            self._last_plain = time.monotonic()
            self.err.write(text + "\n")
            self.err.flush()

    def clear_status(self) -> None:
        """Erase the live status line, so a line written next starts clean."""
        if self._status_shown:
            raw = unescaped(self.err)
            raw.write("\r\x1b[2K")
            raw.flush()
            self._status_shown = False
