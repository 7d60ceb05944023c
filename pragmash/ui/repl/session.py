"""The REPL's prompt_toolkit session, built in one factory (as pgcli's ``_build_cli``).

Everything about the terminal lives here: completion, highlighting, key bindings,
the bottom toolbar and history. The factory takes ``input``/``output`` so tests can
drive the same session through a pipe without a terminal.

prompt_toolkit is imported when a session is built, not with this module: every
command imports the REPL through the CLI, and only ``repl`` and a debugged run use it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer
    from prompt_toolkit.document import Document
    from prompt_toolkit.formatted_text import AnyFormattedText, StyleAndTextTuples
    from prompt_toolkit.history import History
    from prompt_toolkit.input import Input
    from prompt_toolkit.lexers import Lexer
    from prompt_toolkit.output import Output
    from prompt_toolkit.styles import Style

    from pragmash.ui.repl.completion import ReplCompleter

from pragmash.language.vocabulary import STATEMENT_KEYWORDS
from pragmash.ui.repl.completion import DRIVER_COMMANDS
from pragmash.ui.repl.keys import build_key_bindings

PROMPT = "(pragmash) "


@functools.cache
def style() -> Style:
    """The REPL's colours (made on first use: prompt_toolkit loads with the session)."""
    from prompt_toolkit.styles import Style

    return Style.from_dict(
        {
            "command": "bold ansicyan",
            "keyword": "bold ansiblue",
            "driver": "ansimagenta",
            "target": "ansigreen",
            "variable": "ansiyellow",
            "string": "ansibrightgreen",
            "number": "ansibrightblue",
            "comment": "italic ansibrightblack",
            "bottom-toolbar": "noreverse bg:ansiblack ansiwhite",
            # the toolbar's colour says how the run stands (prompt_toolkit drops it for NO_COLOR)
            "toolbar.paused": "bg:ansiblue ansiwhite",
            "toolbar.ready": "bg:ansiblue ansiwhite",
            "toolbar.failed": "bg:ansired ansiwhite bold",
            "toolbar.interrupted": "bg:ansimagenta ansiwhite",
            "toolbar.finished": "bg:ansigreen ansiblack",
        }
    )


class Reader(Protocol):
    """Where the REPL's lines come from: a PromptSession, or a LineReader."""

    def prompt(self) -> str: ...


class LineReader:
    """Lines from a pipe or a file, when no person is at a terminal.

    prompt_toolkit on a pipe redraws its prompt and toolbar around every line; this
    writes the prompt once and then the line it read, so a transcript of piped
    commands reads like a session. End of input is EOFError, like Ctrl-D.
    """

    def __init__(self, stream: TextIO, out: TextIO) -> None:
        self.stream = stream
        self.out = out

    def prompt(self) -> str:
        self.out.write(PROMPT)
        try:
            line = self.stream.readline()
        except (OSError, ValueError):  # stdin closed or unreadable: as the end of input
            line = ""
        if not line:
            self.out.write("\n")
            self.out.flush()
            raise EOFError
        line = line.rstrip("\r\n")
        self.out.write(line + "\n")
        self.out.flush()
        return line


_TOKEN = re.compile(
    r"""
    (?P<comment>\#.*)
  | (?P<string>"(?:[^"\\]|\\.)*"?)
  | (?P<variable>\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\b\d+(?:\.\d+)?[smh]?\b)
  | (?P<target>\b(?:frontend|all|compute(?:\[[0-9:]*\]?)?)(?![\w/-]))
  | (?P<word>[A-Za-z_][\w/.-]*)
  | (?P<other>.)
    """,
    re.VERBOSE,
)


class RecipeLexer:
    """Colours a line as the REPL reads it: a command, or recipe statements split by ';'.

    prompt_toolkit's ``lex_document``, as a plain object; :func:`build_session` adapts it.
    """

    def __init__(self, commands: tuple[str, ...]) -> None:
        self.commands = commands

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines

        def get_line(number: int) -> StyleAndTextTuples:
            return self.lex_line(lines[number]) if number < len(lines) else []

        return get_line

    def lex_line(self, text: str) -> StyleAndTextTuples:
        """The (style, text) pieces of one line; the first word of each statement is its head."""
        out: StyleAndTextTuples = []
        head = True
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup or "other"
            piece = match.group(0)
            style = ""
            if kind == "word":
                if head and piece in self.commands:
                    style = "class:command"
                elif head and piece in STATEMENT_KEYWORDS:
                    style = "class:keyword"
                elif head and (
                    piece in DRIVER_COMMANDS or piece.startswith(("ve_driver/", "vc_driver/"))
                ):
                    style = "class:driver"
                elif piece in ("via", "timeout"):
                    style = "class:keyword"
                head = False
            elif kind == "other":
                if piece == ";":
                    head = True
            else:
                style = f"class:{kind}"
                head = False
            out.append((style, piece))
        return out


def build_session(
    history: History | None = None,
    input: Input | None = None,
    output: Output | None = None,
    *,
    completer: ReplCompleter | None = None,
    commands: tuple[str, ...] = (),
    toolbar: Callable[[], AnyFormattedText] | None = None,
) -> PromptSession[str]:
    """The REPL's PromptSession: completion, highlighting, key bindings, toolbar, history."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    return PromptSession(
        PROMPT,
        history=history or InMemoryHistory(),
        completer=_as_completer(completer) if completer is not None else None,
        complete_while_typing=False,
        lexer=_as_lexer(RecipeLexer(commands)),
        style=style(),
        key_bindings=build_key_bindings(),
        bottom_toolbar=toolbar,
        input=input,
        output=output,
        enable_history_search=True,
    )


def _as_completer(inner: ReplCompleter) -> Completer:
    """``inner`` as prompt_toolkit's Completer (whose base class adds the async half)."""
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion

    class Adapted(Completer):
        def get_completions(
            self, document: Document, complete_event: CompleteEvent
        ) -> Iterable[Completion]:
            return inner.get_completions(document, complete_event)

    return Adapted()


def _as_lexer(inner: RecipeLexer) -> Lexer:
    """``inner`` as prompt_toolkit's Lexer."""
    from prompt_toolkit.lexers import Lexer

    class Adapted(Lexer):
        def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
            return inner.lex_document(document)

    return Adapted()
