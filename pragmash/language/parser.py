"""Recipe text -> :mod:`pragmash.language.ast` statements, and syntax errors in a user's words.

The grammar (``grammar/pragmash.lark``) is LALR with a contextual lexer; the parser
is built once per process. Lark's tree is turned into frozen dataclasses right here,
so nothing after this module ever sees a Lark object. Every Lark error is turned
into one :class:`~pragmash.errors.RecipeError` that names ``file:line:col`` and says
what was expected in recipe words (``end of line``, never ``_NL``).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta

from pragmash.errors import RecipeError, Span, UserError
from pragmash.language import ast
from pragmash.language.durations import DURATION_EXAMPLES, parse_duration
from pragmash.language.sources import remember
from pragmash.language.vocabulary import STATEMENT_WORDS

__all__ = ["parse_file", "parse_recipe", "parse_statement"]

_KEYWORD_TERMINALS = {
    "ALLOCATE",
    "BOOT",
    "ECHO",
    "FIX",
    "INCLUDE",
    "PARAM",
    "RUN",
    "SET",
    "WAIT",
    "DRIVER_CMD",
}
_ENDS = {"_NL", "_SEMI", "$END"}
_IGNORED = {"WS", "COMMENT"}
_TARGET_TERMINALS = {"FRONTEND", "COMPUTE", "ALL", "NAME"}
_TARGET_FORMS = "frontend, compute, compute[0], compute[1:3], all or a node name"
_DURATION_LIKE = "like 300, 90s or 5m"

_TERMINAL_WORDS = {
    "NAME": "a node name",
    "VARNAME": "a variable name",
    "INT": "a number",
    "BARE": "a word",
    "STRING": "a word",
    "CLOCK": "a duration",
    "LSQB": "'['",
    "RSQB": "']'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "VIA": "'via'",
    "TIMEOUT": "'timeout'",
    "FRONTEND": "'frontend'",
    "COMPUTE": "'compute'",
    "ALL": "'all'",
    "DRIVER_CMD": "ve_driver/… or vc_driver/…",
}

# What each statement takes, for "expected end of line" after too many arguments.
_TAKES = {
    "ALLOCATE": "at most one number of CPUs",
    "FIX": "targets, 'via' and one method",
    "WAIT": "one duration, or targets, a state and an optional 'timeout DURATION'",
    "SET": "one value (use double quotes for a value with spaces)",
    "PARAM": "one value (use double quotes for a value with spaces)",
    "INCLUDE": "one file name",
}

_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
)
_WORD_AT = re.compile(r"[^\s;#]+")


@functools.cache
def _lark() -> Lark:
    """The one parser: building the LALR tables costs more than parsing a recipe."""
    grammar = importlib.resources.files("pragmash.grammar").joinpath("pragmash.lark")
    return Lark(
        grammar.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse_recipe(text: str, file: str, *, search_path: Sequence[Path] = ()) -> ast.Program:
    """Parse a recipe's text; ``file`` names it in spans and anchors relative includes."""
    return _parse(text, file, tuple(search_path), ())


