"""The ``run`` statement's host command ends with its step, children included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
from support.procs import gone, kill_all, live_with

from pragmash.engine.run.interpreter import StepReporter
from pragmash.engine.steps import host_command, process_trees
from pragmash.errors import StepError


def reporter() -> StepReporter:
    return StepReporter(0, lambda _event: None)


def test_output_and_exit_status_come_back() -> None:
    notes = reporter()
    outcome = host_command.run_host_command(["sh", "-c", "echo one; echo two >&2"], notes)
    assert outcome.message == "sh exited 0"
    assert notes.notes == ["one", "two"]
    with pytest.raises(StepError) as err:
        host_command.run_host_command(["sh", "-c", "echo bad; exit 3"], reporter())
    assert err.value.message == "sh exited with status 3"
    assert err.value.output_tail == ["bad"]


def test_a_missing_command_is_named() -> None:
    with pytest.raises(StepError, match="command not found: no-such-command-here"):
        host_command.run_host_command(["no-such-command-here"], reporter())


def test_the_time_limit_ends_the_whole_process_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children in the command's group, and grandchildren `timeout` moved to groups of their own."""
    marker = f"pragmash-test-{uuid.uuid4().hex}"
    monkeypatch.setattr(host_command, "RUN_TIMEOUT", 2.0)
    # two waiting shells: one in the command's own process group, one under a
    # `timeout`, which puts itself and its child in a new group
    script = (
        f"sh -c 'sleep 50; : {marker}' & "
        f"timeout 55 sh -c 'sleep 55; : {marker}' & "
        f"sleep 60; : {marker}"
    )
    try:
        with pytest.raises(StepError, match=r"sh did not end within 2 s: stopped"):
            host_command.run_host_command(["sh", "-c", script], reporter())
        assert gone(marker), f"still running after the step stopped: {live_with(marker)}"
    finally:
        kill_all(marker)


def test_a_recorded_command_is_ended_only_while_its_pid_is_still_its_own() -> None:
    """The watchdog names a command by pid and start time: a reused pid is left alone."""
    marker = f"pragmash-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(["sh", "-c", f"sleep 60; : {marker}"], start_new_session=True)
    try:
        started = process_trees.start_time(proc.pid)
        assert started is not None
        process_trees.end_recorded(proc.pid, started + 1)  # another process's start
        assert proc.poll() is None
        process_trees.end_recorded(proc.pid, started)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_watchdog_is_replaced_by_the_next_command() -> None:
    first = process_trees.watchdog_pid()
    os.kill(first, signal.SIGKILL)
    os.waitpid(first, 0)
    host_command.run_host_command(["true"], reporter())
    second = process_trees.watchdog_pid()
    assert second != first
    assert process_trees.start_time(second) is not None


ANNOUNCED_ONLY = """
import subprocess, sys, time
from pragmash.engine.steps import process_trees
env = process_trees.announce()  # and killed before watch(): the pid never told
subprocess.Popen(["sh", "-c", sys.argv[1]], env=env, start_new_session=True)
print("started", flush=True)
time.sleep(60)
"""


def test_a_command_started_an_instant_before_pragmash_died_is_ended_by_its_mark() -> None:
    marker = f"pragmash-test-{uuid.uuid4().hex}"
    script = f"sleep 50 & sleep 55; : {marker}"
    proc = subprocess.Popen(
        [sys.executable, "-c", ANNOUNCED_ONLY, script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        assert live_with(marker)
        proc.kill()
        proc.wait()
        assert gone(marker), f"outlived a SIGKILLed parent: {live_with(marker)}"
    finally:
        proc.kill()
        proc.wait()
        kill_all(marker)
