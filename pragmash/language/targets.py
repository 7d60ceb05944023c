"""Which nodes a target names: ``frontend``, ``compute``, ``compute[i]``, ``compute[i:j]``, ``all``, a name."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pragmash.driver_api import NodePlan
from pragmash.errors import RecipeError, Span
from pragmash.language.ast import Target, Word
from pragmash.language.sources import source_line

_INDEXED = re.compile(r"^compute\[(-?\d+)?(:)?(-?\d+)?\]$")


def parse_target_word(text: str, span: Span) -> Target:
    """A target written as a plain word (a driver command's argument)."""
    if text in ("frontend", "compute", "all"):
        return Target(text, span)  # type: ignore[arg-type]
    m = _INDEXED.match(text)
    if m:
        lo = int(m.group(1)) if m.group(1) else None
        hi = int(m.group(3)) if m.group(3) else None
        if m.group(2):
            return Target("compute", span, index=lo, stop=hi, is_slice=True)
        if lo is not None:
            return Target("compute", span, index=lo)
    return Target("node", span, name=text)


def word_target(word: Word) -> Target:
    """A driver call's argument as a target: read now when literal, else when its value is known."""
    literal = word.literal
    if literal is None:
        return Target("word", word.span, word=word)
    return parse_target_word(literal, word.span)


def resolve_targets(
    targets: Sequence[Target], text: Callable[[Word], str | None]
) -> tuple[Target, ...]:
    """The targets with each ``word`` target read from its value (``text`` substitutes).

    A word whose value is not known yet (``text`` gives None, as before a run) is left out.
    """
    out: list[Target] = []
    for target in targets:
        if target.kind != "word":
            out.append(target)
            continue
        assert target.word is not None
        value = text(target.word)
        if value is not None:
            out.append(parse_target_word(value, target.span))
    return tuple(out)


def describe_computes(count: int) -> str:
    if count == 0:
        return "the VC has no computes"
    if count == 1:
        return "the VC has 1 compute (compute[0])"
    return f"the VC has {count} computes (compute[0] to compute[{count - 1}])"


def select_names(targets: Sequence[Target], frontend: str, computes: Sequence[str]) -> list[str]:
    """Names of the nodes the targets select, in order, each once.

    Raises RecipeError at the target's position for an index out of range or an
    unknown node name.
    """
    chosen: list[str] = []
    for target in targets:
        names: list[str]
        if target.kind == "all":
            names = [frontend, *computes]
        elif target.kind == "frontend":
            names = [frontend]
        elif target.kind == "compute" and target.is_slice:
            names = list(computes[target.index : target.stop])
            if not names and computes:
                raise _error(
                    f"{target} selects no node: {describe_computes(len(computes))}", target
                )
        elif target.kind == "compute" and target.index is not None:
            i = target.index
            if not -len(computes) <= i < len(computes):
                raise _error(f"{target} does not exist: {describe_computes(len(computes))}", target)
            names = [computes[i]]
        elif target.kind == "compute":
            names = list(computes)
        else:
            assert target.kind == "node", f"{target} is to be resolved first (resolve_targets)"
            known = [frontend, *computes]
            if target.name not in known:
                raise _error(
                    f"unknown node '{target.name}'; nodes of this VC: {', '.join(known)}", target
                )
            names = [target.name]
        chosen += [n for n in names if n not in chosen]
    return chosen


def select_nodes(targets: Sequence[Target], nodes: Sequence[NodePlan]) -> list[NodePlan]:
    by_name = {n.name: n for n in nodes}
    frontend = next(n.name for n in nodes if n.role == "frontend")
    computes = [
        n.name
        for n in sorted((n for n in nodes if n.role == "compute"), key=lambda n: n.index or 0)
    ]
    return [by_name[name] for name in select_names(targets, frontend, computes)]


def _error(message: str, target: Target) -> RecipeError:
    return RecipeError(message, target.span, source_line(target.span))
