"""Where an ``include`` finds its file, and how a cycle of includes is refused.

An include path is looked up beside the including file, then on the site's recipe
folders (the search path), then among the bundled recipes, so a site can override
a bundled piece by name. Each file is identified by its resolved path, so the same
file reached two ways is still recognised as a cycle.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

from pragmash.errors import Span
from pragmash.language.sources import SourceText

#: (identity, display name) of each file being included, outermost first.
Chain = tuple[tuple[str, str], ...]


def reason(exc: BaseException) -> str:
    """Why a file could not be read, in words (``no such file or directory``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def identity(file: str) -> str:
    """What makes two includes the same file (for cycle detection)."""
    path = Path(file)
    return str(path.resolve()) if path.is_file() else file


def check_cycle(src: SourceText, chain: Chain, display: str, span: Span) -> None:
    """Refuse an include of a file that is already being included."""
    seen = [ident for ident, _ in chain]
    ident = identity(display)
    if ident in seen:
        names = [name for _, name in chain[seen.index(ident) :]]
        raise src.error("include cycle: " + " -> ".join([*names, display]), span)


def read_include(
    src: SourceText, path: str, span: Span, search_path: Sequence[Path]
) -> tuple[str, str]:
    """Find ``path`` and read it: (the name spans will use, its text)."""
    folders = [Path(src.file).parent, *search_path]
    try:
        for folder in folders:
            candidate = folder / path
            if candidate.is_file():
                return str(candidate), candidate.read_text(encoding="utf-8")
        bundled = importlib.resources.files("pragmash.recipes").joinpath(path)
        if bundled.is_file():
            return str(bundled), bundled.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise src.error(f"cannot read the included file '{path}': {reason(exc)}", span) from None
    looked = ", ".join(str(folder) for folder in folders)
    raise src.error(
        f"cannot find the included file '{path}' (looked in {looked} and the bundled recipes)",
        span,
    )
