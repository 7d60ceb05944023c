"""A recipe's scale handlers (``on grow …``, ``on shrink …``) as steps of a scale run.

What a scale does to the running cluster beyond its leases and domains is the
recipe's to say: a Rocks frontend's ``rocks sync config``, a Slurm
``scontrol reconfigure``. The recipe declares it next to its other statements
(``on grow exec frontend "rocks sync config"``); its own run only keeps the
declaration. A scale reads the VC's recipe again (the file its run was started with;
a recipe edited since is read as it is now, a recipe gone means no handlers), takes
the recipe's ``set`` and ``param`` values as the run had them (``--set`` first), and
adds each handler of its direction as a step after its ``refresh all``: journaled,
shown and resumed like the scale's own steps, run by the VC's runtime as the
statement would run in the recipe.

A handler the site's policy refuses (``exec`` or ``run`` where neither ``[policy]
allow_run`` nor the run's ``--allow-run`` allows commands) is skipped with the reason,
never run: the VC grew, and the recipe's own run could not have run it either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pragmash import outcomes
from pragmash.engine.run.events import ignore
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.run.runtime import Runtime
from pragmash.language import ast
from pragmash.language.parser import parse_file
from pragmash.language.program import flatten
from pragmash.language.vocabulary import COMMANDS_REFUSED


@dataclass(frozen=True)
class HandlerStep(ast.MadeStep):
    """One handler as a scale's step: the recipe's statement (``body``), at its place."""

    body: ast.Statement | None = None

    @property
    def kind(self) -> str:
        return "on"


def scale_handlers(runtime: Runtime, recipe: str, growing: bool) -> tuple[HandlerStep, ...]:
    """The recipe's handlers for a scale that grows (or shrinks), in recipe order."""
    path = Path(recipe)
    if not path.is_file():
        return ()
    program = parse_file(path, search_path=runtime.site.recipe_dirs)
    event = "grow" if growing else "shrink"
    quiet = StepReporter(-1, ignore, node_status=False)
    found: list[HandlerStep] = []
    for step in flatten(program.statements):
        stmt = step.statement
        if isinstance(stmt, ast.Set | ast.Param):
            runtime.visit(stmt, quiet)  # the recipe's values, as its run had them
        elif isinstance(stmt, ast.Handler) and stmt.event == event and stmt.body is not None:
            found.append(HandlerStep(stmt.span, stmt.text, body=stmt.body))
    return tuple(found)


def run_handler(runtime: Runtime, step: HandlerStep, reporter: StepReporter) -> StepOutcome:
    """The handler's statement, run as the recipe would run it (or skipped by policy)."""
    body = step.body
    assert body is not None
    if isinstance(body, ast.Exec | ast.Run) and not (runtime.allow_run or runtime.site.allow_run):
        return StepOutcome(
            outcomes.SKIPPED, f"skipped: '{body.kind}' is refused: {COMMANDS_REFUSED}"
        )
    return runtime.visit(body, reporter)
