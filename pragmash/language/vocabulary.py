"""The words of the recipe language, in one place.

The parser (its "unknown statement" message), the checker (fix methods, wait
states), the fixer (which methods it runs), the REPL's completer and the docs
tests all read these tuples, so a word added here is known everywhere at once and
no two lists can disagree about what a recipe may say.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: What may start a statement, as users write it; a driver prefix ends with ``/``.
STATEMENT_WORDS = (
    "allocate",
    "boot",
    "echo",
    "exec",
    "fix",
    "include",
    "on",
    "param",
    "run",
    "set",
    "wait",
    "ve_driver/",
    "vc_driver/",
)

#: The statement keywords alone, without the driver prefixes.
STATEMENT_KEYWORDS = tuple(w for w in STATEMENT_WORDS if not w.endswith("/"))

#: The methods ``fix TARGETS via METHOD`` knows (``ve_driver/fix`` runs them).
FIX_METHODS = ("none", "virt-customize", "virt-v2v")

#: What ``ve_driver/fix TARGETS`` fixes with when no method is given (the seed's).
DEFAULT_FIX_METHOD = "virt-v2v"

#: How long ``wait TARGETS STATE`` and ``wait TARGETS console TEXT`` wait without
#: ``timeout``: what the plan shows, what the run waits.
DEFAULT_WAIT_TIMEOUT = "5m"

#: How long ``exec TARGETS "COMMAND"`` lets the command run without ``timeout``.
DEFAULT_EXEC_TIMEOUT = "5m"

#: What ``on EVENT STATEMENT`` may name: the scale runs that run the statement.
SCALE_EVENTS = ("grow", "shrink")

#: The variable ``allocate`` without a count reads (``0`` when it is not set).
ALLOCATE_COUNT_VARIABLE = "num_compute"

#: The states ``wait TARGETS STATE`` can wait for: the engine's own domain states,
#: plus ``up`` (running, and one of the node's up tests passing: guest agent, login
#: prompt, TCP port, PRAGMASH-UP marker; see pragmash.driver_api.UpTest).
WAIT_STATES = ("paused", "running", "shut_off", "up")

#: The keyword of ``wait TARGETS console TEXT``, offered with the states.
WAIT_CONSOLE = "console"

#: Statement words that are followed by targets (completion offers nodes there).
TAKES_TARGETS = ("boot", "exec", "fix", "wait", "ve_driver/", "vc_driver/")


#: What ``run`` and ``exec`` are refused with unless the site or the command line allows
#: them: one gate for every command a recipe runs (on the host or inside a guest).
COMMANDS_REFUSED = (
    "recipes may not run commands (on the host or inside guests) unless the site config "
    "sets [policy] allow_run = true or the command line says --allow-run"
)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest known word, or nothing: ends an error message."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
