"""Checks a parsed recipe before anything runs.

Syntax (and which driver commands exist) is the parser's job; this finds what only
makes sense in context: an unknown variable, a target that names no node, an
unknown fix method, a statement that needs nodes before any ``allocate``, a ``run``
the site does not permit. Each problem is a RecipeError at its position, so a recipe with
a mistake on line 40 fails before line 1 has touched the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pragmash.driver_api import VC_COMMANDS, VE_COMMANDS
from pragmash.errors import RecipeError, Span
from pragmash.language import ast
from pragmash.language.durations import parse_duration
from pragmash.language.program import flatten
from pragmash.language.sources import source_line
from pragmash.language.targets import resolve_targets, select_names
from pragmash.language.vocabulary import FIX_METHODS, WAIT_STATES, did_you_mean


@dataclass
class CheckContext:
    """What is known before the run: variables, the node naming, the run policy.

    ``variables`` maps known names to their values (None where the value is only
    known at run time). ``computes_for`` gives the compute count an ``allocate N``
    would produce; ``allocated`` is the compute count already held (resume, REPL).
    """

    variables: dict[str, str | None]
    frontend: str
    compute_name: Callable[[int], str]
    computes_for: Callable[[int], int]
    allocated: int | None = None
    allow_run: bool = False
    #: the scripts of the run's driver folders, callable as ``ve_driver/NAME`` and ``vc_driver/NAME``
    extra_ve_commands: Iterable[str] = ()
    extra_vc_commands: Iterable[str] = ()
    problems: list[RecipeError] = field(default_factory=list)


def _err(message: str, span: Span) -> RecipeError:
    return RecipeError(message, span, source_line(span))


def check_program(program: ast.Program, ctx: CheckContext) -> list[RecipeError]:
    """Every problem found, in recipe order (empty when the recipe is fine)."""
    computes = ctx.allocated
    for step in flatten(program.statements):
        stmt = step.statement
        for word in _words(stmt):
            _check_word(word, ctx)
        if isinstance(stmt, ast.Set):
            ctx.variables[stmt.name] = _literal(stmt.value, ctx)
        elif isinstance(stmt, ast.Param):
            ctx.variables.setdefault(stmt.name, _literal(stmt.default, ctx))
        elif isinstance(stmt, ast.Allocate):
            computes = _allocate_count(stmt.count, ctx)
        elif isinstance(stmt, ast.ScriptCall):
            _check_script_call(stmt, ctx)
        elif isinstance(stmt, ast.Run) and not ctx.allow_run:
            ctx.problems.append(
                _err(
                    "'run' is refused: a recipe may not run host commands unless the site config "
                    "sets [policy] allow_run = true or the command line says --allow-run",
                    stmt.span,
                )
            )
        if isinstance(stmt, ast.Fix) and stmt.method is not None:
            method = _literal(stmt.method, ctx)
            if method is not None and method not in FIX_METHODS:
                ctx.problems.append(
                    _err(
                        f"unknown fix method '{method}'; expected one of {', '.join(FIX_METHODS)}"
                        + did_you_mean(method, FIX_METHODS),
                        stmt.method.span,
                    )
                )
        if isinstance(stmt, ast.WaitState) and stmt.state not in WAIT_STATES:
            ctx.problems.append(
                _err(
                    f"unknown state '{stmt.state}'; expected one of {', '.join(WAIT_STATES)}"
                    + did_you_mean(stmt.state, WAIT_STATES),
                    stmt.state_span or stmt.span,
                )
            )
        if (
            isinstance(stmt, ast.WaitConsole)
            and stmt.expect is not None
            and _literal(stmt.expect, ctx) == ""
        ):
            ctx.problems.append(
                _err("expected the console text to wait for, got an empty one", stmt.expect.span)
            )
        for word, what in _durations(stmt):
            value = _literal(word, ctx)
            if value is not None:
                try:
                    parse_duration(value)
                except ValueError as err:
                    ctx.problems.append(_err(f"{what}: {err}", word.span))
        targets = resolve_targets(_targets(stmt), lambda w: _literal(w, ctx))
        if targets:
            _check_targets(stmt, targets, ctx, computes)
    return ctx.problems


def _words(stmt: ast.Statement) -> list[ast.Word]:
    if isinstance(stmt, ast.Allocate):
        return [stmt.count] if stmt.count else []
    if isinstance(stmt, ast.Fix):
        return [t.word for t in stmt.targets if t.word is not None] + (
            [stmt.method] if stmt.method else []
        )
    if isinstance(stmt, ast.WaitClock):
        return [stmt.duration] if stmt.duration else []
    if isinstance(stmt, ast.WaitState):
        return [stmt.timeout] if stmt.timeout else []
    if isinstance(stmt, ast.WaitConsole):
        return [w for w in (stmt.expect, stmt.timeout) if w is not None]
    if isinstance(stmt, ast.Set):
        return [stmt.value] if stmt.value else []
    if isinstance(stmt, ast.Param):
        return [stmt.default] if stmt.default else []
    if isinstance(stmt, ast.Echo):
        return list(stmt.words)
    if isinstance(stmt, ast.Boot | ast.EngineCall | ast.DistroCall):
        return [t.word for t in stmt.targets if t.word is not None]
    if isinstance(stmt, ast.ScriptCall):
        return list(stmt.args)
    if isinstance(stmt, ast.Run):
        return list(stmt.argv)
    return []


def _durations(stmt: ast.Statement) -> list[tuple[ast.Word, str]]:
    if isinstance(stmt, ast.WaitClock) and stmt.duration:
        return [(stmt.duration, "wait")]
    if isinstance(stmt, ast.WaitState | ast.WaitConsole) and stmt.timeout:
        return [(stmt.timeout, "timeout")]
    return []


def _targets(stmt: ast.Statement) -> tuple[ast.Target, ...]:
    if isinstance(
        stmt, ast.Fix | ast.Boot | ast.WaitState | ast.WaitConsole | ast.EngineCall | ast.DistroCall
    ):
        return stmt.targets
    return ()


def _check_word(word: ast.Word, ctx: CheckContext) -> None:
    for ref in word.variables:
        if ref.name not in ctx.variables:
            ctx.problems.append(
                _err(
                    f"unknown variable '${ref.name}'"
                    + did_you_mean(ref.name, ctx.variables)
                    + f"; known here: {', '.join(sorted(ctx.variables))}",
                    ref.span,
                )
            )


def _literal(word: ast.Word | None, ctx: CheckContext) -> str | None:
    """The word's value if it can be known before the run."""
    if word is None:
        return None
    out = []
    for part in word.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            value = ctx.variables.get(part.name)
            if value is None:
                return None
            out.append(value)
    return "".join(out)


