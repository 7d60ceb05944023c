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
from pragmash.language.vocabulary import (
    COMMANDS_REFUSED,
    FIX_METHODS,
    WAIT_STATES,
    did_you_mean,
)


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
    checker = _Checker(ctx.allocated)
    for step in flatten(program.statements):
        checker.visit(step.statement, ctx)
    return ctx.problems


class _Checker(ast.StatementVisitor[CheckContext, None]):
    """What each statement may get wrong; ``computes`` is the compute count so far."""

    def __init__(self, computes: int | None) -> None:
        self.computes = computes

    def _words(self, ctx: CheckContext, *words: ast.Word | None) -> None:
        for word in words:
            if word is not None:
                _check_word(word, ctx)

    def _nodes(self, stmt: ast.OnNodes, ctx: CheckContext) -> None:
        self._words(ctx, *(t.word for t in stmt.targets))
        targets = resolve_targets(stmt.targets, lambda w: _literal(w, ctx))
        if targets:
            _check_targets(stmt, targets, ctx, self.computes)

    def _duration(self, word: ast.Word | None, what: str, ctx: CheckContext) -> None:
        value = _literal(word, ctx)
        if word is not None and value is not None:
            try:
                parse_duration(value)
            except ValueError as err:
                ctx.problems.append(_err(f"{what}: {err}", word.span))

    def visit_set(self, stmt: ast.Set, ctx: CheckContext) -> None:
        self._words(ctx, stmt.value)
        ctx.variables[stmt.name] = _literal(stmt.value, ctx)

    def visit_param(self, stmt: ast.Param, ctx: CheckContext) -> None:
        self._words(ctx, stmt.default)
        ctx.variables.setdefault(stmt.name, _literal(stmt.default, ctx))

    def visit_allocate(self, stmt: ast.Allocate, ctx: CheckContext) -> None:
        self._words(ctx, stmt.count_word)
        self.computes = _allocate_count(stmt.count_word, ctx)

    def visit_fix(self, stmt: ast.Fix, ctx: CheckContext) -> None:
        self._words(ctx, *(t.word for t in stmt.targets), stmt.method)
        method = _literal(stmt.method, ctx)
        if stmt.method is not None and method is not None and method not in FIX_METHODS:
            ctx.problems.append(
                _err(
                    f"unknown fix method '{method}'; expected one of {', '.join(FIX_METHODS)}"
                    + did_you_mean(method, FIX_METHODS),
                    stmt.method.span,
                )
            )
        self._nodes(stmt, ctx)

    def visit_boot(self, stmt: ast.Boot, ctx: CheckContext) -> None:
        self._nodes(stmt, ctx)

    def visit_wait_clock(self, stmt: ast.WaitClock, ctx: CheckContext) -> None:
        self._words(ctx, stmt.duration)
        self._duration(stmt.duration, "wait", ctx)

    def visit_wait_state(self, stmt: ast.WaitState, ctx: CheckContext) -> None:
        self._words(ctx, stmt.timeout)
        if stmt.state not in WAIT_STATES:
            ctx.problems.append(
                _err(
                    f"unknown state '{stmt.state}'; expected one of {', '.join(WAIT_STATES)}"
                    + did_you_mean(stmt.state, WAIT_STATES),
                    stmt.state_span or stmt.span,
                )
            )
        self._duration(stmt.timeout, "timeout", ctx)
        self._nodes(stmt, ctx)

    def visit_wait_console(self, stmt: ast.WaitConsole, ctx: CheckContext) -> None:
        self._words(ctx, stmt.expect, stmt.timeout)
        if stmt.expect is not None and _literal(stmt.expect, ctx) == "":
            ctx.problems.append(
                _err("expected the console text to wait for, got an empty one", stmt.expect.span)
            )
        self._duration(stmt.timeout, "timeout", ctx)
        self._nodes(stmt, ctx)

    def visit_echo(self, stmt: ast.Echo, ctx: CheckContext) -> None:
        self._words(ctx, *stmt.words)

    def visit_include(self, stmt: ast.Include, ctx: CheckContext) -> None:
        pass  # its statements come next, one by one

    def visit_engine_call(self, stmt: ast.EngineCall, ctx: CheckContext) -> None:
        self._nodes(stmt, ctx)

    def visit_distro_call(self, stmt: ast.DistroCall, ctx: CheckContext) -> None:
        self._nodes(stmt, ctx)

    def visit_script_call(self, stmt: ast.ScriptCall, ctx: CheckContext) -> None:
        self._words(ctx, *stmt.args)
        _check_script_call(stmt, ctx)

    def visit_run(self, stmt: ast.Run, ctx: CheckContext) -> None:
        self._words(ctx, *stmt.argv)
        _check_allowed(stmt, ctx)

    def visit_exec(self, stmt: ast.Exec, ctx: CheckContext) -> None:
        self._words(ctx, *stmt.argv, stmt.timeout)
        self._duration(stmt.timeout, "timeout", ctx)
        self._nodes(stmt, ctx)
        _check_allowed(stmt, ctx)

    def visit_handler(self, stmt: ast.Handler, ctx: CheckContext) -> None:
        """The statement as a scale will run it: after any number of computes (so its
        targets are not held to this point's count), and not refused here when the
        site forbids commands: a scale then skips it, saying why, and the recipe's
        own run (which never runs it) goes on."""
        assert stmt.body is not None
        computes, allow = self.computes, ctx.allow_run
        self.computes, ctx.allow_run = None, True
        try:
            self.visit(stmt.body, ctx)
        finally:
            self.computes, ctx.allow_run = computes, allow


def _check_allowed(stmt: ast.Run | ast.Exec, ctx: CheckContext) -> None:
    """``run`` and ``exec``: one policy gate for every command a recipe runs."""
    if not ctx.allow_run:
        ctx.problems.append(_err(f"'{stmt.kind}' is refused: {COMMANDS_REFUSED}", stmt.span))


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
    return word.expand(lambda ref: ctx.variables.get(ref.name))


def _allocate_count(word: ast.Word, ctx: CheckContext) -> int | None:
    text = _literal(word, ctx)
    if text is None:
        return None
    try:
        cpus = int(text)
    except ValueError:
        span = word.span
        ctx.problems.append(_err(f"expected a number of CPUs for 'allocate', got '{text}'", span))
        return None
    if cpus < 0:
        span = word.span
        ctx.problems.append(_err(f"expected a number of CPUs of 0 or more, got {cpus}", span))
        return None
    try:
        return ctx.computes_for(cpus)
    except Exception as err:  # a plan the VC cannot have (no <compute> template)
        span = word.span
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
        if isinstance(stmt, ast.OnNodes):
            problems.append(
                _err(
                    f"'{stmt.text}' works on nodes, but nothing is allocated before it: put 'allocate' first",
                    stmt.span,
                )
            )
    return problems
