"""The journal records each step as it happens: statement, location, times, outcome, products."""

from __future__ import annotations

import itertools

import pytest
from support.runenv import RunEnv

from pragmash import outcomes
from pragmash.engine.run import session
from pragmash.engine.run.events import Event, StepStarted
from pragmash.store.journal import acquire_lock, break_lock, last_run, lock_holder, steps_of

pytestmark = pytest.mark.libvirt


RECIPE = "set greeting = hi\nallocate 2\n  boot frontend ; boot compute\necho $greeting\n"


def test_steps_are_written_as_they_happen(env: RunEnv, testconn: object) -> None:
    """When a step starts, the ledger, read through another connection, already holds it
    running and every step before it done (a step's end and the next one's start are
    one write); a mid-step SIGKILL (test_resume) shows the running row."""
    recipe = env.recipe(RECIPE)
    seen: list[tuple[int, list[tuple[int, str]]]] = []

    def watch(event: Event) -> None:
        if isinstance(event, StepStarted):
            reader = env.ledger()  # its own connection, as `status` in another shell
            run = last_run(reader, "calit2")
            assert run is not None and run.outcome == "running"
            seen.append((event.index, [(s.idx, s.outcome) for s in steps_of(reader, run.id)]))

    options = session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    run = session.start(session.prepare(options), on_event=watch, straight=True)
    assert run.interpreter.run_to_end(ending=True) == "finished"
    reader = env.ledger()
    last = last_run(reader, "calit2")
    assert last is not None and last.outcome == "running"
    assert [s.outcome for s in steps_of(reader, last.id)] == ["done"] * 4 + ["running"]
    run.close(outcomes.FINISHED)  # the last step's end goes with the run's
    assert [(i, rows) for i, rows in seen] == [
        (i, [(j, "done") for j in range(i)] + [(i, "running")]) for i in range(5)
    ]
    assert [s.outcome for s in steps_of(reader, last.id)] == ["done"] * 5


def test_a_paused_run_holds_every_finished_step_done(env: RunEnv, testconn: object) -> None:
    """Where the interpreter stops (a breakpoint, a single step), the step before is
    written done at once: nothing is kept back while a user looks."""
    recipe = env.recipe(RECIPE)
    options = session.RunOptions(recipe=str(recipe), vcname="calit2", site=str(env.site_path))
    run = session.start(session.prepare(options))
    interp = run.interpreter
    interp.add_breakpoint(4, temporary=True)
    reader = env.ledger()
    assert interp.cont() == "breakpoint"
    record = last_run(reader, "calit2")
    assert record is not None
    assert [s.outcome for s in steps_of(reader, record.id)] == ["done"] * 4
    assert interp.step() == "finished"  # the temporary breakpoint stopped once
    assert [s.outcome for s in steps_of(reader, record.id)] == ["done"] * 5
    run.close(outcomes.FINISHED)


def test_each_step_record(env: RunEnv, testconn: object) -> None:
    recipe = env.recipe(RECIPE)
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 0, result.err
    run = env.last_run()
    assert run is not None
    assert run.outcome == "finished" and run.ended_at is not None
    assert run.recipe == str(recipe.resolve())
    assert run.options["vcname"] == "calit2"
    steps = env.steps()
    assert [(s.idx, s.line, s.col, s.text) for s in steps] == [
        (0, 1, 1, "set greeting = hi"),
        (1, 2, 1, "allocate 2"),
        (2, 3, 3, "boot frontend"),
        (3, 3, 19, "boot compute"),
        (4, 4, 1, "echo $greeting"),
    ]
    assert all(s.file == str(recipe) for s in steps)
    for a, b in itertools.pairwise(steps):
        assert a.ended_at is not None and a.started_at <= a.ended_at <= b.started_at
    assert all(s.outcome == "done" for s in steps)
    held = env.allocation()
    assert held is not None
    # products: the leases, the vc-out path, the domains
    alloc = steps[1].products
    assert alloc["public_ip"] == held.public.ip and alloc["vlan"] == str(held.vlan)
    assert alloc["nodes"].split() == [n.name for n in held.nodes]
    assert alloc["vc_out"].endswith("calit2/vc-out.xml")
    assert set(steps[2].products) == {"calit2-frontend"}
    assert set(steps[3].products) == {"calit2-compute-0", "calit2-compute-1"}
    assert steps[0].message == "greeting = hi"


def test_a_failed_step_keeps_its_stage_message_and_output(env: RunEnv, testconn: object) -> None:
    recipe = env.recipe('allocate 1\nrun sh -c "echo one; echo two >&2; exit 3"\necho never\n')
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    run = env.last_run()
    assert run is not None and run.outcome == "failed"
    assert run.message == "sh exited with status 3"
    steps = env.steps()
    assert len(steps) == 2  # the step after the failure never started
    failed = steps[1]
    assert failed.outcome == "failed" and failed.stage == "run"
    assert failed.message == "sh exited with status 3"
    assert failed.output_tail == ["one", "two"]
    assert failed.ended_at is not None


def test_break_lock_takes_the_vc_from_a_live_holder(env: RunEnv) -> None:
    """``clean --force``'s way in: the lock API, not SQL in a front end."""
    ledger = env.ledger()
    acquire_lock(ledger, "calit2")
    with ledger.transaction() as conn:  # a holder on another host: taken to be alive
        conn.execute("UPDATE locks SET host='elsewhere' WHERE vcname=?", ("calit2",))
    holder = lock_holder(ledger, "calit2")
    assert holder is not None and holder.host == "elsewhere" and holder.alive
    break_lock(ledger, "calit2")
    assert lock_holder(ledger, "calit2") is None
