"""The process trees of the host commands a run started, and how to end them all.

Apart from :mod:`pragmash.engine.steps.host_command` so that the CLI's exit path (a Ctrl-C,
:mod:`pragmash.ui.cli.main` and :mod:`~pragmash.ui.cli.interrupts`) can end them
without importing the engine: ``pragmash --help`` and ``list`` load only the standard
library here. Linux ``/proc`` tells which processes a session holds.

A pragmash killed with SIGKILL runs no clean-up at all, so a small watchdog process
(:func:`announce`, :func:`watch`) holds the other end of a pipe and the list of running
commands: when pragmash dies, however it dies, the kernel closes the pipe and the
watchdog ends every command still on its list. A command is named by a mark in its
environment (told before it starts, so one started a moment before pragmash died is
found too) and by its pid *and* start time, so a pid the kernel has since given to
another process is never hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
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


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc's field 22), None if no such
    process: with the pid, it names one process for good, as a pid alone does not."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # field 3 ("state") is fields[0]
    return int(fields[19]) if len(fields) > 19 else None


def end_recorded(leader: int, started: int) -> None:
    """End the session ``leader`` led when it started at ``started``; nothing if the pid is
    now another process's. A leader already gone leaves its session's pid taken while any
    member lives (the kernel frees a pid only when no process, group or session uses it),
    so the members still found under it are the command's own."""
    now = start_time(leader)
    if now is None or now == started:
        end_process_tree(leader)


#: In each command's environment: the mark the watchdog finds it by, should this process
#: die between starting the command and learning its pid.
MARK_VARIABLE = "PRAGMASH_COMMAND"


def marked_sessions(marks: set[str]) -> set[int]:
    """The sessions of the processes whose environment holds one of ``marks``."""
    wanted = {f"{MARK_VARIABLE}={mark}".encode() for mark in marks}
    found: set[int] = set()
    for pid, _parent, session in _processes():
        try:
            environ = (_PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if wanted & set(environ.split(b"\0")):
            found.add(session)
    return found


class _Watchdog:
    """The watchdog process, started with the first command and told of each one.

    One line per change on its stdin: ``? MARK`` just before a command is started (its
    environment will hold the mark), ``+ MARK PID START`` once it is, ``- MARK`` when it
    has ended. The pipe's write end is this process's alone (not inherited by commands:
    Python's pipes close on exec).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.fd = -1
        self.count = 0
        self.watched: dict[str, str] = {}  # mark -> its latest line

    def _start(self) -> None:
        # the folder the package is in, for the watchdog's own interpreter
        root = str(Path(__file__).resolve().parents[__name__.count(".")])
        read_end, write_end = os.pipe()
        try:
            pid = os.posix_spawn(
                sys.executable,
                # isolated and without site: the watchdog needs nothing but this module
                [sys.executable, "-I", "-S", "-c", _WATCHDOG_MAIN, root, __name__],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    # pragmash's output ends when pragmash does, not when the watchdog does
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ],
                setpgroup=0,  # a group of its own: a Ctrl-C at the terminal is not for it
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self.pid, self.fd = pid, write_end
        for line in self.watched.values():  # a new watchdog: told of every one
            os.write(self.fd, line.encode())

    def tell(self, mark: str, line: str | None) -> None:
        """Record ``line`` for ``mark`` (None: forget it) and send it; a watchdog killed
        meanwhile is replaced, and told everything."""
        with self.lock:
            if line is None:
                if self.watched.pop(mark, None) is None:
                    return
                line = f"- {mark}\n"
            else:
                self.watched[mark] = line
            if self.fd < 0:
                self._start()
            try:
                os.write(self.fd, line.encode())  # under PIPE_BUF: one write, never split
            except BrokenPipeError:
                os.close(self.fd)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, os.WNOHANG)
                self._start()

    def new_mark(self) -> str:
        with self.lock:
            self.count += 1
            return f"{os.getpid()}.{self.count}"

    def ready(self) -> int:
        with self.lock:
            if self.fd < 0:
                self._start()
            return self.pid


_WATCHDOG = _Watchdog()

#: The watchdog's program: this module, imported from where this pragmash is.
_WATCHDOG_MAIN = (
    "import sys; sys.path.append(sys.argv[1]); import importlib;"
    " importlib.import_module(sys.argv[2]).watchdog_main()"
)


def watchdog_pid() -> int:
    """The watchdog's pid, started now if need be: a child of this process that is no
    command (started before a command is, so a Ctrl-C inside that start does not take
    the watchdog for the new command)."""
    return _WATCHDOG.ready()


def announce() -> dict[str, str]:
    """Tell the watchdog a command is about to start; the environment to start it with
    (this one, and the command's mark). Then :func:`watch`, and :func:`forget` at its end."""
    mark = _WATCHDOG.new_mark()
    _WATCHDOG.tell(mark, f"? {mark}\n")
    return {**os.environ, MARK_VARIABLE: mark}


def watch(env: dict[str, str], leader: int) -> None:
    """The command started with ``env`` is ``leader``: the watchdog ends its session if
    this process dies before :func:`forget`, even once its children changed their
    environment. A command already reaped (no start time) has nothing more to end."""
    started = start_time(leader)
    if started is not None:
        mark = env[MARK_VARIABLE]
        _WATCHDOG.tell(mark, f"+ {mark} {leader} {started}\n")


def forget(env: dict[str, str]) -> None:
    """The command started with ``env`` has ended: nothing of it for the watchdog to end."""
    _WATCHDOG.tell(env[MARK_VARIABLE], None)


def watchdog_main() -> None:
    """The watchdog's whole life: read the list of commands from stdin until this
    pragmash is gone (end of file), then end those still on it: the sessions of the
    processes that carry their marks, and the session each recorded leader led."""
    for name in ("SIGINT", "SIGHUP", "SIGQUIT", "SIGTSTP"):  # only pragmash's end ends it
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    leaders: dict[str, tuple[int, int] | None] = {}
    for line in sys.stdin.buffer:
        match line.decode("ascii", errors="replace").split():
            case ["?", mark]:
                leaders[mark] = None
            case ["+", mark, pid, started]:
                leaders[mark] = (int(pid), int(started))
            case ["-", mark]:
                leaders.pop(mark, None)
    if not leaders:
        return
    for session in marked_sessions(set(leaders)):
        end_process_tree(session)
    for recorded in leaders.values():
        if recorded is not None:
            end_recorded(*recorded)
