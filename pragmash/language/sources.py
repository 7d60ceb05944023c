"""Recipe source text by file name, so any error can show its line with a caret.

Recipes are small; the text of each file parsed is remembered here (the parser
registers it) and files not seen yet are read on demand.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.errors import Span

_TEXTS: dict[str, str] = {}


def remember(file: str, text: str) -> None:
    """Record a recipe's text under the name its spans use."""
    _TEXTS[file] = text


def source_line(span: Span) -> str:
    """The line a span starts on, without its line ending ("" when unknown)."""
    text = _TEXTS.get(span.file)
    if text is None:
        try:
            text = Path(span.file).read_text(encoding="utf-8")
        except OSError:
            return ""
        _TEXTS[span.file] = text
    lines = text.splitlines()
    return lines[span.line - 1] if 0 < span.line <= len(lines) else ""
