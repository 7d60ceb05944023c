"""Waiting for nodes: an engine state, ``up``, or a line on the console; failing fast.

One waiter serves every ``wait TARGETS …`` statement (the engine driver only reports
states; it does not wait). ``up`` means running and passing any of the node's
:class:`~pragmash.driver_api.UpTest` s, which the distro driver declares and a site
may override per VC. A node that shuts off, crashes or disappears while it is waited
on (for anything but ``shut_off``) can never get there by itself, so the wait fails
at once with the node's state, why, and its console tail, instead of sleeping out
its timeout.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pragmash import domain_states, stages
from pragmash.driver_api import (
    DEFAULT_UP_TESTS,
    UP_MARKER,
    EngineDriver,
    NodePlan,
    UpTest,
)
from pragmash.engine.run.diskwork import NO_GUEST
from pragmash.errors import StepError

POLL_SECONDS = 1.0
CONSOLE_LINES = 5000  # the whole console of a boot, in practice: each boot starts the file afresh
TAIL_LINES = 10
#: States a node never leaves by itself: waiting on one for anything else is hopeless.
GONE_STATES = frozenset({domain_states.SHUT_OFF, domain_states.CRASHED, domain_states.ABSENT})

GoalKind = Literal["state", "up", "console"]


@dataclass(frozen=True)
class Goal:
    """What a wait waits for: an engine ``state`` (``running``, ``shut off``), ``up``,
    or ``console`` text (a literal, case-sensitive part of one console line)."""

    kind: GoalKind
    state: str = ""
    text: str = ""

    @property
    def label(self) -> str:
        if self.kind == "state":
            return self.state
        if self.kind == "up":
            return "up"
        return f"showing {self.text!r} on its console"


def port_answers(address: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``address:port`` is accepted (then closed at once)."""
    if not address:
        return False
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _console_proof(lines: Sequence[str], pattern: re.Pattern[str]) -> str | None:
    """The first console line ``pattern`` matches, up to the end of the match, as the
    proof a wait shows; None if no line does. What follows on that line (a first-boot
    unit's log just after getty's login prompt) is noise in a "reached" message."""
    for line in lines:
        if found := pattern.search(line):
            return f"console: {line[: found.end()].strip()}"
    return None


