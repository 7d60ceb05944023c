"""Waiting: a clock wait with progress, and waiting for nodes to reach a goal.

Both poll through an injectable ``sleep`` so tests run them without real time,
and both report progress on every round, so a long wait never looks hung. What a
goal (a state, ``up``, console text) means, failing fast and the timeout's error
are :mod:`~pragmash.engine.steps.readiness`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pragmash import outcomes
from pragmash.driver_api import EngineDriver, NodePlan
from pragmash.engine.run.diskwork import DiskWork
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.steps.readiness import Goal, Waiter


def sleep_with_progress(
    seconds: float, reporter: StepReporter, sleep: Callable[[float], None]
) -> None:
    """Sleep ``seconds`` in short rounds, reporting progress after each."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        reporter.progress(elapsed, seconds, "waiting")
        sleep(min(0.5, seconds - elapsed))
    reporter.progress(seconds, seconds, "waiting")


def wait_for_goal(
    engine: EngineDriver,
    nodes: Sequence[NodePlan],
    goal: Goal,
    timeout: float,
    reporter: StepReporter,
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    *,
    disk_work: DiskWork,
) -> StepOutcome:
    """Wait until every node reaches ``goal`` (see :mod:`~pragmash.engine.steps.readiness`).

    The step's message says how each node got there (``the QEMU guest agent
    answered``), so a run's output shows which sign of life a guest gave.
    """
    start = clock()
    waiter = Waiter(
        engine,
        sleep=sleep,
        clock=clock,
        progress=reporter.progress,
        node_status=(lambda name, state, line, done: reporter.node(name, state, line, reached=done))
        if reporter.node_status
        else None,
        simulated=disk_work.simulated,
    )
    reached = waiter.wait(nodes, goal, timeout)
    elapsed = clock() - start
    msg = f"{len(nodes)} node(s) {'up' if goal.kind == 'up' else goal.label} after {elapsed:.1f} s"
    if goal.kind != "state" and disk_work.simulated:
        msg += disk_work.taken_as_running(goal.kind)
    elif goal.kind != "state":
        hows = sorted(set(reached.values()))
        if len(hows) == 1:
            msg += f" ({hows[0]})"
        else:
            msg += " (" + "; ".join(f"{n}: {h}" for n, h in reached.items()) + ")"
    return StepOutcome(outcomes.DONE, msg, dict(reached))
