"""Waiting: a clock wait with progress, and waiting for nodes to reach a state.

Both poll through an injectable ``sleep`` so tests run them without real time,
and both report progress on every round, so a long wait never looks hung. On a
timeout the error carries each pending node's state and console tail: what a
site administrator needs to see why a node never came up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pragmash.driver_api import EngineDriver, NodePlan
from pragmash.engine.interpreter import StepOutcome, StepReporter
from pragmash.errors import StepError

#: What a booted guest prints on its serial console; ``wait … up`` looks for it.
UP_MARKER = "PRAGMASH-UP"


def sleep_with_progress(
    seconds: float, reporter: StepReporter, sleep: Callable[[float], None]
) -> None:
    """Sleep ``seconds`` in short rounds, reporting progress after each."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        reporter.progress(elapsed, seconds, "waiting")
        sleep(min(0.5, seconds - elapsed))
    reporter.progress(seconds, seconds, "waiting")


def wait_for_state(
    engine: EngineDriver,
    nodes: Sequence[NodePlan],
    state: str,
    timeout: float,
    reporter: StepReporter,
    sleep: Callable[[float], None],
) -> StepOutcome:
    """Poll until every node is in ``state`` (``up``: running and its marker seen)."""
    wanted = state.replace("_", " ")
    up = wanted == "up"
    if up and engine.simulated:
        wanted = "running"
    start = time.monotonic()
    pending = [n.name for n in nodes]
    while True:
        pending = [name for name in pending if not _reached(engine, name, wanted)]
        elapsed = time.monotonic() - start
        done = len(nodes) - len(pending)
        reporter.progress(
            done, len(nodes), f"{done}/{len(nodes)} {state}, {elapsed:.0f}s of {timeout:g}s"
        )
        if not pending:
            msg = f"{len(nodes)} node(s) {state} after {elapsed:.1f} s"
            if up and engine.simulated:
                msg += " (simulated engine: 'up' taken as 'running')"
            return StepOutcome("done", msg)
        if elapsed >= timeout:
            lines = []
            tail: list[str] = []
            for name in pending:
                lines.append(f"{name}: {engine.state(name)}")
                console = engine.console_tail(name, 10)
                tail += [f"{name} console: {line}" for line in console] or [
                    f"{name}: no console output"
                ]
            raise StepError(
                f"timed out after {timeout:g} s waiting for {', '.join(pending)} to be {state}; "
                + "; ".join(lines),
                stage="ve_driver/wait",
                output_tail=tail,
            )
        sleep(min(1.0, max(0.05, timeout - elapsed)))


def _reached(engine: EngineDriver, name: str, wanted: str) -> bool:
    current = engine.state(name)
    if wanted == "up":
        if current != "running":
            return False
        return any(UP_MARKER in line for line in engine.console_tail(name, 200))
    return current == wanted
