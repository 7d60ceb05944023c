"""Where an ``include`` finds its file, and how a cycle of includes is refused.

An include path is looked up beside the including file, then on the site's recipe
folders (the search path), then among the bundled recipes, so a site can override
a bundled piece by name. Each file is identified by its resolved path, so the same
file reached two ways is still recognised as a cycle.

An include may only reach files inside the run's recipe folder tree (the folder of
the recipe given on the command line, and below), the site's recipe folders and the
bundled recipes, checked after symbolic links are resolved: ``include
"../../../../etc/shadow"`` is refused before the file is read, so no line of it can
show up in an error. And includes nest at most :data:`MAX_INCLUDE_DEPTH` deep, so a
runaway chain is an error naming the chain, not a recursion traceback.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

from pragmash.errors import Span
from pragmash.language.sources import SourceText, read_utf8

#: (identity, display name) of each file being included, outermost first.
Chain = tuple[tuple[str, str], ...]

#: How many files deep includes may nest (the recipe itself is the first).
MAX_INCLUDE_DEPTH = 20


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


def check_depth(src: SourceText, chain: Chain, path: str, span: Span) -> None:
    """Refuse an include that would nest deeper than MAX_INCLUDE_DEPTH files."""
    if len(chain) >= MAX_INCLUDE_DEPTH:
        names = [name for _, name in chain]
        raise src.error(
            f"includes nest deeper than {MAX_INCLUDE_DEPTH} files: " + " -> ".join([*names, path]),
            span,
        )


def include_roots(top_file: str, search_path: Sequence[Path]) -> list[Path]:
    """The folders an include may reach into: the recipe's tree, the site's, the bundled."""
    roots = [Path(top_file).parent.resolve(), *(Path(p).resolve() for p in search_path)]
    bundled = importlib.resources.files("pragmash.recipes")
    if isinstance(bundled, Path):
        roots.append(bundled.resolve())
    return roots


def _inside(src: SourceText, path: str, candidate: Path, roots: Sequence[Path], span: Span) -> None:
    """Refuse a found file outside every root, before it is read."""
    real = candidate.resolve()
    if any(real.is_relative_to(root) for root in roots):
        return
    raise src.error(
        f"include '{path}' is refused: it is {real}, outside the folders includes may come "
        f"from ({', '.join(str(root) for root in roots)})",
        span,
        hint="an include names a recipe beside the including one (or below it), in the "
        "site's [recipes] folders, or among the bundled recipes",
    )


def read_include(
    src: SourceText, path: str, span: Span, search_path: Sequence[Path], roots: Sequence[Path]
) -> tuple[str, str]:
    """Find ``path`` within ``roots`` and read it: (the name spans will use, its text)."""
    folders = [Path(src.file).parent, *search_path]
    try:
        for folder in folders:
            candidate = folder / path
            if candidate.is_file():
                _inside(src, path, candidate, roots, span)
                return str(candidate), read_utf8(candidate)
        bundled = importlib.resources.files("pragmash.recipes").joinpath(path)
        if bundled.is_file():
            if isinstance(bundled, Path):
                _inside(src, path, bundled, roots, span)
            return str(bundled), bundled.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise src.error(f"cannot read the included file '{path}': {reason(exc)}", span) from None
    looked = ", ".join(str(folder) for folder in folders)
    raise src.error(
        f"cannot find the included file '{path}' (looked in {looked} and the bundled recipes)",
        span,
    )
