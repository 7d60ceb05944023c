"""The process trees of the host commands a run started, and how to end them all.

Apart from :mod:`pragmash.engine.steps.host_command` so that the CLI's exit path (a Ctrl-C,
:mod:`pragmash.ui.cli.main` and :mod:`~pragmash.ui.cli.interrupts`) can end them
without importing the engine: ``pragmash --help`` and ``list`` load only the standard
library here. Linux ``/proc`` tells which processes a session holds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

_PROC = Path("/proc")
RUNNING: set[int] = set()  # the session leaders of the commands running now
RUNNING_LOCK = threading.RLock()  # re-entrant: a signal handler may take it


def _processes() -> Iterator[tuple[int, int, int]]:
    """Every process's (pid, parent pid, session id) now, from Linux /proc (none where
    there is no /proc; one gone since the listing, or not ours to read, is skipped)."""
    for entry in _PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3:
            yield int(entry.name), int(fields[1]), int(fields[3])


def session_members(sid: int) -> list[int]:
    """The pids whose session is ``sid``."""
    return [pid for pid, _parent, session in _processes() if session == sid]


def end_process_tree(leader: int) -> None:
    """SIGKILL everything in the session that ``leader`` leads: its group, then the rest."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(leader, signal.SIGKILL)  # not yet a group leader (a child before its setsid)
    for pid in session_members(leader):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def children() -> set[int]:
    """This process's children now."""
    me = os.getpid()
    return {pid for pid, parent, _session in _processes() if parent == me}


def own_session_leaders() -> list[int]:
    """This process's children that lead a session of their own: its host commands.

    Found in /proc, so a command whose start a Ctrl-C cut short (the child exists, but
    Popen raised before its pid was known or recorded) is found too.
    """
    me = os.getpid()
    return [pid for pid, parent, session in _processes() if parent == me and session == pid]


def end_running_commands() -> None:
    """End every host command running now, with its process tree (for a hurried exit).

    A Ctrl-C that lands meanwhile (the next of several quick ones) does not cut it
    short: the commands would outlive the process, and the exit would be a traceback.
    """
    while True:
        try:
            with RUNNING_LOCK:
                leaders = set(RUNNING) | set(own_session_leaders())
            for leader in leaders:
                end_process_tree(leader)
            return
        except KeyboardInterrupt:
            continue


def end_surely(leader: int) -> None:
    """:func:`end_process_tree`, done even when another Ctrl-C lands while it works
    (two quick ones would otherwise cut the first one's clean-up short, and the
    command, no longer recorded as running, would outlive the run)."""
    while True:
        try:
            end_process_tree(leader)
            return
        except KeyboardInterrupt:
            continue
