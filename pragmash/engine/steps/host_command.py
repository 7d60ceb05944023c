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
:func:`~pragmash.engine.steps.process_trees.end_running_commands` first, and a pragmash
killed outright (SIGKILL, the OOM killer) leaves the commands to the watchdog of
:mod:`~pragmash.engine.steps.process_trees`, which ends them as pragmash dies.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from pragmash import outcomes, stages
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.steps.process_trees import (
    RUNNING,
    RUNNING_LOCK,
    announce,
    children,
    end_process_tree,
    end_running_commands,
    end_surely,
    forget,
    watch,
    watchdog_pid,
)
from pragmash.errors import StepError

RUN_TIMEOUT = 600.0
#: How long an ended command's output is waited for once its processes are killed.
REAP_SECONDS = 5.0


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
    watchdog_pid()  # started first: a child, but not the command
    env = announce()  # the watchdog ends the command should pragmash die from here on
    before = children()  # a Ctrl-C inside Popen: the new child is the one not here
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        with RUNNING_LOCK:
            RUNNING.add(proc.pid)
        watch(env, proc.pid)
    except FileNotFoundError:
        forget(env)
        raise StepError(f"command not found: {argv[0]}", stage=stage) from None
    except BaseException:  # a Ctrl-C as the command started: it may exist, unrecorded
        for pid in children() - before:  # even before its setsid: killed as it stands
            end_process_tree(pid)
        end_running_commands()
        forget(env)
        raise
    with proc:
        try:
            stdout, stderr = proc.communicate(stdin, timeout=timeout)
        except BaseException as exc:  # the time limit, Ctrl-C, a forced clean's SIGINT
            end_surely(proc.pid)
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
            with RUNNING_LOCK:
                RUNNING.discard(proc.pid)
            forget(env)
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
    return StepOutcome(outcomes.DONE, f"{argv[0]} exited 0")
