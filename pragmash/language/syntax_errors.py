"""Lark's syntax errors -> one :class:`~pragmash.errors.RecipeError` in recipe words.

Lark reports terminal names and parser states (``_NL``, ``VARNAME``, a value
stack). Users write statements, so this module reads the stack to find which
statement was being written and what came last, and says what was expected in
those words (``expected a duration (like 300, 90s or 5m) after 'wait'``,
``end of line``). Characters no terminal accepts get their own explanation.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from pragmash.errors import RecipeError, Span
from pragmash.language.durations import DURATION_EXAMPLES
from pragmash.language.sources import SourceText
from pragmash.language.vocabulary import STATEMENT_WORDS

#: The terminals that start a statement (the parser's error recovery pops back to one).
KEYWORD_TERMINALS = frozenset(
    {
        "ALLOCATE",
        "BOOT",
        "ECHO",
        "EXEC",
        "FIX",
        "INCLUDE",
        "ON",
        "PARAM",
        "RUN",
        "SET",
        "WAIT",
        "DRIVER_CMD",
    }
)
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
    "WAIT": "one duration, or targets and a state (or 'console TEXT') and an optional "
    "'timeout DURATION'",
    "SET": "one value (use double quotes for a value with spaces)",
    "PARAM": "one value (use double quotes for a value with spaces)",
    "INCLUDE": "one file name",
    "EXEC": "targets, one command in double quotes and an optional 'timeout DURATION'",
}
_EXEC_EXAMPLE = 'like exec frontend "hostname -f"'
_WORD_AT = re.compile(r"[^\s;#]+")


def bad_dollar(rest: str) -> str:
    """What is wrong with a '$' that starts no variable."""
    if rest.startswith("${"):
        return "unterminated '${': expected a variable like ${vcname} (letters, digits and '_')"
    return (
        "expected a variable name after '$' (like $vcname or ${vcname}); "
        "write \\$ inside double quotes for a dollar sign"
    )


def syntax_error(src: SourceText, exc: UnexpectedInput) -> RecipeError:
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

    keyword, after = _context(stack)
    if keyword == "ON" and _kind(after) == "NAME":
        return src.error(
            f"expected the statement 'on {after}' runs in a scale: exec, run, echo or wait "
            '(like on grow exec frontend "rocks sync config")',
            span,
        )
    if expected & KEYWORD_TERMINALS:
        return _unknown_statement(src, span)

    keyword, after = _context(stack)
    typo = _keyword_typo(keyword, stack, None if at_end else exc)
    if typo is not None:
        word, meant = typo
        return src.error(
            f"unexpected '{word}' in '{(keyword or '').lower()}'; did you mean '{meant}'?",
            src.token_span(word),
        )
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
        return bad_dollar(rest)
    if char == "\\":
        return "a backslash is only allowed inside double quotes"
    return None


def _unknown_statement(src: SourceText, span: Span) -> RecipeError:
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
            if item.type in KEYWORD_TERMINALS:
                return item.type, after
        elif isinstance(item, Tree) and item.data in ("start", "_line"):
            break
    return None, after


#: The keywords inside each statement, for "did you mean 'timeout'" on a typo of one.
_INNER_KEYWORDS = {"WAIT": ("timeout", "console"), "FIX": ("via",), "EXEC": ("timeout",)}


def _keyword_typo(
    keyword: str | None, stack: list[Any], exc: UnexpectedInput | None
) -> tuple[Token, str] | None:
    """A word of the statement that reads as a misspelt inner keyword (``timout``).

    Where targets are read, any name is a node name, so ``wait compute up timout 5m``
    parses ``timout`` as a node and fails later at ``5m``: the typo is found among
    the names the statement has so far (or the token that failed).
    """
    choices = _INNER_KEYWORDS.get(keyword or "")
    if not choices:
        return None
    names: list[Token] = []
    for item in reversed(stack):
        if isinstance(item, Token) and item.type == keyword:
            break
        names += _names_in(item)
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type in ("NAME", "BARE"):
        names.append(token)
    for name in names:
        if str(name) in choices:
            continue
        close = difflib.get_close_matches(str(name), choices, n=1)
        if close:
            return name, close[0]
    return None


def _names_in(item: Any) -> list[Token]:
    """The NAME tokens in a stack item (a token, a target, a list of targets)."""
    if isinstance(item, Token):
        return [item] if item.type == "NAME" else []
    if isinstance(item, Tree):
        return [t for t in item.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME")]
    return []


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
    if keyword in ("FIX", "BOOT", "EXEC") and last == keyword:
        return f"expected targets after '{name}' ({_TARGET_FORMS})"
    if keyword == "ON" and last == "ON":
        return (
            "expected grow or shrink after 'on' (like on grow exec frontend \"rocks sync config\")"
        )
    if keyword == "EXEC" and "STRING" in expected:
        return (
            "expected the command in double quotes after the targets of 'exec' "
            f"({_EXEC_EXAMPLE}), or another target"
        )
    if keyword == "FIX" and "VIA" in expected:
        return "expected 'via' after the targets of 'fix'"
    if keyword == "FIX" and last == "VIA":
        return "expected a fix method after 'via' (like virt-v2v, virt-customize or none)"
    if keyword == "WAIT" and last == "BARE" and str(after) == "timeout":
        return (
            "expected the text to wait for after 'console', before 'timeout' "
            '(like console "login:" timeout 5m)'
        )
    if keyword == "WAIT" and last == "CONSOLE":
        return "expected the text to wait for after 'console' (like console \"login:\")"
    if keyword == "WAIT" and "NAME" in expected and not expected & _ENDS:
        return "expected a state (like running or up) or 'console TEXT' after the targets of 'wait'"
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
