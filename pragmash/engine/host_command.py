"""The ``run`` statement's host command: argv straight to exec, never through a shell.

Recipe values end up in ``argv``; with no shell there is nothing for them to
inject into. Output goes to the step's reporter line by line and the last lines
travel with a failure, so the front end can show why the command failed.

The command starts in a session of its own, so a step stopped half-way (Ctrl-C,
``clean --force``, the step's time limit) ends the command's whole process tree:
its process group, and every process left in its session (a ``timeout`` or a
shell inside the command may have moved its children to a group of their own).
Only a daemon that leaves the session on purpose (``setsid``) escapes. A front
end that must leave at once (a third Ctrl-C skips all clean-up) calls
:func:`end_running_commands` first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pragmash import stages
from pragmash.engine.interpreter import StepOutcome, StepReporter
from pragmash.errors import StepError

RUN_TIMEOUT = 600.0
#: How long an ended command's output is waited for once its processes are killed.
REAP_SECONDS = 5.0
_PROC = Path("/proc")
_running: set[int] = set()  # the session leaders of the commands running now
_running_lock = threading.RLock()  # re-entrant: a signal handler may take it


def _session_members(sid: int) -> list[int]:
    """The pids whose session is ``sid`` (Linux /proc; [] where there is no /proc)."""
    members: list[int] = []
    for entry in _PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing, or not ours to read
            continue
        # "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def end_process_tree(leader: int) -> None:
    """SIGKILL everything in the session that ``leader`` leads: its group, then the rest."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(leader, signal.SIGKILL)  # not yet a group leader (a child before its setsid)
    for pid in _session_members(leader):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _children() -> set[int]:
    """This process's children now (Linux /proc)."""
    me = os.getpid()
    found: set[int] = set()
    for entry in _PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.add(int(entry.name))
    return found


def _own_session_leaders() -> list[int]:
    """This process's children that lead a session of their own: its host commands.

    Found in /proc, so a command whose start a Ctrl-C cut short (the child exists, but
    Popen raised before its pid was known or recorded) is found too.
    """
    me = os.getpid()
    leaders: list[int] = []
    for entry in _PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[1]) == me and int(fields[3]) == int(entry.name):
            leaders.append(int(entry.name))
    return leaders


def end_running_commands() -> None:
    """End every host command running now, with its process tree (for a hurried exit).

    A Ctrl-C that lands meanwhile (the next of several quick ones) does not cut it
    short: the commands would outlive the process, and the exit would be a traceback.
    """
    while True:
        try:
            with _running_lock:
                leaders = set(_running) | set(_own_session_leaders())
            for leader in leaders:
                end_process_tree(leader)
            return
        except KeyboardInterrupt:
            continue


def _end_surely(leader: int) -> None:
    """:func:`end_process_tree`, done even when another Ctrl-C lands while it works
    (two quick ones would otherwise cut the first one's clean-up short, and the
    command, no longer recorded as running, would outlive the run)."""
    while True:
        try:
            end_process_tree(leader)
            return
        except KeyboardInterrupt:
            continue


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: its exit status and what it wrote."""

    returncode: int
    stdout: str
    stderr: str


def run_argv(
    argv: Sequence[str], *, timeout: float, stage: str, stdin: bytes | None = None
) -> Finished:
    """Run ``argv`` (no shell) to its end, whatever its status; ``stdin`` fed to it, else
    closed. A StepError when it cannot start or outlives ``timeout`` (then it is ended
    with every process it started, as a Ctrl-C ends it)."""
    before = _children()  # a Ctrl-C inside Popen: the new child is the one not here
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with _running_lock:
            _running.add(proc.pid)
    except FileNotFoundError:
        raise StepError(f"command not found: {argv[0]}", stage=stage) from None
    except BaseException:  # a Ctrl-C as the command started: it may exist, unrecorded
        for pid in _children() - before:  # even before its setsid: killed as it stands
            end_process_tree(pid)
        end_running_commands()
        raise
    with proc:
        try:
            stdout, stderr = proc.communicate(stdin, timeout=timeout)
        except BaseException as exc:  # the time limit, Ctrl-C, a forced clean's SIGINT
            _end_surely(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
                proc.communicate(timeout=REAP_SECONDS)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise StepError(
                    f"{argv[0]} did not end within {timeout:g} s: stopped, with every"
                    " process it started",
                    stage=stage,
                ) from None
            raise
        finally:
            with _running_lock:
                _running.discard(proc.pid)
    return Finished(
        proc.returncode,
        stdout.decode("utf-8", errors="replace"),
        stderr.decode("utf-8", errors="replace"),
    )


def run_host_command(argv: Sequence[str], reporter: StepReporter) -> StepOutcome:
    """Run ``argv`` to its end; exit 0 is done, anything else a StepError with the tail."""
    done = run_argv(argv, timeout=RUN_TIMEOUT, stage=stages.RUN)
    stdout, stderr = done.stdout, done.stderr
    for line in (stdout + stderr).splitlines():
        reporter.note(line)
    if done.returncode != 0:
        tail = (stdout + stderr).splitlines()[-20:]
        raise StepError(
            f"{argv[0]} exited with status {done.returncode}", stage=stages.RUN, output_tail=tail
        )
    return StepOutcome("done", f"{argv[0]} exited 0")