def _allocate_count(word: ast.Word | None, ctx: CheckContext) -> int | None:
    text = _literal(word, ctx) if word else ctx.variables.get("num_compute")
    if text is None:
        return None
    try:
        cpus = int(text)
    except ValueError:
        span = word.span if word else Span("?", 0, 0, 0, 0)
        ctx.problems.append(_err(f"expected a number of CPUs for 'allocate', got '{text}'", span))
        return None
    if cpus < 0:
        span = word.span if word else Span("?", 0, 0, 0, 0)
        ctx.problems.append(_err(f"expected a number of CPUs of 0 or more, got {cpus}", span))
        return None
    try:
        return ctx.computes_for(cpus)
    except Exception as err:  # a plan the VC cannot have (no <compute> template)
        span = word.span if word else Span("?", 0, 0, 0, 0)
        ctx.problems.append(_err(str(getattr(err, "message", err)), span))
        return None


def _check_script_call(stmt: ast.ScriptCall, ctx: CheckContext) -> None:
    """A driver command pragmash has no stage for must be a script of a driver folder."""
    table = VE_COMMANDS if stmt.driver == "ve_driver" else VC_COMMANDS
    extra = ctx.extra_ve_commands if stmt.driver == "ve_driver" else ctx.extra_vc_commands
    known = sorted(set(table) | set(extra))
    if stmt.command not in known:
        ctx.problems.append(
            _err(
                f"unknown command '{stmt.written_as}'; {stmt.driver} commands: "
                + ", ".join(known)
                + did_you_mean(stmt.command, known),
                stmt.command_span or stmt.span,
            )
        )


def _check_targets(
    stmt: ast.Statement, targets: tuple[ast.Target, ...], ctx: CheckContext, computes: int | None
) -> None:
    if computes is None:  # the node count is only known at run time
        return
    names = [ctx.compute_name(i) for i in range(computes)]
    try:
        select_names(targets, ctx.frontend, names)
    except RecipeError as err:
        ctx.problems.append(err)


def needs_allocation_first(program: ast.Program, allocated: bool) -> list[RecipeError]:
    """Statements that work on nodes before any ``allocate`` (only when nothing is held)."""
    if allocated:
        return []
    problems: list[RecipeError] = []
    for step in flatten(program.statements):
        stmt = step.statement
        if isinstance(stmt, ast.Allocate):
            return problems
        if _targets(stmt):
            problems.append(
                _err(
                    f"'{stmt.text}' works on nodes, but nothing is allocated before it: put 'allocate' first",
                    stmt.span,
                )
            )
    return problems