@dataclass
class Waiter:
    """Polls the engine until every node reaches the goal, fails fast, or times out.

    ``clock`` and ``sleep`` are injectable so tests run on a fake clock: no test
    depends on how fast this machine is.
    """

    engine: EngineDriver
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    progress: Callable[[float, float | None, str], None] = lambda _d, _t, _l: None
    connect: Callable[[str, int, float], bool] = port_answers
    default_up: tuple[UpTest, ...] = DEFAULT_UP_TESTS
    #: each node's (name, state, last console line, reached) every round, for a live view
    node_status: Callable[[str, str, str, bool], None] | None = None
    #: The run's decision (:class:`~pragmash.engine.run.diskwork.DiskWork`): no guest to ask.
    simulated: bool = False

    def wait(self, nodes: Sequence[NodePlan], goal: Goal, timeout: float) -> dict[str, str]:
        """Each node's name and how it reached the goal (``the QEMU guest agent answered``)."""
        start = self.clock()
        reached: dict[str, str] = {}
        pending = list(nodes)
        while True:
            still: list[NodePlan] = []
            for node in pending:
                how = self._check(node, goal)
                if how is None:
                    still.append(node)
                else:
                    reached[node.name] = how
            pending = still
            self._report(nodes, reached)
            elapsed = self.clock() - start
            done = len(nodes) - len(pending)
            self.progress(
                done,
                len(nodes),
                f"{done}/{len(nodes)} {goal.label}, {elapsed:.0f}s of {timeout:g}s",
            )
            if not pending:
                return reached
            if elapsed >= timeout:
                raise self._timed_out(pending, goal, timeout)
            self.sleep(min(POLL_SECONDS, max(0.05, timeout - elapsed)))

    def _report(self, nodes: Sequence[NodePlan], reached: dict[str, str]) -> None:
        if self.node_status is None:
            return
        for node in nodes:
            tail = self.engine.console_tail(node.name, 1)
            self.node_status(
                node.name,
                self.engine.state(node.name),
                tail[-1] if tail else "",
                node.name in reached,
            )

    # -- one node, one poll -----------------------------------------------------------

    def _check(self, node: NodePlan, goal: Goal) -> str | None:
        """How the node reached the goal, None if not yet; raises if it never will."""
        state = self.engine.state(node.name)
        if state == domain_states.UNKNOWN:
            return self._state_unknown(node, goal)
        if goal.kind == "state":
            if state == goal.state:
                return state
            if goal.state != domain_states.SHUT_OFF and state in GONE_STATES:
                raise self._gone(node, state, goal)
            return None
        if state in GONE_STATES:
            raise self._gone(node, state, goal)
        if state != domain_states.RUNNING:
            return None  # paused, starting, in shutdown: it may yet come up
        if self.simulated:
            return NO_GUEST
        lines = self.engine.console_tail(node.name, CONSOLE_LINES)
        if goal.kind == "console":  # literal text, not a pattern
            return _console_proof(lines, re.compile(re.escape(goal.text)))
        return self._up(node, lines)

    def _up(self, node: NodePlan, lines: list[str]) -> str | None:
        for test in node.up_tests or self.default_up:
            if test.kind == "agent" and self.engine.agent_answers(node.name):
                return "the QEMU guest agent answered"
            if test.kind == "console":
                proof = _console_proof(lines, re.compile(test.pattern))
                if proof is not None:
                    return proof
            if test.kind == "marker" and any(UP_MARKER in ln for ln in lines):
                return f"console: {UP_MARKER}"
            if test.kind == "port" and self.connect(node.address, test.port, 1.0):
                return f"TCP port {test.port} answered on {node.address}"
        return None

    def _state_unknown(self, node: NodePlan, goal: Goal) -> str | None:
        """A node whose engine cannot tell its state (a site's VE driver scripts).

        Only a TCP port test asks the guest without the engine: with one, ``up`` waits
        on it; without, no wait can ever pass, so it fails now, saying what would work,
        instead of sleeping out its timeout.
        """
        ports = [t for t in (node.up_tests or self.default_up) if t.kind == "port"]
        if goal.kind == "up" and ports:
            for test in ports:
                if self.connect(node.address, test.port, 1.0):
                    return f"TCP port {test.port} answered on {node.address}"
            return None
        why = self.engine.state_reason(node.name)
        raise StepError(
            f"{node.name}: its state is unknown ({why}), so waiting for it to be "
            f"{goal.label} can never pass",
            stage=stages.WAIT,
            hint=(
                "hold its nodes to a TCP port instead, which pragmash can test itself: "
                'in the site config, [up] VCNAME = ["port:22"], then `wait … up`'
                if goal.kind != "console"
                else "a script engine has no console to read: wait for a TCP port with "
                '[up] VCNAME = ["port:22"] and `wait … up`'
            ),
        )

    # -- failures ---------------------------------------------------------------------

    def _tail(self, name: str) -> list[str]:
        console = self.engine.console_tail(name, TAIL_LINES)
        return [f"{name} console: {line}" for line in console] or [f"{name}: no console output"]

    def _gone(self, node: NodePlan, state: str, goal: Goal) -> StepError:
        reason = self.engine.state_reason(node.name)
        why = f" ({reason})" if reason else ""
        return StepError(
            f"{node.name} is {state}{why} while waiting for it to be {goal.label}: "
            "it will not get there by itself",
            stage=stages.WAIT,
            output_tail=self._tail(node.name),
            hint=f"look at its console; `boot {node.name}` starts it again"
            if state != domain_states.ABSENT
            else f"`boot {node.name}` defines and starts it",
        )

    def _timed_out(self, pending: list[NodePlan], goal: Goal, timeout: float) -> StepError:
        states = [f"{n.name}: {self.engine.state(n.name)}" for n in pending]
        held = ""
        if goal.kind == "up" and not self.simulated:
            tests = pending[0].up_tests or self.default_up
            held = " (held to: " + ", or ".join(t.describe() for t in tests) + ")"
        tail: list[str] = []
        for node in pending:
            tail += self._tail(node.name)
        names = ", ".join(n.name for n in pending)
        return StepError(
            f"timed out after {timeout:g} s waiting for {names} to be {goal.label}{held}; "
            + "; ".join(states),
            stage=stages.WAIT,
            output_tail=tail,
        )
