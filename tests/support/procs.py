"""Find the processes a test started indirectly (a step's host command and its children).

Importable by tests: ``from support.procs import live_with, kill_all``. A process is found by a
marker in its command line; zombies (killed, not yet reaped) have none and do not count.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def live_with(marker: str) -> list[int]:
    """The pids of live processes whose command line holds ``marker``."""
    found: list[int] = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in argv and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def started(marker: str, wait: float = 10.0) -> bool:
    """True once a live process holds ``marker``: a step shows ``running`` in the journal
    before it does anything (its start is written first), so its command follows."""
    deadline = time.monotonic() + wait
    while not live_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def gone(marker: str, wait: float = 10.0) -> bool:
    """True once no live process holds ``marker`` (SIGKILL lands when the kernel next runs it)."""
    deadline = time.monotonic() + wait
    while live_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_all(marker: str) -> None:
    """A failed test's leftovers, ended so they do not outlive it (only ours carry the marker)."""
    for pid in live_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
