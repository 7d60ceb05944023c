"""Recipe text -> :mod:`pragmash.language.ast` statements, and syntax errors in a user's words.

The grammar (``grammar/pragmash.lark``) is LALR with a contextual lexer; its tables
are built once per installation and kept in the user's cache folder (see
:func:`_lark`). Lark's tree is turned into frozen dataclasses right here, so nothing
after this module ever sees a Lark object, nor a driver call: those are lowered to
the statements they mean as they are built (:mod:`~pragmash.language.lowering`).
Every Lark error is turned into one :class:`~pragmash.errors.RecipeError` that names
``file:line:col`` and says what was expected in recipe words (``end of line``, never
``_NL``): that translation lives in :mod:`~pragmash.language.syntax_errors`, finding
included files in :mod:`~pragmash.language.includes`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from pragmash.errors import RecipeError, RecipeErrors, Span, UserError, each_problem
from pragmash.language import ast
from pragmash.language.commandline import split_command
from pragmash.language.durations import DURATION_EXAMPLES, DurationTooLong, parse_duration
from pragmash.language.includes import (
    Chain,
    check_cycle,
    check_depth,
    identity,
    include_roots,
    read_include,
    reason,
)
from pragmash.language.lowering import lower_driver_call
from pragmash.language.sources import SourceText, position, read_utf8, remember
from pragmash.language.syntax_errors import KEYWORD_TERMINALS, bad_dollar, syntax_error
from pragmash.language.vocabulary import SCALE_EVENTS

__all__ = ["parse_file", "parse_recipe", "parse_statement"]

_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
)


_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": True,
    "maybe_placeholders": True,
}


@functools.cache
def _lark() -> Lark:
    """The one parser: building the LALR tables costs more than parsing a recipe.

    So the tables are built once per installation, not per process: saved (Lark's own
    ``save``) to ``$XDG_CACHE_HOME/pragmash/grammar-KEY.lark``, where KEY digests the
    grammar, the options and Lark's version, so a changed grammar or an upgraded Lark
    never loads old tables. The file is written aside and renamed into place, so a
    process never reads a half-written one; one that cannot be read (or a cache folder
    that cannot be written) only costs the build.
    """
    grammar = importlib.resources.files("pragmash.grammar").joinpath("pragmash.lark")
    text = grammar.read_text(encoding="utf-8")
    key = hashlib.sha256(
        f"{lark.__version__}\0{sorted(_OPTIONS.items())}\0{text}".encode()
    ).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pragmash"
    path = cache / f"grammar-{key}.lark"
    with contextlib.suppress(Exception), path.open("rb") as saved:  # absent or unreadable
        loaded: Lark = Lark.load(saved)
        return loaded
    parser = Lark(text, **_OPTIONS)
    with contextlib.suppress(OSError):
        cache.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        with aside.open("wb") as out:
            parser.save(out)
        os.replace(aside, path)
    return parser


def parse_recipe(text: str, file: str, *, search_path: Sequence[Path] = ()) -> ast.Program:
    """Parse a recipe's text; ``file`` names it in spans and anchors relative includes."""
    return _parse(text, file, tuple(search_path), ())


