"""How the front ends show a run: one line per step, a live status line for long work.

Only front ends print; this module is the printer both the CLI and the REPL use. It
writes step lines to ``out`` and transient progress to ``err`` — on a terminal as a
status line that redraws in place, elsewhere as an occasional plain line, never
silence. Outcome words are coloured by meaning on a terminal (see :func:`use_colour`).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO, cast

from pragmash import outcomes
from pragmash.engine.run.events import (
    Event,
    Output,
    Progress,
    StepFailed,
    StepFinished,
    StepStarted,
)
from pragmash.errors import PragmashError, RecipeError, RecipeErrors, Span, StepError
from pragmash.language.ast import Statement
from pragmash.language.program import FlatStep
from pragmash.textsafe import printable, printable_text

# SGR colours by meaning: done is green, skipped yellow, failed red, interrupted magenta
OUTCOME_COLOURS = {"ok": "32", "skip": "33", "FAIL": "1;31", "INTR": "35", "error": "1;31"}


def use_colour(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only for a person at a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if environ.get("NO_COLOR", "") != "":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, word: str, colour: bool) -> str:
    """``text`` in the colour that ``word`` (``ok``, ``FAIL``, …) stands for, when wanted."""
    code = OUTCOME_COLOURS.get(word)
    if not colour or code is None:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def write_painted(stream: TextIO, text: str, word: str, colour: bool) -> None:
    """Write ``text`` in ``word``'s colour; the colour codes bypass the stream's escaping."""
    if colour:
        raw = unescaped(stream)
        raw.flush()
        raw.write(paint(text, word, True))
    else:
        stream.write(text)


def plural(count: int, word: str) -> str:
    """``1 step``, ``2 steps``: a count with its noun, as people write it."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def json_dump(data: object, out: TextIO) -> None:
    """``--json`` output: indented, keys sorted, so it diffs and greps well."""
    out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def location(file: str, line: int, col: int) -> str:
    """``recipes/rocks6.prg:3:1`` with the path shortened where it helps."""
    try:
        rel = Path(file).resolve().relative_to(Path.cwd())
        shown = str(rel)
    except ValueError:
        shown = file
    return f"{shown}:{line}:{col}"


#: The step table's columns: where a step is and its statement, at least this wide ...
WHERE_WIDTH, TEXT_WIDTH = 24, 36
#: ... and at most this wide; a longer location or statement is shortened.
MAX_WHERE_WIDTH, MAX_TEXT_WIDTH = 44, 52


def _where(span: Span) -> str:
    return location(span.file, span.line, span.column)


def ellipsize_start(text: str, width: int) -> str:
    """``…/common/boot.prg:3:1``: the end of a location is what tells it apart."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def ellipsize(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, with an ellipsis where it was cut (at the end:
    ``wait frontend up timeout $fronten…``, as a statement reads from its start)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class PrintableStream(io.TextIOBase):
    """A text stream that shows control characters escaped instead of obeyed.

    The front ends print through it, so no text a user or a guest supplied (a recipe
    word, a --set value, a path from the site config, a journaled message) can
    retitle or reprogram the terminal, wherever it is shown. The front ends' own
    terminal control (the live status line) goes to :func:`unescaped`.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.unescaped = stream

    def write(self, text: str) -> int:
        self.unescaped.write(printable_text(text))
        return len(text)

    def flush(self) -> None:
        self.unescaped.flush()

    def isatty(self) -> bool:
        return self.unescaped.isatty()

    def writable(self) -> bool:
        return True


def printable_stream(stream: TextIO) -> TextIO:
    """``stream`` wrapped in a :class:`PrintableStream` (once)."""
    if isinstance(stream, PrintableStream):
        return stream
    return cast(TextIO, PrintableStream(stream))


def unescaped(stream: TextIO) -> TextIO:
    """The stream under a PrintableStream, for the front end's own control sequences."""
    inner = getattr(stream, "unescaped", stream)
    return cast(TextIO, inner)


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


def render_error(error: PragmashError) -> str:
    """An error as the user sees it: the message, where, the tool's own words."""
    if isinstance(error, RecipeErrors) and len(error.problems) > 1:
        shown = "\n".join("error: " + p.render() for p in error.problems)
        return f"{shown}\n{plural(len(error.problems), 'problem')} in the recipe"
    if isinstance(error, RecipeError):
        return "error: " + error.render()
    text = f"error: {error.message}"
    if isinstance(error, StepError):
        text = f"error: {error.stage}: {error.message}"
        if error.output_tail:
            text += "\n  last output:\n" + "\n".join(f"    | {line}" for line in error.output_tail)
    if error.hint:
        text += f"\n{error.hint}"
    return text
