"""Driver calls (``ve_driver/CMD``, ``vc_driver/CMD``) as the ordinary statements they mean.

The seed's pipeline names its stages as driver commands; most of them mean exactly
what one of pragmash's own statements means (``ve_driver/boot frontend`` *is*
``boot frontend``). Lowering them once, as the parser builds them, leaves the
checker, the planner and the executor one meaning per statement: none of them knows
that driver calls exist. The two groups with no statement of their own become
:class:`~pragmash.language.ast.EngineCall` (``state``, ``shutdown``, ``destroy``) and
:class:`~pragmash.language.ast.DistroCall` (``pre_fix``, ``post_fix``, ``pre_boot``);
any other name is a driver folder's own script
(:class:`~pragmash.language.ast.ScriptCall`), which the checker holds to the scripts
the run's folders have.

A lowered statement keeps its text and span, so it is shown, journaled and resumed
as written, and remembers the command it was written as
(:attr:`~pragmash.language.ast.Statement.written_as`), so ``break driver`` still
stops at it. Its arguments are targets written as words: a literal one is read
here, one with a variable when the variable's value is known.
"""

from __future__ import annotations

from collections.abc import Mapping

from pragmash.driver_api import VC_COMMANDS, VE_COMMANDS
from pragmash.errors import RecipeError, Span
from pragmash.language import ast
from pragmash.language.sources import source_line
from pragmash.language.targets import word_target
from pragmash.language.vocabulary import DEFAULT_FIX_METHOD


def lower_driver_call(
    span: Span,
    text: str,
    driver: str,
    command: str,
    command_span: Span,
    args: tuple[ast.Word, ...],
) -> ast.Statement:
    """The statement ``driver/command args…`` means (a RecipeError when it means nothing)."""
    table: Mapping[str, str] = VE_COMMANDS if driver == "ve_driver" else VC_COMMANDS
    written = f"{driver}/{command}"
    op = table.get(command)
    if op is None:
        return ast.ScriptCall(
            span,
            text,
            "ve_driver" if driver == "ve_driver" else "vc_driver",
            command,
            command_span,
            args,
            written_as=written,
        )
    if op == "allocate":
        if len(args) > 1:
            raise _error(
                f"'{written}' takes one number of CPUs at most, like '{written} 4'", args[1].span
            )
        return ast.Allocate(span, text, args[0] if args else None, written_as=written)
    if not args:
        raise _error(f"'{written}' needs the nodes it works on", command_span)
    if op == "fix":
        # the method is last when there are two words or more, as the seed writes it
        method = args[-1] if len(args) > 1 else ast.Word((DEFAULT_FIX_METHOD,), span)
        targets = _targets(args[:-1] if len(args) > 1 else args)
        return ast.Fix(span, text, targets, method, written_as=written)
    targets = _targets(args)
    match op:
        case "boot":
            return ast.Boot(span, text, targets, written_as=written)
        case "state" | "shutdown" | "destroy":
            return ast.EngineCall(span, text, targets, op=op, written_as=written)
        case "pre_fix" | "post_fix" | "pre_boot":
            return ast.DistroCall(span, text, targets, stage=op, written_as=written)
    raise AssertionError(f"{written} stands for '{op}', which nothing lowers")


def _targets(words: tuple[ast.Word, ...]) -> tuple[ast.Target, ...]:
    return tuple(word_target(w) for w in words)


def _error(message: str, span: Span) -> RecipeError:
    return RecipeError(message, span, source_line(span))
