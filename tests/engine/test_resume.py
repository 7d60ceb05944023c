"""Resume after SIGKILL and after Ctrl-C: same leases, no duplicate domain, no redone step.

The run is a real ``pragmash`` process on its own test:///default; it is killed (or
interrupted) while step 2 (``run sh -c ...sleep 30``) is running, which the test
sees by polling the journal as any other process would. The resume runs in this
process, so its domains can be inspected through libvirt afterwards.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import libvirt
import pytest
from support.procs import started
from support.runenv import RunEnv, domain_macs, sleepy_run, vc_domains

from pragmash.store.journal import lock_holder
from pragmash.vc.formats.vcout import read_vc_out

pytestmark = pytest.mark.libvirt


def _lease_facts(env: RunEnv) -> tuple[str, int, dict[str, tuple[str, ...]]]:
    held = env.allocation()
    assert held is not None
    return held.public.ip, held.vlan, {n.name: n.macs for n in held.nodes}


def test_sigkill_mid_step_then_resume(env: RunEnv, testconn: libvirt.virConnect) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        before = {s.idx: s for s in env.steps()}
        leases = _lease_facts(env)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # the journal says exactly how far it got
    run = env.last_run()
    assert run is not None and run.outcome == "running"
    after_kill = env.steps()
    assert [(s.idx, s.outcome) for s in after_kill] == [(0, "done"), (1, "done"), (2, "running")]
    assert after_kill[2].ended_at is None
    assert after_kill[1].products == {"calit2-frontend": "calit2-frontend started"}
    holder = lock_holder(env.ledger(), "calit2")
    assert holder is not None and holder.pid == proc.pid and not holder.alive

    flag.touch()  # the rerun of step 2 does not sleep
    result = env.cli("resume", "calit2")
    assert result.rc == 0, result.err
    assert "resuming calit2 at" in result.err and ":3:1: run timeout" in result.err

    # same run, same leases, nothing allocated twice
    again = env.last_run()
    assert again is not None and again.id == run.id and again.outcome == "finished"
    assert _lease_facts(env) == leases
    # finished steps were not redone: their journal rows are untouched
    steps = {s.idx: s for s in env.steps()}
    assert sorted(steps) == [0, 1, 2, 3, 4, 5]
    for idx in (0, 1):
        assert steps[idx].started_at == before[idx].started_at
        assert steps[idx].ended_at == before[idx].ended_at
    assert all(s.outcome == "done" for s in steps.values())
    assert steps[2].started_at > before[2].started_at
    # booting twice in the resumed process made no duplicates
    assert "calit2-compute-0 already running" in steps[4].products.values()

    domains = vc_domains(testconn)
    assert sorted(domains) == sorted(leases[2])
    for name, dom in domains.items():
        assert dom.isActive()
        assert tuple(domain_macs(dom)) == leases[2][name]
    assert lock_holder(env.ledger(), "calit2") is None
    assert "calit2-frontend: running" in result.out


def test_ctrl_c_marks_the_step_interrupted_and_resume_continues(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        assert started(str(flag)), "the step's command is not running"
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "test.prg:3:1" in err and "resume calit2" in err

    run = env.last_run()
    assert run is not None and run.outcome == "interrupted"
    steps = env.steps()
    assert [s.outcome for s in steps] == ["done", "done", "interrupted"]
    assert steps[2].ended_at is not None
    assert lock_holder(env.ledger(), "calit2") is None  # given back on the way out

    vc_out_path = env.site().temp_dir / "calit2" / "vc-out.xml"
    vc_out = read_vc_out(vc_out_path)  # complete and schema-valid
    held = env.allocation()
    assert held is not None
    assert vc_out.frontend.public_ip == held.public.ip
    assert not list(vc_out_path.parent.glob("*.tmp*"))

    flag.touch()
    result = env.cli("resume", "calit2")
    assert result.rc == 0, result.err
    assert [s.outcome for s in env.steps()] == ["done"] * 6
    assert sorted(vc_domains(testconn)) == sorted(n.name for n in held.nodes)


def test_resume_after_a_failed_step_keeps_the_allocation(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    flag = env.root / "ok"
    recipe = env.recipe(f"allocate 1\nboot frontend\nrun test -e {flag}\nboot compute\n")
    first = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert first.rc == 3
    leases = _lease_facts(env)
    flag.touch()
    result = env.cli("resume", "calit2")
    assert result.rc == 0, result.err
    assert _lease_facts(env) == leases
    assert sorted(vc_domains(testconn)) == ["calit2-compute-0", "calit2-frontend"]
    # only one run was ever opened
    run = env.last_run()
    assert run is not None and run.id == 1


def test_nothing_to_resume(env: RunEnv, testconn: libvirt.virConnect) -> None:
    none = env.cli("resume", "calit2")
    assert none.rc == 2 and "calit2 has no run to resume" in none.err
    recipe = env.recipe("allocate 1\n")
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    done = env.cli("resume", "calit2")
    assert done.rc == 2 and "finished; there is nothing to resume" in done.err


def test_resume_uses_the_journaled_options(env: RunEnv, testconn: libvirt.virConnect) -> None:
    """--num_compute and --set given to the first run are given again on resume."""
    flag = env.root / "ok"
    recipe = env.recipe(
        f"param who = nobody\nallocate\nrun test -e {flag}\necho hello $who\n", "opts.prg"
    )
    first = env.cli(
        str(recipe), "--vcname", "calit2", "--num_compute", "1", "--set", "who=ada", "--allow-run"
    )
    assert first.rc == 3
    held = env.allocation()
    assert held is not None and len(held.computes) == 1
    flag.touch()
    result = env.cli("resume", "calit2")
    assert result.rc == 0, result.err
    assert "hello ada" in result.out


def test_vc_out_survives_in_place(
    env: RunEnv, testconn: libvirt.virConnect, tmp_path: Path
) -> None:
    """A resumed allocate rewrites vc-out.xml with the very same content."""
    flag = env.root / "ok"
    recipe = env.recipe(f"allocate 2\nrun test -e {flag}\nallocate 2\n")
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    path = env.site().temp_dir / "calit2" / "vc-out.xml"
    before = path.read_bytes()
    flag.touch()
    assert env.cli("resume", "calit2").rc == 0
    assert path.read_bytes() == before