def parse_file(path: Path, *, search_path: Sequence[Path] = ()) -> ast.Program:
    """Read and parse a recipe file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the recipe: {_reason(exc)}") from None
    return parse_recipe(text, str(path), search_path=search_path)


def parse_statement(text: str, file: str = "<repl>") -> tuple[ast.Statement, ...]:
    """Parse what a user typed at the REPL: zero or more statements, ';'-separated."""
    return parse_recipe(text, file).statements


# --------------------------------------------------------------------------- internals


_Chain = tuple[tuple[str, str], ...]  # (identity, display name) of each file being included


class _Source:
    """A recipe's text with the helpers that turn positions into spans and errors."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.lines = [line.rstrip("\r") for line in text.split("\n")]

    def line(self, number: int) -> str:
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return ""

    def span(
        self, line: int, column: int, end_line: int | None = None, end_column: int | None = None
    ) -> Span:
        return Span(
            self.file,
            line,
            column,
            line if end_line is None else end_line,
            column + 1 if end_column is None else end_column,
        )

    def token_span(self, token: Token) -> Span:
        return self.span(_int(token.line), _int(token.column), token.end_line, token.end_column)

    def meta_span(self, meta: Meta) -> Span:
        return self.span(meta.line, meta.column, meta.end_line, meta.end_column)

    def error(self, message: str, span: Span, *, hint: str | None = None) -> RecipeError:
        return RecipeError(message, span, self.line(span.line), hint=hint)

    def end_span(self) -> Span:
        """Just past the last character: where an unfinished statement ran out."""
        number = len(self.lines)
        while number > 1 and not self.lines[number - 1].strip():
            number -= 1
        column = len(self.lines[number - 1]) + 1
        return self.span(number, column)


def _int(value: int | None) -> int:
    return 1 if value is None else value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def _identity(file: str) -> str:
    """What makes two includes the same file (for cycle detection)."""
    path = Path(file)
    return str(path.resolve()) if path.is_file() else file


def _parse(text: str, file: str, search_path: tuple[Path, ...], chain: _Chain) -> ast.Program:
    text = text.removeprefix("\ufeff")
    remember(file, text)  # so errors found later (checks, run time, REPL) can show the line
    source = _Source(file, text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from None
    chain = (*chain, (_identity(file), file))
    try:
        statements = _Builder(source, search_path, chain).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RecipeError):
            raise exc.orig_exc from None
        raise
    return ast.Program(file=file, source=text, statements=statements)


# ------------------------------------------------------------------ tree -> dataclasses


@v_args(meta=True)
class _Builder(Transformer[Token, tuple[ast.Statement, ...]]):
    """Lark tree -> frozen statements; method names are the grammar's rules and aliases."""

    def __init__(self, source: _Source, search_path: tuple[Path, ...], chain: _Chain) -> None:
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
        line, column = _int(token.line), _int(token.column)
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
        line = _int(token.line)
        first = _int(token.column) + 1  # column of raw[0]
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
                    raise self.src.error(_bad_dollar(raw[i:]), self.src.span(line, first + i))
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

    def driver_call(self, meta: Meta, children: list[Any]) -> ast.DriverCall:
        span, text = self._head(meta)
        token: Token = children[0]
        driver, command = str(token).split("/", 1)
        line, column = _int(token.line), _int(token.column)
        command_span = self.src.span(
            line, column + len(driver) + 1, token.end_line, token.end_column
        )
        return ast.DriverCall(
            span,
            text,
            driver="ve_driver" if driver == "ve_driver" else "vc_driver",
            command=command,
            command_span=command_span,
            args=tuple(children[1:]),
        )

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
        display, body_text = self._read_include(path, word.span)
        identity = _identity(display)
        seen = [ident for ident, _ in self.chain]
        if identity in seen:
            names = [name for _, name in self.chain[seen.index(identity) :]]
            raise self.src.error("include cycle: " + " -> ".join([*names, display]), word.span)
        try:
            body = _parse(body_text, display, self.search_path, self.chain).statements
        except RecipeError as exc:
            if exc.hint is None:
                exc.hint = f"(included from {span})"
            raise
        return ast.Include(span, text, path=path, resolved=display, body=body)

    def _read_include(self, path: str, span: Span) -> tuple[str, str]:
        """Find ``path``: beside the including file, on the search path, then bundled."""
        folders = [Path(self.src.file).parent, *self.search_path]
        try:
            for folder in folders:
                candidate = folder / path
                if candidate.is_file():
                    return str(candidate), candidate.read_text(encoding="utf-8")
            bundled = importlib.resources.files("pragmash.recipes").joinpath(path)
            if bundled.is_file():
                return str(bundled), bundled.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.src.error(
                f"cannot read the included file '{path}': {_reason(exc)}", span
            ) from None
        looked = ", ".join(str(folder) for folder in folders)
        raise self.src.error(
            f"cannot find the included file '{path}' (looked in {looked} and the bundled recipes)",
            span,
        )

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


