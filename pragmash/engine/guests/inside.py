"""Reaching inside a VC's running nodes: the ``exec`` statement, and the way ``refresh``
puts files in.

Every node is reached the same way (:class:`GuestReach`): its QEMU guest agent first
(:mod:`~pragmash.engine.guests.agent`: nothing to install but the agent the image
already has, no network needed, computes reached without the frontend), else ssh with
the VC's key (:mod:`~pragmash.engine.guests.ssh`); a node neither reaches is named with
why each way failed. Neither way uses a shell with a recipe's words: the agent gets a
path and arguments, ssh gets each word quoted.

``exec`` runs on its nodes at the same time (a command on 32 computes takes the time
of the slowest), each with the statement's time limit; each node's output is a note
of the step as the node ends (prefixed with the node's name when there are several),
and the journal keeps each node's exit status and last lines of output. The step
fails when a node cannot be reached or its command exits with a status other than 0.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TypeVar

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import EngineDriver, GuestAgents, NodePlan
from pragmash.engine.commands.access import VcAccess
from pragmash.engine.guests.agent import Clock, GuestRun, agent_exec, agent_write_file
from pragmash.engine.guests.ssh import ssh_exec, ssh_write_file
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.errors import AgentUnreachable, StepError, UserError
from pragmash.textsafe import printable

#: At most this many nodes are worked on at once.
WORKERS = 16
#: Lines of each node's output the journal keeps (the screen shows them all).
JOURNAL_LINES = 20
#: How long putting one file in over ssh may take.
SSH_WRITE_TIMEOUT = 60.0

T = TypeVar("T")

AGENT = "guest agent"
SSH = "ssh"


@dataclass
class GuestReach:
    """How one VC's nodes are reached from a step: the guest agent, else ssh.

    ``access`` is called (once) only when a node needs ssh: a VC whose agents answer
    never reads its ssh settings.
    """

    engine: EngineDriver
    access: Callable[[], VcAccess]
    clock: Clock

    def __post_init__(self) -> None:
        self.access = functools.cache(self.access)

    def _agent(self) -> GuestAgents | None:
        return self.engine if isinstance(self.engine, GuestAgents) else None

    def _ssh_access(self, name: str, agent_said: str, what: str) -> VcAccess:
        try:
            return self.access()
        except UserError as err:
            raise StepError(
                f"{name}: cannot {what}: {agent_said}; and no ssh: {err.message}", stage=stages.EXEC
            ) from None

    def exec(self, name: str, argv: Sequence[str], timeout: float) -> tuple[GuestRun, str]:
        """``argv`` run inside node ``name``; with the way it went (:data:`AGENT`, :data:`SSH`)."""
        agent = self._agent()
        said = "the engine passes no guest agent commands"
        if agent is not None:
            try:
                return agent_exec(agent, name, argv, timeout, self.clock), AGENT
            except AgentUnreachable as err:
                said = err.message
        access = self._ssh_access(name, said, f"run {argv[0]}")
        try:
            return ssh_exec(access, name, argv, timeout), SSH
        except StepError as err:
            raise StepError(
                f"{name}: neither its guest agent nor ssh reached it ({said}; {err.message})",
                stage=stages.EXEC,
                output_tail=err.output_tail,
            ) from None

    def write_file(self, name: str, path: str, data: bytes) -> str:
        """Put ``data`` at ``path`` inside node ``name``; how, in words."""
        agent = self._agent()
        said = "the engine passes no guest agent commands"
        if agent is not None:
            try:
                return agent_write_file(agent, name, path, data, self.clock)
            except AgentUnreachable as err:
                said = err.message
        access = self._ssh_access(name, said, f"write {path}")
        try:
            return ssh_write_file(access, name, path, data, SSH_WRITE_TIMEOUT)
        except StepError as err:
            raise StepError(
                f"{name}: neither its guest agent nor ssh reached it ({said}; {err.message})",
                stage=stages.REFRESH,
                output_tail=err.output_tail,
            ) from None


def at_once(names: Sequence[str], work: Callable[[str], T]) -> dict[str, Future[T]]:
    """``work(name)`` for every node at the same time, as futures (in ``names``' order)."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(names))))
    try:
        return {name: pool.submit(work, name) for name in names}
    finally:
        pool.shutdown(wait=False)


def require_running(engine: EngineDriver, names: Sequence[str], program: str) -> None:
    """A StepError naming the nodes that are not running (nothing runs in them)."""
    not_running = {n: s for n in names if (s := engine.state(n)) != domain_states.RUNNING}
    if not_running:
        raise StepError(
            f"cannot run {program} in "
            + ", ".join(f"{n} ({state})" for n, state in not_running.items())
            + ": not running",
            stage=stages.EXEC,
            hint="boot it first (`pragmash start VCNAME` starts a stopped VC)",
        )


def exec_on_nodes(
    reach: GuestReach,
    nodes: Sequence[NodePlan],
    argv: Sequence[str],
    timeout: float,
    reporter: StepReporter,
) -> StepOutcome:
    """The ``exec`` statement's work (see the module docstring)."""
    shown = shlex.join(argv)
    if not nodes:
        return StepOutcome(outcomes.SKIPPED, "no nodes selected (the VC has no such nodes)")
    names = [n.name for n in nodes]
    require_running(reach.engine, names, argv[0])
    several = len(names) > 1
    futures = at_once(names, lambda name: reach.exec(name, argv, timeout))
    ran: dict[str, tuple[GuestRun, str]] = {}
    failed: dict[str, StepError] = {}
    for future in as_completed(futures.values()):
        name = next(n for n, f in futures.items() if f is future)
        try:
            ran[name] = future.result()
        except StepError as err:
            failed[name] = err
            continue
        for line in ran[name][0].output.splitlines():
            reporter.note(f"{name}: {printable(line)}" if several else printable(line))
    products: dict[str, str] = {}
    tail: list[str] = []
    bad: list[str] = []
    for name in names:
        if name in failed:
            products[name] = failed[name].message
            bad.append(failed[name].message)
            tail += failed[name].output_tail
            continue
        run, via = ran[name]
        products[name] = f"exit {run.exit_code} ({via})"
        lines = [printable(line) for line in run.output.splitlines()][-JOURNAL_LINES:]
        if lines:
            products[f"{name} output"] = "\n".join(lines)
        if run.exit_code != 0:
            ended = f"signal {run.signal}" if run.signal is not None else f"status {run.exit_code}"
            bad.append(f"{name}: {argv[0]} ended with {ended} ({via})")
            tail += [f"{name}: {line}" if several else line for line in lines]
    if bad:
        raise StepError(
            f"exec {shown}: " + "; ".join(bad), stage=stages.EXEC, output_tail=tail[-40:]
        )
    ways = ", ".join(f"{n} ({ran[n][1]})" for n in names)
    return StepOutcome(outcomes.DONE, f"{argv[0]} exited 0 on {ways}", products)
