"""A third Ctrl-C exits 130 at once, never a traceback or a process killed by SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import libvirt
import pytest
from support.procs import gone, live_with, started
from support.runenv import RunEnv, sleepy_run, stop

STUBBORN_CLEANUP = """
import sys, time
from pragmash.ui.cli import interrupts
interrupts.install(sys.stderr)
while True:  # a clean-up that goes on after every Ctrl-C
    try:
        print("ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("cleaning up", flush=True)
"""


def test_third_ctrl_c_during_clean_up_exits_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_CLEANUP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        for _ in range(2):
            time.sleep(0.2)  # into the sleep, past the print
            proc.send_signal(signal.SIGINT)
            assert proc.stdout.readline() == "cleaning up\n"  # still going: as meant
            assert proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    assert err.startswith("interrupted 3 times: exiting now without finishing the clean-up")
    assert "Traceback" not in err


@pytest.mark.libvirt
def test_a_run_hit_by_three_quick_ctrl_c_exits_130_and_resumes(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        assert started(str(flag)), "the step's command is not running"
        for _ in range(3):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
        _out, err = proc.communicate(timeout=60)
        # even a hurried exit ends the step's waiting shell (in a group of its own)
        assert gone(str(flag)), f"outlived the run: {live_with(str(flag))}"
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    flag.touch()
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 0, resumed.err


@pytest.mark.libvirt
def test_a_run_killed_with_sigkill_takes_its_host_command_along(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """No clean-up of pragmash's runs on SIGKILL: the watchdog ends the step's command."""
    with sleepy_run(env) as (proc, flag, _recipe):
        assert started(str(flag)), "the step's command is not running"
        proc.kill()  # at once: the command may have started an instant ago
        proc.communicate(timeout=30)
        assert gone(str(flag)), f"outlived a SIGKILLed pragmash: {live_with(str(flag))}"
    assert proc.returncode == -signal.SIGKILL
    flag.touch()
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 0, resumed.err
