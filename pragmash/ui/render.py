"""What every front end prints with: escaped streams, errors, locations, JSON, colours.

Only front ends print, and they print through these: text a user or a guest supplied
is shown escaped (:class:`PrintableStream`), an error always reads the same
(:func:`render_error`), outcome words are coloured by meaning on a terminal (see
:func:`use_colour`). The step table of a run is :mod:`pragmash.ui.step_printer`'s;
this module loads nothing of the run, so ``pragmash --help`` or ``list`` does not pay
for it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO, cast

from pragmash.errors import PragmashError, RecipeError, RecipeErrors, StepError
from pragmash.textsafe import printable_text

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
