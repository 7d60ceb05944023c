"""The words of the recipe language, in one place.

The parser (its "unknown statement" message), the checker (fix methods, wait
states), the fixer (which methods it runs), the REPL's completer and the docs
tests all read these tuples, so a word added here is known everywhere at once and
no two lists can disagree about what a recipe may say.
"""

from __future__ import annotations

#: What may start a statement, as users write it; a driver prefix ends with ``/``.
STATEMENT_WORDS = (
    "allocate",
    "boot",
    "echo",
    "fix",
    "include",
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

#: The states ``wait TARGETS STATE`` can wait for: the engine's own domain states,
#: plus ``up`` (running, and one of the node's up tests passing: guest agent, login
#: prompt, TCP port, PRAGMASH-UP marker; see pragmash.driver_api.UpTest).
WAIT_STATES = ("paused", "running", "shut_off", "up")

#: The keyword of ``wait TARGETS console TEXT``, offered with the states.
WAIT_CONSOLE = "console"

#: Statement words that are followed by targets (completion offers nodes there).
TAKES_TARGETS = ("boot", "fix", "wait", "ve_driver/", "vc_driver/")
