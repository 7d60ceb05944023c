"""A run that begins with ``allocate`` takes its leases in its opening write.

The VC's lock, the run's record, the first step's start and the leases are one
``BEGIN IMMEDIATE`` (pragmash.engine.run.opening.lock_and_journal): four steps make
five write transactions (tests/engine/test_counts.py). What must hold all the same:
runs started at once never share an address nor both run one VC, a refused
``allocate`` leaves no run behind, and a run stopped right after its opening resumes
with the leases it took.
"""

from __future__ import annotations

import time

import libvirt
import pytest
from support.runenv import RunEnv, sleepy_recipe, stop

from pragmash.engine.run import runtime as runtime_mod
from pragmash.errors import EXIT_BUSY, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER
from pragmash.store.allocation import Allocation, current_allocation
from pragmash.store.journal import last_run, lock_holder, steps_of

pytestmark = pytest.mark.libvirt


def macs(held: Allocation) -> set[str]:
    return {mac for node in held.nodes for mac in node.macs}


def test_runs_of_four_vcs_at_once_share_no_lease_and_the_refused_take_nothing(
    env: RunEnv,
) -> None:
    """Two public addresses, four VCs starting together: two run, two are refused."""
    with (env.repo / "vcdb.txt").open("a", encoding="utf-8") as vcdb:
        vcdb.write("".join(f"vc{i},calit2/vc-in.xml\n" for i in range(4)))
    recipe = env.recipe("allocate 2\nboot all\n")
    procs = [env.spawn(str(recipe), "--vcname", f"vc{i}") for i in range(4)]
    said = [proc.communicate(timeout=300) for proc in procs]
    codes = {f"vc{i}": proc.returncode for i, proc in enumerate(procs)}
    assert sorted(codes.values()) == [EXIT_OK, EXIT_OK, EXIT_USER, EXIT_USER], said
    ledger = env.ledger()
    ran = [name for name, code in codes.items() if code == EXIT_OK]
    first, second = (current_allocation(ledger, name) for name in ran)
    assert first is not None and second is not None
    assert first.public.ip != second.public.ip and first.vlan != second.vlan
    assert macs(first).isdisjoint(macs(second))
    for i, (name, code) in enumerate(codes.items()):
        if code == EXIT_USER:
            assert "nothing was taken and no run of" in said[i][1], said[i]
            assert current_allocation(ledger, name) is None
            assert last_run(ledger, name) is None and lock_holder(ledger, name) is None


def test_runs_of_one_vc_at_once_one_runs_and_the_others_are_refused_as_busy(
    env: RunEnv,
) -> None:
    recipe, flag = sleepy_recipe(env)  # step 2 waits for the flag, holding the VC
    procs = [env.spawn(str(recipe), "--vcname", "calit2", "--allow-run") for _ in range(3)]
    try:
        deadline = time.monotonic() + 120
        while sum(p.poll() is not None for p in procs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [proc for proc in procs if proc.poll() is not None]
        assert len(refused) == 2, [p.communicate() for p in refused]
        for proc in refused:
            assert proc.returncode == EXIT_BUSY, proc.communicate()
            assert "calit2 is busy" in proc.communicate()[1]
        (running,) = [proc for proc in procs if proc not in refused]
        env.wait_for_step(running, 2, "running")
        flag.touch()
        assert running.wait(timeout=120) == EXIT_OK, running.communicate()
    finally:
        for proc in procs:
            stop(proc)
    ledger = env.ledger()
    run = last_run(ledger, "calit2")
    assert run is not None and run.id == 1 and run.outcome == "finished"  # one run only
    assert current_allocation(ledger, "calit2") is not None


def test_a_run_stopped_just_after_its_opening_resumes_with_the_leases_it_took(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the first step after its opening committed the leases (as a kill
    there would): the journal shows the step unfinished, the leases are held, and
    ``resume`` goes on with those very leases."""

    def interrupted(*_args: object) -> list[object]:
        raise KeyboardInterrupt

    recipe = env.recipe("allocate 2\nboot frontend\nboot compute\n")
    with monkeypatch.context() as patch:
        patch.setattr(runtime_mod, "write_vc_out", interrupted)
        result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == EXIT_INTERRUPTED, result.err
    held = env.allocation()
    assert held is not None
    run = env.last_run()
    assert run is not None
    assert [(s.idx, s.outcome) for s in steps_of(env.ledger(), run.id)] == [(0, "interrupted")]

    resumed = env.cli("resume", "calit2")
    assert resumed.rc == EXIT_OK, resumed.err
    assert env.allocation() == held
    again = env.last_run()
    assert again is not None and again.id == run.id and again.outcome == "finished"
    assert [s.outcome for s in env.steps()] == ["done", "done", "done"]