def _bad_dollar(rest: str) -> str:
    if rest.startswith("${"):
        return "unterminated '${': expected a variable like ${vcname} (letters, digits and '_')"
    return (
        "expected a variable name after '$' (like $vcname or ${vcname}); "
        "write \\$ inside double quotes for a dollar sign"
    )


# ---------------------------------------------------------------------- syntax errors


def _syntax_error(src: _Source, exc: UnexpectedInput) -> RecipeError:
    """One Lark error -> one RecipeError in recipe words."""
    state = getattr(exc, "state", None)
    stack: list[Any] = list(getattr(state, "value_stack", None) or [])
    if isinstance(exc, UnexpectedCharacters):
        span = src.span(exc.line, exc.column)
        expected = set(exc.allowed or ()) - _IGNORED
        position = exc.pos_in_stream or 0
        char = src.text[position]
        message = _character_message(char, src.text[position:])
        if message is not None:
            return src.error(message, span)
        found: str | None = char
        at_end = False
    elif isinstance(exc, UnexpectedToken):
        token = exc.token
        at_end = token.type == "$END"
        span = src.end_span() if at_end else src.token_span(token)
        expected = set(exc.expected) - _IGNORED
        found = None if at_end else str(token)
    elif isinstance(exc, UnexpectedEOF):
        span, expected, found, at_end = src.end_span(), set(exc.expected), None, True
    else:  # pragma: no cover - lark has no other UnexpectedInput
        raise exc

    if expected & _KEYWORD_TERMINALS:
        return _unknown_statement(src, span)

    keyword, after = _context(stack)
    if keyword == "WAIT" and (at_end or found in ("\n", ";")):
        lone = _lone_wait_name(stack)
        if lone is not None:
            return src.error(
                f"'{lone}' is not a duration: expected a duration like {DURATION_EXAMPLES}, "
                f"or targets and a state (like 'wait {lone} up')",
                src.token_span(lone),
            )
    message = _expected_message(keyword, after, expected)
    if at_end:
        message = f"the recipe ended in the middle of a statement: {message}"
    return src.error(message, span)


def _character_message(char: str, rest: str) -> str | None:
    """Characters no terminal accepts anywhere get their own explanation."""
    if char == '"':
        return "unterminated string: a string needs its closing '\"' on the same line"
    if char == "'":
        return "single quotes are not supported: use double quotes"
    if char == "$":
        return _bad_dollar(rest)
    if char == "\\":
        return "a backslash is only allowed inside double quotes"
    return None


def _unknown_statement(src: _Source, span: Span) -> RecipeError:
    line = src.line(span.line)
    match = _WORD_AT.match(line, span.column - 1)
    word = match.group() if match else line[span.column - 1 : span.column]
    if word.startswith(("ve_driver", "vc_driver")):
        driver = word[:9]
        return src.error(f"expected a command after '{driver}/' (like {driver}/boot)", span)
    message = f"unknown statement '{word}'; expected one of " + ", ".join(
        f"{w}…" if w.endswith("/") else w for w in STATEMENT_WORDS
    )
    close = difflib.get_close_matches(word, [w.rstrip("/") for w in STATEMENT_WORDS], n=1)
    if close:
        message += f"; did you mean '{close[0]}'?"
    hint = "to set a variable write: set NAME = VALUE" if word.startswith("$") else None
    return src.error(message, span, hint=hint)


def _context(stack: list[Any]) -> tuple[str | None, Any]:
    """The keyword of the statement being parsed and the last thing parsed in it."""
    after = stack[-1] if stack else None
    for item in reversed(stack):
        if isinstance(item, Token):
            if item.type in ("_NL", "_SEMI"):
                break
            if item.type in _KEYWORD_TERMINALS:
                return item.type, after
        elif isinstance(item, Tree) and item.data in ("start", "_line"):
            break
    return None, after


