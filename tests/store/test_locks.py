"""One run per VC: a second run is refused with who holds it; a dead holder's lock is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import libvirt
import pytest
from support.procs import gone, live_with
from support.runenv import RunEnv, sleepy_run

from pragmash.errors import BusyError
from pragmash.store.journal import JOURNAL_SCHEMA, acquire_lock, lock_holder, release_lock

pytestmark = pytest.mark.libvirt


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _plant_lock(env: RunEnv, pid: int, host: str) -> None:
    ledger = env.ledger()
    ledger.ensure_schema(JOURNAL_SCHEMA)
    with ledger.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO locks (vcname, run_id, pid, host, since) VALUES (?, ?, ?, ?, ?)",
            ("calit2", 7, pid, host, time.time() - 3600),
        )


def test_second_run_is_refused_with_the_holder(env: RunEnv, testconn: libvirt.virConnect) -> None:
    with sleepy_run(env) as (proc, flag, recipe):
        second = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
        assert second.rc == 4
        assert f"pid {proc.pid} on {socket.gethostname()}, since " in second.err
        assert "calit2 is busy: held by run 1" in second.err

        resumed = env.cli("resume", "calit2")
        assert resumed.rc == 4 and f"pid {proc.pid}" in resumed.err

        refused = env.cli("clean", "calit2")
        assert refused.rc == 4
        assert "calit2 is mid-run" in refused.err and "--force" in refused.err
        assert env.allocation() is not None  # the refused clean touched nothing

        status = env.cli("status", "calit2")
        assert f"in use by run 1, pid {proc.pid}" in status.out
        flag.touch()
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert lock_holder(env.ledger(), "calit2") is None
    # only the first run was journaled; the refused one left no trace
    run = env.last_run()
    assert run is not None and run.id == 1 and run.outcome == "finished"


def test_clean_force_takes_a_vc_from_a_live_run(env: RunEnv, testconn: libvirt.virConnect) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        forced = env.cli("clean", "calit2", "--force")
        assert forced.rc == 0, forced.err
        assert "released calit2's leases" in forced.out
        assert env.allocation() is None
        assert lock_holder(env.ledger(), "calit2") is None
        proc.communicate(timeout=60)
        # the step's waiting shell (under `timeout`, in a process group of its own)
        # ended with the run, though its flag never came
        assert gone(str(flag)), f"outlived the stopped run: {live_with(str(flag))}"


def test_stale_lock_from_a_dead_pid_is_taken_over(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    dead = _dead_pid()
    _plant_lock(env, dead, socket.gethostname())
    holder = lock_holder(env.ledger(), "calit2")
    assert holder is not None and holder.pid == dead and not holder.alive

    recipe = env.recipe("allocate 1\nboot frontend\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 0, result.err
    assert lock_holder(env.ledger(), "calit2") is None  # taken over, then given back


def test_live_holder_is_not_taken_over(env: RunEnv) -> None:
    _plant_lock(env, os.getppid(), socket.gethostname())
    with pytest.raises(BusyError, match=rf"held by run 7, pid {os.getppid()} on "):
        acquire_lock(env.ledger(), "calit2")
    # release_lock only removes this process's own lock
    release_lock(env.ledger(), "calit2")
    holder = lock_holder(env.ledger(), "calit2")
    assert holder is not None and holder.pid == os.getppid()


def test_holder_on_another_host_counts_as_alive(env: RunEnv) -> None:
    """A pid on another host cannot be checked from here: refuse rather than guess."""
    _plant_lock(env, _dead_pid(), "elsewhere.example.org")
    with pytest.raises(BusyError, match=r"on elsewhere\.example\.org"):
        acquire_lock(env.ledger(), "calit2")


def test_acquire_is_reentrant_for_the_holder(env: RunEnv) -> None:
    ledger = env.ledger()
    acquire_lock(ledger, "calit2")
    acquire_lock(ledger, "calit2", 3)
    holder = lock_holder(ledger, "calit2")
    assert holder is not None and holder.pid == os.getpid() and holder.run_id == 3
    release_lock(ledger, "calit2")
    assert lock_holder(ledger, "calit2") is None


def test_clean_force_stops_the_run_it_cleans(env: RunEnv, testconn: libvirt.virConnect) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        forced = env.cli("clean", "calit2", "--force")
        assert forced.rc == 0, forced.err
        assert f"stopped run 1 of calit2 (pid {proc.pid})" in forced.out
        _out, err = proc.communicate(timeout=60)
        assert gone(str(flag)), f"outlived the stopped run: {live_with(str(flag))}"
    assert not flag.exists()
    assert proc.returncode == 4, err
    error = next(line for line in err.splitlines() if line.startswith("error:"))
    assert error == (
        f"error: calit2 was taken from run 1 while it was going, by pid {os.getpid()} on "
        f"{socket.gethostname()}: the run stopped and leaves the VC's leases, domains and "
        "journal alone"
    )
    assert "pragmash resume" not in err  # nothing to resume: it was cleaned
    run = env.last_run()
    assert run is not None and run.outcome == "cleaned"
    assert [s.outcome for s in env.steps()] == ["done", "done", "interrupted"]
    assert env.allocation() is None and lock_holder(env.ledger(), "calit2") is None


def test_run_that_was_not_stopped_notices_and_leaves_the_new_leases_alone(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """As a forced clean from another host (which cannot signal the run) leaves it."""
    from pragmash.store.allocation import release
    from pragmash.store.journal import take_lock

    with sleepy_run(env) as (proc, flag, _recipe):
        before = env.allocation()
        assert before is not None
        ledger = env.ledger()
        assert take_lock(ledger, "calit2") is not None
        assert release(ledger, "calit2")
        release_lock(ledger, "calit2")
        # the freed address goes to another VC at once
        tiny = env.cli(str(env.recipe("allocate 0\n", "tiny.prg")), "--vcname", "tiny")
        assert tiny.rc == 0, tiny.err
        given = env.allocation("tiny")
        assert given is not None and given.public.ip == before.public.ip
        flag.touch()  # step 2 ends; the run looks at the journal and sees the VC gone
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert "calit2 was taken from run 1 while it was going, by another process" in err
    assert "boot compute" not in out
    assert env.allocation() is None  # it did not allocate again
    assert env.allocation("tiny") == given  # nor touch the leases now held by tiny
    assert [s.idx for s in env.steps()] == [0, 1, 2]