def parse_file(path: Path, *, search_path: Sequence[Path] = ()) -> ast.Program:
    """Read and parse a recipe file."""
    try:
        text = read_utf8(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the recipe: {reason(exc)}") from None
    return parse_recipe(text, str(path), search_path=search_path)


def parse_statement(text: str, file: str = "<repl>") -> tuple[ast.Statement, ...]:
    """Parse what a user typed at the REPL: zero or more statements, ';'-separated."""
    return parse_recipe(text, file).statements


# --------------------------------------------------------------------------- internals


def _parse(text: str, file: str, search_path: tuple[Path, ...], chain: Chain) -> ast.Program:
    """Parse, build and report every problem: a syntax error does not hide the next line's."""
    text = text.removeprefix("\ufeff")
    remember(file, text)  # so errors found later (checks, run time, REPL) can show the line
    source = SourceText(file, text)
    _refuse_controls(source)
    found: list[tuple[int, RecipeError]] = []  # (line in this file it belongs to, problem)
    tree = _parse_tree(source, found)
    chain = (*chain, (identity(file), file))
    builder = _Builder(source, search_path, chain)
    statements: list[ast.Statement] = []
    for child in tree.children if tree is not None else ():
        if not isinstance(child, lark.Tree):
            continue
        try:
            statements.append(cast(ast.Statement, builder.transform(child)))
        except VisitError as exc:
            if not isinstance(exc.orig_exc, RecipeError):
                raise
            found += [(child.meta.line, p) for p in each_problem(exc.orig_exc)]
    if found:
        found.sort(key=lambda item: (item[0], item[1].span.file != file, item[1].span.column))
        problems = [p for _, p in found]
        raise problems[0] if len(problems) == 1 else RecipeErrors(problems)
    return ast.Program(file=file, source=text, statements=tuple(statements))


#: A recipe with more syntax errors than this has its first ones reported.
_MAX_SYNTAX_ERRORS = 50


def _parse_tree(
    source: SourceText, found: list[tuple[int, RecipeError]]
) -> lark.Tree[Token] | None:
    """Lark's tree of the recipe, every syntax error added to ``found``.

    On an error (Lark's ``on_error``, LALR only) the statement being written is dropped
    from the parser's stacks and the input is skipped to the next line, so parsing goes
    on where the next statement starts: statements are one line each, so one mistake
    costs one line. The tree then holds every good statement, and the builder's own
    checks (durations, includes) still run on them.
    """
    reported: set[int] = set()

    def record(exc: UnexpectedInput) -> None:
        if id(exc) not in reported:
            reported.add(id(exc))
            error = syntax_error(source, exc)
            found.append((error.span.line, error))

    def recover(exc: UnexpectedInput) -> bool:
        record(exc)
        if len(found) >= _MAX_SYNTAX_ERRORS:
            return False
        parser = exc.interactive_parser
        _drop_statement(parser.parser_state)
        if isinstance(exc, UnexpectedToken) and exc.token.type in ("_NL", "$END"):
            return True  # already at the start of the next line (or the end)
        lexer = parser.lexer_thread.state
        assert lexer is not None  # a parse under way has one
        counter = lexer.line_ctr
        newline = source.text.find("\n", counter.char_pos)
        counter.feed(
            source.text[counter.char_pos : len(source.text) if newline < 0 else newline + 1]
        )
        return True

    try:
        tree: lark.Tree[Token] = _lark().parse(source.text, on_error=recover)
    except UnexpectedInput as exc:  # the last error, or one Lark would not resume after
        record(exc)
        return None
    return tree


def _drop_statement(state: Any) -> None:
    """Pop the half-parsed statement (back to before its keyword) off an LALR parser's stacks."""
    values: list[Any] = state.value_stack
    for depth in range(len(values) - 1, -1, -1):
        item = values[depth]
        if isinstance(item, Token) and item.type in KEYWORD_TERMINALS:
            del values[depth:]
            del state.state_stack[depth + 1 :]
            return
        if isinstance(item, Token) and item.type in ("_NL", "_SEMI"):
            return
        if isinstance(item, lark.Tree) and str(item.data).startswith("__start"):
            return  # the finished lines before it: nothing is half-parsed


# Control characters a recipe may not hold: C0 but tab and line ends, DEL, C1, and a
# carriage return that does not end a line. On a terminal they would be obeyed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def _refuse_controls(source: SourceText) -> None:
    """A recipe is plain text: refuse ESC, NUL and the like before they reach a terminal.

    They would otherwise flow into step lines, errors and the journal, and from there
    retitle or reprogram the terminal of whoever looks at the run.
    """
    found = _CONTROL.search(source.text)
    if found is None:
        return
    before = source.text[: found.start()]
    line = before.count("\n") + 1
    column = found.start() - (before.rfind("\n") + 1) + 1
    raise source.error(
        f"control character U+{ord(found.group()[0]):04X} in the recipe: a recipe is plain "
        "text; remove it",
        source.span(line, column),
    )


# ------------------------------------------------------------------ tree -> dataclasses


@v_args(meta=True)
class _Builder(Transformer[Token, tuple[ast.Statement, ...]]):
    """Lark tree -> frozen statements; method names are the grammar's rules and aliases."""

    def __init__(self, source: SourceText, search_path: tuple[Path, ...], chain: Chain) -> None:
        super().__init__()
        self.src = source
        self.search_path = search_path
        self.chain = chain

    # -- helpers

    def _head(self, meta: Meta) -> tuple[Span, str]:
        span = self.src.meta_span(meta)
        return span, self.src.text[meta.start_pos : meta.end_pos].strip()

    def _word(self, token: Token) -> ast.Word:
        if token.type == "STRING":
            return self._quoted(token)
        return self._bare(token)

    def _bare(self, token: Token) -> ast.Word:
        value = str(token)
        line, column = position(token.line), position(token.column)
        parts: list[str | ast.VarRef] = []
        at = 0
        for match in _VARIABLE.finditer(value):
            if match.start() > at:
                parts.append(value[at : match.start()])
            name = match["braced"] or match["plain"]
            parts.append(
                ast.VarRef(
                    name, self.src.span(line, column + match.start(), line, column + match.end())
                )
            )
            at = match.end()
        if at < len(value):
            parts.append(value[at:])
        return ast.Word(tuple(parts), self.src.token_span(token), quoted=False)

    def _quoted(self, token: Token) -> ast.Word:
        raw = str(token)[1:-1]
        line = position(token.line)
        first = position(token.column) + 1  # column of raw[0]
        parts: list[str | ast.VarRef] = []
        literal: list[str] = []
        i = 0
        while i < len(raw):
            char = raw[i]
            if char == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\$':
                literal.append(raw[i + 1])
                i += 2
                continue
            if char == "$":
                match = _VARIABLE.match(raw, i)
                if match is None:
                    raise self.src.error(bad_dollar(raw[i:]), self.src.span(line, first + i))
                if literal:
                    parts.append("".join(literal))
                    literal = []
                name = match["braced"] or match["plain"]
                parts.append(
                    ast.VarRef(name, self.src.span(line, first + i, line, first + match.end()))
                )
                i = match.end()
                continue
            literal.append(char)
            i += 1
        if literal or not parts:
            parts.append("".join(literal))
        return ast.Word(tuple(parts), self.src.token_span(token), quoted=True)

    def _duration(self, word: ast.Word, after: str) -> ast.Word:
        """Reject a literal that is no duration now, not minutes into a run."""
        literal = word.literal
        if literal is not None:
            try:
                parse_duration(literal)
            except DurationTooLong as err:
                raise self.src.error(f"{after} {err}", word.span) from None
            except ValueError:
                raise self.src.error(
                    f"expected a duration like {DURATION_EXAMPLES} after '{after}', "
                    f"not '{literal}'",
                    word.span,
                ) from None
        return word

    # -- statements

    def start(self, meta: Meta, children: list[ast.Statement]) -> tuple[ast.Statement, ...]:
        return tuple(children)

    def word(self, meta: Meta, children: list[Token]) -> ast.Word:
        return self._word(children[0])

    def allocate(self, meta: Meta, children: list[Any]) -> ast.Allocate:
        span, text = self._head(meta)
        count: ast.Word | None = children[1] if len(children) > 1 else None
        if count is not None and count.literal is not None:
            literal = count.literal
            if not literal.isdigit():  # 0 is fine: a frontend-only VC
                raise self.src.error(
                    "expected a number of CPUs after 'allocate' (a whole number like 4), "
                    f"not '{literal}'",
                    count.span,
                )
        return ast.Allocate(span, text, count=count)

    def fix(self, meta: Meta, children: list[Any]) -> ast.Fix:
        span, text = self._head(meta)
        _, targets, method = children
        return ast.Fix(span, text, targets=targets, method=method)

    def boot(self, meta: Meta, children: list[Any]) -> ast.Boot:
        span, text = self._head(meta)
        return ast.Boot(span, text, targets=children[1])

    def wait_clock(self, meta: Meta, children: list[Any]) -> ast.WaitClock:
        span, text = self._head(meta)
        duration = self._duration(self._word(children[1]), "wait")
        return ast.WaitClock(span, text, duration=duration)

    def wait_state(self, meta: Meta, children: list[Any]) -> ast.WaitState:
        span, text = self._head(meta)
        targets = tuple(c for c in children if isinstance(c, ast.Target))
        state = next(c for c in children if isinstance(c, Token) and c.type == "NAME")
        timeout = next((c for c in children if isinstance(c, ast.Word)), None)
        if timeout is not None:
            self._duration(timeout, "timeout")
        return ast.WaitState(
            span,
            text,
            targets=targets,
            state=str(state),
            timeout=timeout,
            state_span=self.src.token_span(state),
        )

    def wait_console(self, meta: Meta, children: list[Any]) -> ast.WaitConsole:
        span, text = self._head(meta)
        targets = tuple(c for c in children if isinstance(c, ast.Target))
        expect = next(c for c in children if isinstance(c, Token) and c.type in ("BARE", "STRING"))
        timeout = next((c for c in children if isinstance(c, ast.Word)), None)
        if timeout is not None:
            self._duration(timeout, "timeout")
        return ast.WaitConsole(
            span, text, targets=targets, expect=self._word(expect), timeout=timeout
        )

    def set(self, meta: Meta, children: list[Any]) -> ast.Set:
        span, text = self._head(meta)
        return ast.Set(span, text, name=str(children[1]), value=children[2])

    def param(self, meta: Meta, children: list[Any]) -> ast.Param:
        span, text = self._head(meta)
        return ast.Param(span, text, name=str(children[1]), default=children[2])

    def echo(self, meta: Meta, children: list[Any]) -> ast.Echo:
        span, text = self._head(meta)
        return ast.Echo(span, text, words=tuple(children[1:]))

    def run(self, meta: Meta, children: list[Any]) -> ast.Run:
        span, text = self._head(meta)
        return ast.Run(span, text, argv=tuple(children[1:]))

    def exec(self, meta: Meta, children: list[Any]) -> ast.Exec:
        span, text = self._head(meta)
        targets = tuple(c for c in children if isinstance(c, ast.Target))
        token = next(c for c in children if isinstance(c, Token) and c.type == "STRING")
        command = self._quoted(token)
        try:
            argv = split_command(command)
        except ValueError as err:
            raise self.src.error(str(err), command.span) from None
        if not argv:
            raise self.src.error(
                'expected the command to run inside the nodes, like "hostname -f"', command.span
            )
        timeout = next((c for c in children if isinstance(c, ast.Word)), None)
        if timeout is not None:
            self._duration(timeout, "timeout")
        return ast.Exec(span, text, targets=targets, argv=argv, timeout=timeout)

    def handler(self, meta: Meta, children: list[Any]) -> ast.Handler:
        span, text = self._head(meta)
        _, event, body = children
        if str(event) not in SCALE_EVENTS:
            raise self.src.error(
                f"'on' takes a scale event, {' or '.join(SCALE_EVENTS)}, not '{event}' "
                '(like on grow exec frontend "rocks sync config")',
                self.src.token_span(event),
            )
        return ast.Handler(
            span, text, event="grow" if str(event) == "grow" else "shrink", body=body
        )

    def driver_call(self, meta: Meta, children: list[Any]) -> ast.Statement:
        span, text = self._head(meta)
        token: Token = children[0]
        driver, command = str(token).split("/", 1)
        line, column = position(token.line), position(token.column)
        command_span = self.src.span(
            line, column + len(driver) + 1, token.end_line, token.end_column
        )
        return lower_driver_call(span, text, driver, command, command_span, tuple(children[1:]))

    def include(self, meta: Meta, children: list[Any]) -> ast.Include:
        span, text = self._head(meta)
        word: ast.Word = children[1]
        path = word.literal
        if path is None:
            raise self.src.error(
                "an include path cannot use variables: includes are read before the recipe runs",
                word.variables[0].span,
            )
        if not path:
            raise self.src.error("expected a file name after 'include'", word.span)
        check_depth(self.src, self.chain, path, word.span)
        roots = include_roots(self.chain[0][1], self.search_path)
        display, body_text = read_include(self.src, path, word.span, self.search_path, roots)
        check_cycle(self.src, self.chain, display, word.span)
        try:
            body = _parse(body_text, display, self.search_path, self.chain).statements
        except RecipeError as exc:
            for problem in each_problem(exc):
                if problem.hint is None:
                    problem.hint = f"(included from {span})"
            raise
        return ast.Include(span, text, path=path, resolved=display, body=body)

    # -- targets

    def targets(self, meta: Meta, children: list[ast.Target]) -> tuple[ast.Target, ...]:
        return tuple(children)

    def t_frontend(self, meta: Meta, children: list[Any]) -> ast.Target:
        return ast.Target("frontend", self.src.meta_span(meta))

    def t_compute(self, meta: Meta, children: list[Any]) -> ast.Target:
        return ast.Target("compute", self.src.meta_span(meta))

    def t_all(self, meta: Meta, children: list[Any]) -> ast.Target:
        return ast.Target("all", self.src.meta_span(meta))

    def t_node(self, meta: Meta, children: list[Token]) -> ast.Target:
        return ast.Target("node", self.src.meta_span(meta), name=str(children[0]))

    def t_index(self, meta: Meta, children: list[Token]) -> ast.Target:
        return ast.Target("compute", self.src.meta_span(meta), index=int(children[0]))

    def t_slice(self, meta: Meta, children: list[Token | None]) -> ast.Target:
        span = self.src.meta_span(meta)
        lo, hi = (None if c is None else int(c) for c in children)
        if lo is not None and hi is not None and (lo < 0) == (hi < 0) and hi <= lo:
            raise self.src.error(
                f"compute[{lo}:{hi}] selects no node: the end of a range must be greater "
                "than its start (like compute[1:3])",
                span,
            )
        return ast.Target("compute", span, index=lo, stop=hi, is_slice=True)