def _lone_wait_name(stack: list[Any]) -> Token | None:
    """`wait five`: a single node name and no state reads as a mistyped duration."""
    if len(stack) < 2:
        return None
    keyword, item = stack[-2], stack[-1]
    if not (isinstance(keyword, Token) and keyword.type == "WAIT"):
        return None
    if isinstance(item, Token) and item.type == "NAME":
        return item
    if isinstance(item, Tree) and item.data == "t_node":
        child = item.children[0]
        return child if isinstance(child, Token) else None
    return None


def _kind(item: Any) -> str | None:
    if isinstance(item, Token):
        return item.type
    if isinstance(item, Tree):
        return str(item.data)
    return None


def _expected_message(keyword: str | None, after: Any, expected: set[str]) -> str:
    """Say what was expected, in the words of the statement being written."""
    last = _kind(after)
    name = keyword.lower() if keyword else ""
    only_end = bool(expected) and expected <= _ENDS
    if last == "WAIT":
        return f"expected a duration ({_DURATION_LIKE}) or targets after 'wait'"
    if last == "TIMEOUT":
        return f"expected a duration ({_DURATION_LIKE}) after 'timeout'"
    if last == "LSQB":
        return (
            "expected an index or a range inside 'compute[...]' (like compute[0] or compute[1:3])"
        )
    if "RSQB" in expected and "COLON" in expected:
        return "expected ':' or ']' after the index in 'compute[...]'"
    if "RSQB" in expected:
        return "expected ']' to close 'compute[...]'"
    if keyword in ("FIX", "BOOT") and last == keyword:
        return f"expected targets after '{name}' ({_TARGET_FORMS})"
    if keyword == "FIX" and "VIA" in expected:
        return "expected 'via' after the targets of 'fix'"
    if keyword == "FIX" and last == "VIA":
        return "expected a fix method after 'via' (like virt-v2v, virt-customize or none)"
    if keyword == "WAIT" and "NAME" in expected and not expected & _ENDS:
        return "expected a state (like running or up) after the targets of 'wait'"
    if keyword in ("SET", "PARAM"):
        if last == keyword:
            return f"expected a variable name after '{name}' (letters, digits and '_')"
        if last == "VARNAME":
            return f"expected '=' after the variable name in '{name}'"
        if last == "EQUAL":
            return f"expected a value after '=' in '{name}'"
    if keyword == "INCLUDE" and last == "INCLUDE":
        return "expected a file name after 'include' (like include \"common/boot.prg\")"
    if keyword == "RUN" and last == "RUN":
        return "expected a command after 'run'"
    if only_end and keyword == "BOOT":
        return "expected another target or end of line or ';' after the targets of 'boot'"
    if only_end and keyword in _TAKES:
        return f"expected end of line or ';': '{name}' takes {_TAKES[keyword]}"
    return f"expected {_describe(expected)}"


def _describe(expected: set[str]) -> str:
    """Terminal names -> a short 'a, b or c' list a user understands."""
    items: list[str] = []
    rest = set(expected)
    if rest >= _TARGET_TERMINALS:
        items.append(f"a target ({_TARGET_FORMS})")
        rest -= _TARGET_TERMINALS
    elif "NAME" in rest and "COMMA" in rest:  # just after a target: the list may go on
        items.append(f"another target ({_TARGET_FORMS})")
        rest -= _TARGET_TERMINALS | {"COMMA"}
    for terminal in sorted(rest - _ENDS):
        words = _TERMINAL_WORDS.get(terminal, terminal.lower())
        if words not in items:
            items.append(words)
    if rest & _ENDS:
        items.append("end of line or ';'")
    if not items:
        return "something else"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
