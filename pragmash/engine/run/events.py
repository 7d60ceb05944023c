"""Events the interpreter emits; front ends turn them into lines, bars and toolbars.

The interpreter and runtime never print: everything a user may want to see goes
through one of these, so the CLI, the REPL and the tests all see the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pragmash.errors import PragmashError
from pragmash.language.ast import Statement


@dataclass(frozen=True)
class StepStarted:
    index: int
    statement: Statement


@dataclass(frozen=True)
class StepFinished:
    """A step ended well: ``outcome`` is ``done`` or ``skipped`` (with the reason in ``message``)."""

    index: int
    statement: Statement
    outcome: str
    duration: float
    message: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class StepFailed:
    index: int
    statement: Statement
    error: PragmashError
    duration: float
    interrupted: bool = False


@dataclass(frozen=True)
class Output:
    """A line for the user: ``echo`` output or a driver's note."""

    index: int
    text: str


@dataclass(frozen=True)
class Progress:
    """Long work under way: ``done`` of ``total`` (None when unknown) units, with a label."""

    index: int
    done: float
    total: float | None
    label: str


@dataclass(frozen=True)
class NodeProgress:
    """One node's state while a step works on it (``boot``, ``wait``), for a live view.

    (A node's line of ``pragmash status``, engine against ledger, is another thing:
    :class:`pragmash.engine.commands.lifecycle.NodeStatus`.)

    ``detail`` is what the node is doing or last said (a stage, its last console
    line); ``reached`` is true once the node is where the step wants it.
    """

    index: int
    node: str
    state: str
    detail: str = ""
    reached: bool = False


Event = StepStarted | StepFinished | StepFailed | Output | Progress | NodeProgress
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The sink used when nobody listens."""
