"""A program in run order: ``include`` bodies spliced in after their marker step.

``include`` is flattened: the include statement itself is a step (it does nothing
but mark where the included file starts), followed by the included statements one
level deeper. Flattening gives every step a stable index, which is what the
journal records and what ``resume`` continues from; ``next`` uses the depth to
step over an include. It lives with the language, not the interpreter, because the
checker and the planner walk the same order without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pragmash.language.ast import Include, Statement


@dataclass(frozen=True)
class FlatStep:
    """One statement in run order, with how deep it sits in includes."""

    index: int
    statement: Statement
    depth: int


def flatten(statements: Iterable[Statement], depth: int = 0) -> list[FlatStep]:
    """Run order of a program: includes spliced in after their own marker step."""
    out: list[FlatStep] = []

    def walk(stmts: Iterable[Statement], level: int) -> None:
        for stmt in stmts:
            out.append(FlatStep(len(out), stmt, level))
            if isinstance(stmt, Include):
                walk(stmt.body, level + 1)

    walk(statements, depth)
    return out
