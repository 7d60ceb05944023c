"""Tab completion for the REPL: debugger commands and recipe statements in one line.

The completer knows the words of the language (statement keywords, targets, driver
commands) and asks the REPL, through two callables, for what only a run knows: its
node names and its variables. It holds no state of its own, so it is tested with a
plain :class:`~prompt_toolkit.document.Document`.

It is a plain object with prompt_toolkit's ``get_completions``: importing it (as every
command does, through the CLI) does not load prompt_toolkit; the session
(:func:`~pragmash.ui.repl.session.build_session`) adapts it to a ``Completer``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent, Completion
    from prompt_toolkit.document import Document

from pragmash.driver_api import VC_COMMANDS, VE_COMMANDS
from pragmash.language.ast import STATEMENT_KINDS
from pragmash.language.vocabulary import (
    FIX_METHODS,
    STATEMENT_KEYWORDS,
    TAKES_TARGETS,
    WAIT_CONSOLE,
    WAIT_STATES,
)

TARGET_WORDS = ("frontend", "compute", "compute[", "all")
DRIVER_COMMANDS = tuple(
    [f"ve_driver/{c}" for c in sorted(VE_COMMANDS)]
    + [f"vc_driver/{c}" for c in sorted(VC_COMMANDS)]
)
SHOW_TOPICS = ("vc-out", "nodes", "node", "vars", "journal", "leases")
NODE_FLAGS = ("--xml", "--console")

# the word being typed: anything up to the last blank or ';'
_CURRENT = re.compile(r"[^\s;]*$")
_VARIABLE = re.compile(r"\$\{?([A-Za-z0-9_]*)$")


class ReplCompleter:
    """Completes the word before the cursor from what fits at that place in the line."""

    def __init__(
        self,
        commands: Sequence[str],
        nodes: Callable[[], Iterable[str]] = lambda: (),
        variables: Callable[[], Iterable[str]] = lambda: (),
        computes: Callable[[], int] = lambda: 0,
        help_topics: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self.commands = tuple(commands)
        self.nodes = nodes
        self.variables = variables
        self.computes = computes
        self.help_topics = help_topics

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        from prompt_toolkit.completion import Completion

        before = document.text_before_cursor
        statement = before.rsplit(";", 1)[-1]
        match = _CURRENT.search(statement)
        word = match.group(0) if match else ""
        previous = statement[: len(statement) - len(word)].split()
        for candidate, meta in self._candidates(word, previous):
            if candidate.startswith(word) and candidate != word:
                yield Completion(candidate, start_position=-len(word), display_meta=meta)

    def _candidates(self, word: str, previous: list[str]) -> list[tuple[str, str]]:
        var = _VARIABLE.search(word)
        if var is not None:
            head = word[: var.start()]
            braced = word[var.start() :].startswith("${")
            return [
                (f"{head}${{{name}}}" if braced else f"{head}${name}", "variable")
                for name in sorted(self.variables())
            ]
        if not previous:
            return (
                [(c, "command") for c in self.commands]
                + [(k, "statement") for k in STATEMENT_KEYWORDS]
                + [(d, "driver stage") for d in DRIVER_COMMANDS]
            )
        first = previous[0]
        if first in ("help", "h", "?"):
            if len(previous) > 1:
                return []
            words = [(c, "command") for c in self.commands]
            return words + [(t, "language") for t in self.help_topics()] + [("error", "last error")]
        if first == "show":
            if len(previous) == 1:
                return [(t, "show") for t in SHOW_TOPICS]
            if previous[1] == "node" and len(previous) == 2:
                return self._targets(word)
            if previous[1] == "node" and len(previous) == 3:
                return [(f, "flag") for f in NODE_FLAGS]
            return []
        if first == "watch":
            return [("nodes", "watch")] if len(previous) == 1 else []
        if first in ("break", "b", "clear"):
            return [(k, "statement kind") for k in STATEMENT_KINDS] if len(previous) == 1 else []
        if first == "fix" and len(previous) >= 2:
            if previous[-1] == "via":
                return [(m, "method") for m in FIX_METHODS]
            return [("via", "keyword"), *self._targets(word)]
        if first == "wait" and len(previous) >= 2:
            if previous[-1] in ("timeout", WAIT_CONSOLE):
                return []  # a duration, or the console text: nothing to offer
            states = [(s, "state") for s in WAIT_STATES]
            return [
                *states,
                (WAIT_CONSOLE, "keyword"),
                ("timeout", "keyword"),
                *self._targets(word),
            ]
        if first.startswith(TAKES_TARGETS) or first in TAKES_TARGETS:
            return self._targets(word)
        return []

    def _targets(self, word: str = "") -> list[tuple[str, str]]:
        """Target words and node names; after ``compute[`` the run's compute indices."""
        if word.startswith("compute["):
            count = self.computes()
            return [(f"compute[{i}]", "compute") for i in range(count)] + [
                (f"compute[{i}:]", "slice") for i in range(1, count)
            ]
        return [(t, "target") for t in TARGET_WORDS] + [(n, "node") for n in self.nodes()]
