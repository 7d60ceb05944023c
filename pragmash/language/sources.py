"""Recipe source text: positions into spans, and each file's lines for error displays.

Recipes are small; the text of each file parsed is remembered here (the parser
registers it) and files not seen yet are read on demand, so any error found later
(checks, run time, REPL) can show its line with a caret. :class:`SourceText` is the
parser's view of one file: it turns Lark positions into spans and spans into errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pragmash.errors import RecipeError, Span

if TYPE_CHECKING:  # lark is loaded where recipes are parsed, not by every command
    from lark import Token
    from lark.tree import Meta

_TEXTS: dict[str, str] = {}


def remember(file: str, text: str) -> None:
    """Record a recipe's text under the name its spans use."""
    _TEXTS[file] = text


def read_utf8(path: Path) -> str:
    """A recipe file's text; one that is not UTF-8 is a RecipeError at its first bad byte
    (line and column, the line shown with that byte replaced), not the codec's
    "position 18" of the whole file. OSError is the caller's to word."""
    data = path.read_bytes()
    try:
        # universal newlines, as read_text gives them: CRLF and CR are each one "\n"
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8")) + 1  # valid up to the bad byte
        shown = data[start : len(data) if end < 0 else end].decode("utf-8", "replace")
        raise RecipeError(
            f"byte 0x{data[exc.start]:02x} is not UTF-8 ({exc.reason}): a recipe is UTF-8"
            " text; save it as UTF-8",
            Span(str(path), line, column, line, column + 1),
            shown.rstrip("\r"),
        ) from None


def source_line(span: Span) -> str:
    """The line a span starts on, without its line ending ("" when unknown)."""
    text = _TEXTS.get(span.file)
    if text is None:
        try:
            text = Path(span.file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        _TEXTS[span.file] = text
    lines = text.splitlines()
    return lines[span.line - 1] if 0 < span.line <= len(lines) else ""


class SourceText:
    """A recipe's text with the helpers that turn positions into spans and errors."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.lines = [line.rstrip("\r") for line in text.split("\n")]

    def line(self, number: int) -> str:
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return ""

    def span(
        self, line: int, column: int, end_line: int | None = None, end_column: int | None = None
    ) -> Span:
        return Span(
            self.file,
            line,
            column,
            line if end_line is None else end_line,
            column + 1 if end_column is None else end_column,
        )

    def token_span(self, token: Token) -> Span:
        return self.span(
            position(token.line), position(token.column), token.end_line, token.end_column
        )

    def meta_span(self, meta: Meta) -> Span:
        return self.span(meta.line, meta.column, meta.end_line, meta.end_column)

    def error(self, message: str, span: Span, *, hint: str | None = None) -> RecipeError:
        return RecipeError(message, span, self.line(span.line), hint=hint)

    def end_span(self) -> Span:
        """Just past the last character: where an unfinished statement ran out."""
        number = len(self.lines)
        while number > 1 and not self.lines[number - 1].strip():
            number -= 1
        column = len(self.lines[number - 1]) + 1
        return self.span(number, column)


def position(value: int | None) -> int:
    """A Lark line or column, which Lark types as optional (1 when missing)."""
    return 1 if value is None else value
