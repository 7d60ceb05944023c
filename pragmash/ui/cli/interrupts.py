"""Ctrl-C at the command line: the first two interrupt, the third exits 130 at once.

The first Ctrl-C stops the step; pragmash then cleans up (lets boot workers end,
writes the journal, gives the VC's lock back). An impatient second Ctrl-C cuts that
short where it can. A third must not end in a traceback and a process killed by
SIGINT (which scripts see as a crash, not as "interrupted"): it says so and exits
130 at once, and whatever clean-up was left is what ``resume`` and ``status`` see
of a killed run. A Ctrl-C once the command is done, while Python shuts down,
exits 130 the same way.

Only the real entry point installs this (signal handlers belong to the process's
main thread, not to a test calling :func:`pragmash.ui.cli.main.main`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from types import FrameType
from typing import TextIO

from pragmash.engine.steps.process_trees import end_running_commands
from pragmash.errors import EXIT_INTERRUPTED

#: The Ctrl-C that exits at once instead of raising KeyboardInterrupt.
PATIENCE = 3


class InterruptCounter:
    """A SIGINT handler: KeyboardInterrupt for the first ones, then exit 130 at once."""

    def __init__(self, err: TextIO, *, patience: int = PATIENCE) -> None:
        self.err = err
        self.patience = patience
        self.count = 0
        self.done = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.done or self.count >= self.patience:
            self.exit_now()
        raise KeyboardInterrupt

    def exit_now(self) -> None:
        """Leave now: flush what was said, skip the rest of the clean-up, exit 130.

        A host command (``run``) still going is ended first, with what it started:
        nothing would be left to wait for it, and it would run on.
        """
        end_running_commands()
        if not self.done:
            self.err.write(
                f"interrupted {self.count} times: exiting now without finishing the clean-up; "
                "`pragmash status VCNAME` shows where the run stopped, "
                "`pragmash resume VCNAME` continues it\n"
            )
        for stream in (sys.stdout, self.err):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say
                stream.flush()
        os._exit(EXIT_INTERRUPTED)


def install(err: TextIO) -> InterruptCounter:
    """Make this process's Ctrl-C an :class:`InterruptCounter` (main thread only).

    Python's own shutdown puts the default SIGINT action back near its very end, where
    a late Ctrl-C would kill the process; an exit hook ignores SIGINT instead
    (exit hooks run after the threads were waited for: nothing is left to wait for).
    """
    counter = InterruptCounter(err)
    signal.signal(signal.SIGINT, counter)
    atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    return counter
