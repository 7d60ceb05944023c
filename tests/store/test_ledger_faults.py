"""Ledger faults: each a clear error naming the ledger file and what to do, never a traceback.

Corrupted, not ours, empty (truncated), full, read-only, locked past the busy timeout,
deleted or replaced while in use. A fault refused up front exits 2 with nothing
changed; one that stops a run half-way exits 3 and leaves the run resumable.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest
from support.runenv import RunEnv, sleepy_run

from pragmash.errors import LedgerError
from pragmash.store.journal import last_run, lock_holder
from pragmash.store.ledger import APPLICATION_ID, Ledger

GARBAGE = bytes(range(256)) * 40


def test_corrupted_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(GARBAGE)
    with pytest.raises(LedgerError) as err:
        Ledger(path)
    assert err.value.message.startswith(f"ledger {path}: the ledger is corrupted")
    assert err.value.hint is not None and "backup" in err.value.hint
    assert path.read_bytes() == GARBAGE


def test_sqlite_file_that_is_not_ours_is_refused_and_not_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE users (name TEXT)")
    other.commit()
    other.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"not a pragmash ledger \(tables users\)"):
        Ledger(path)
    assert path.read_bytes() == before  # no table of ours was added to it


def test_sqlite_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    other = sqlite3.connect(path)
    other.execute("PRAGMA application_id = 1234")
    other.commit()
    other.close()
    with pytest.raises(LedgerError, match=r"not a pragmash ledger \(application id 0x4d2\)"):
        Ledger(path)


def test_ledger_made_before_the_stamp_is_adopted_with_its_leases(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as old:  # as an older pragmash left it: no application id
        old.execute("PRAGMA application_id = 0")
        old.execute("INSERT INTO counters VALUES ('mac', 7)")
    ledger = Ledger(path)
    conn = ledger.connection
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("SELECT value FROM counters WHERE name='mac'").fetchone()[0] == 7


def test_new_ledger_is_stamped_and_never_empty(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    Ledger(path).close()
    assert path.stat().st_size > 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def test_zero_byte_ledger_is_refused_not_taken_as_new(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.touch()
    with pytest.raises(LedgerError, match=r"the file is empty \(0 bytes\): .* truncated"):
        Ledger(path)
    assert path.stat().st_size == 0


def test_full_disk_is_a_ledger_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.ensure_schema("CREATE TABLE IF NOT EXISTS notes (text TEXT);")
    pages = ledger.connection.execute("PRAGMA page_count").fetchone()[0]
    # SQLite's own limit on the file's size gives the same SQLITE_FULL as a full disk
    ledger.connection.execute(f"PRAGMA max_page_count = {pages}")
    full = "the disk holding the ledger is full"
    with pytest.raises(LedgerError, match=full) as err, ledger.transaction() as conn:
        for _ in range(100):
            conn.execute("INSERT INTO notes VALUES (?)", ("x" * 4000,))
    assert err.value.hint is not None and "free space" in err.value.hint
    assert not ledger.connection.in_transaction
    assert ledger.connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0


HOLD_WRITE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO counters VALUES ('held', 1)")
print("holding", flush=True)
time.sleep(60)
"""


def _hold_write(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


def test_write_held_past_the_busy_timeout_is_a_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    holder = _hold_write(path)
    try:
        ledger = Ledger(path, timeout=0.3)  # set-up only reads a ledger in use: no wait
        with pytest.raises(LedgerError) as err, ledger.transaction():
            pass  # a write waits for the holder, then fails
    finally:
        holder.kill()
        holder.wait()
    assert "held a write transaction on the ledger for longer than the busy timeout (0.3 s)" in (
        err.value.message
    )


def test_ledger_deleted_or_replaced_while_in_use(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    path.unlink()
    with pytest.raises(LedgerError, match="the ledger was deleted while pragmash was using it"):
        ledger.transaction().__enter__()
    Ledger(tmp_path / "other.sqlite3").close()
    os.replace(tmp_path / "other.sqlite3", path)  # a new file at the same path
    with pytest.raises(LedgerError, match="replaced by another file"), ledger.snapshot():
        pass


def test_a_ledger_deleted_between_commands_is_not_replaced_by_an_empty_one(
    tmp_path: Path,
) -> None:
    """Issue 27 item 6: the next command made a new, empty ledger: the same addresses
    would have been handed out again. The marker made with the ledger tells."""
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    path.unlink()
    with pytest.raises(LedgerError, match="the ledger is gone, though this site had one"):
        Ledger(path)
    assert not path.exists()
    (tmp_path / "ledger.sqlite3.made").unlink()  # the admin's word: start a new one
    Ledger(path).close()
    assert path.exists()


def test_a_ledger_made_before_markers_gets_its_marker(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    marker = tmp_path / "ledger.sqlite3.made"
    marker.unlink()
    Ledger(path).close()
    assert marker.exists()


# -- the commands, as a user meets these faults ---------------------------------------


def _first_error_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("error:"))


@pytest.mark.libvirt
@pytest.mark.parametrize(
    "command",
    [
        ("RECIPE", "--vcname", "calit2"),
        ("list",),
        ("status", "calit2"),
        ("clean", "calit2"),
        ("resume", "calit2"),
    ],
)
@pytest.mark.parametrize("fault", ["corrupted", "not ours", "empty"])
def test_every_command_refuses_a_bad_ledger_with_exit_2(
    env: RunEnv, command: tuple[str, ...], fault: str
) -> None:
    path = env.site().ledger_path
    path.parent.mkdir(parents=True, exist_ok=True)
    if fault == "corrupted":
        path.write_bytes(GARBAGE)
        expected = f"error: ledger {path}: the ledger is corrupted"
    elif fault == "not ours":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE photos (id INTEGER)")
        expected = f"error: ledger {path}: this SQLite database is not a pragmash ledger"
    else:
        path.touch()
        expected = f"error: ledger {path}: the file is empty (0 bytes)"
    before = path.read_bytes()
    recipe = env.recipe("allocate 1\nboot frontend\n")
    args = [str(recipe) if word == "RECIPE" else word for word in command]
    result = env.cli(*args)
    assert result.rc == 2, result.err
    assert _first_error_line(result.err).startswith(expected)
    assert "Traceback" not in result.err
    assert path.read_bytes() == before


@pytest.mark.libvirt
def test_run_stopped_by_a_deleted_ledger_says_so_with_exit_3(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    with sleepy_run(env) as (proc, flag, _recipe):
        path = env.site().ledger_path
        path.unlink()
        flag.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert _first_error_line(err).startswith(
        f"error: ledger {path}: the ledger was deleted while pragmash was using it"
    )
    assert "boot compute" not in out  # it stopped at the step it was in


@pytest.mark.libvirt
def test_killed_run_reads_interrupted_and_is_closed_when_another_takes_the_vc(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    with sleepy_run(env):
        pass  # killed at step 2 on leaving (SIGKILL): the run cannot write its end
    status = env.cli("status", "calit2")
    assert "run 1 (interrupted)" in status.out
    assert "in use by" not in status.out
    listed = env.cli("list")
    assert "1 interrupted" in listed.out

    clean = env.cli("clean", "calit2")  # takes the dead run's lock
    assert clean.rc == 0, clean.err
    assert env.recipe("allocate 1\n", "two.prg")
    again = env.cli(str(env.root / "two.prg"), "--vcname", "calit2")
    assert again.rc == 0, again.err
    ledger = env.ledger()
    with ledger.snapshot() as conn:
        outcomes = [r[0] for r in conn.execute("SELECT outcome FROM runs ORDER BY id")]
    assert outcomes == ["cleaned", "finished"]


@pytest.mark.libvirt
def test_new_run_taking_a_dead_runs_lock_marks_that_run_interrupted(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    with sleepy_run(env) as (proc, _flag, _recipe):
        pass  # killed at step 2 on leaving (SIGKILL)
    other = env.recipe("echo hello\n", "other.prg")
    assert env.cli(str(other), "--vcname", "calit2").rc == 0
    ledger = env.ledger()
    with ledger.snapshot() as conn:
        rows = conn.execute("SELECT id, outcome, message FROM runs ORDER BY id").fetchall()
        killed_step = conn.execute("SELECT outcome FROM steps WHERE run_id=1 AND idx=2").fetchone()
    assert [(r[0], r[1]) for r in rows] == [(1, "interrupted"), (2, "finished")]
    assert f"pid {proc.pid}" in rows[0][2] and "ended without finishing the run" in rows[0][2]
    assert killed_step[0] == "interrupted"
    assert last_run(ledger, "calit2") is not None
    assert lock_holder(ledger, "calit2") is None


def test_lock_of_a_reused_pid_is_stale(env: RunEnv) -> None:
    """The holder's pid is alive but belongs to a process that started later: stale."""
    from pragmash.store.journal import acquire_lock, ensure_journal, process_started

    ledger = env.ledger()
    ensure_journal(ledger)
    parent = os.getppid()
    for started, busy in ((process_started(parent), True), ("another-boot:12345", False)):
        with ledger.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO locks (vcname, run_id, pid, host, since, started) "
                "VALUES ('calit2', NULL, ?, ?, ?, ?)",
                (parent, os.uname().nodename, time.time(), started),
            )
        holder = lock_holder(ledger, "calit2")
        assert holder is not None and holder.alive is busy
    acquire_lock(ledger, "calit2")  # the reused pid's lock is taken over
    holder = lock_holder(ledger, "calit2")
    assert holder is not None and holder.pid == os.getpid()


# -- full disk and read-only file system, in a mount namespace of the test's own -------

FULL_SCRIPT = """\
set -u
mount -t tmpfs -o size=4m tmpfs "$STATE" || exit 99
"$PY" -m pragmash.ui.cli.main "$RECIPE" --vcname calit2 --allow-run --site "$SITE" \\
    >"$ROOT/run.out" 2>"$ROOT/run.err"
echo $? >"$ROOT/run.rc"
"$PY" -m pragmash.ui.cli.main status calit2 --site "$SITE" >"$ROOT/status.out" 2>&1
rm "$STATE/filler"
"$PY" -m pragmash.ui.cli.main resume calit2 --site "$SITE" >"$ROOT/resume.out" 2>"$ROOT/resume.err"
echo $? >"$ROOT/resume.rc"
"""

# the run's step 3 fails once; the state folder is made read-only before `resume`
READ_ONLY_SCRIPT = """\
set -u
mount --bind "$STATE" "$STATE" || exit 99
"$PY" -m pragmash.ui.cli.main "$RECIPE" --vcname calit2 --allow-run --site "$SITE" \\
    >"$ROOT/run.out" 2>"$ROOT/run.err"
echo $? >"$ROOT/run.rc"
mount -o remount,ro,bind "$STATE" || exit 98
"$PY" -m pragmash.ui.cli.main resume calit2 --site "$SITE" >"$ROOT/ro.out" 2>"$ROOT/ro.err"
echo $? >"$ROOT/ro.rc"
mount -o remount,rw,bind "$STATE" || exit 97
touch "$ROOT/flag"
"$PY" -m pragmash.ui.cli.main resume calit2 --site "$SITE" >"$ROOT/resume.out" 2>"$ROOT/resume.err"
echo $? >"$ROOT/resume.rc"
"""


def _in_private_mounts(env: RunEnv, script: str, recipe: Path) -> None:
    """Run ``script`` in a mount namespace of its own: its mounts vanish with it."""
    prefix = _private_mounts()
    proc = subprocess.run(
        [*prefix, "sh", "-c", script],
        env={
            **os.environ,
            "STATE": str(env.site().state_dir),
            "PY": sys.executable,
            "RECIPE": str(recipe),
            "SITE": str(env.site_path),
            "ROOT": str(env.root),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def _read(env: RunEnv, name: str) -> str:
    return (env.root / name).read_text()


def _private_mounts() -> list[str]:
    """The command that runs a script in a mount namespace of its own, or skip."""
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-Urm"]
    probe = subprocess.run(
        [*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        why = f"no private mount namespace: {probe.stderr.decode(errors='replace').strip()}"
        if os.environ.get("PRAGMASH_REQUIRE_VM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return prefix


@pytest.mark.libvirt
def test_run_stopped_by_a_full_disk_exits_3_and_resumes_once_space_is_freed(env: RunEnv) -> None:
    state = env.site().state_dir
    state.mkdir(parents=True, exist_ok=True)
    filled = env.root / "filled"
    # step 3 fills the state file system (once), so the journal's next write finds it full
    fill = f'run sh -c "test -e {filled} || {{ touch {filled}; cat /dev/zero > {state}/filler; }}; true"'
    recipe = env.recipe(f"allocate 1\nboot frontend\n{fill}\nboot compute\n")
    _in_private_mounts(env, FULL_SCRIPT, recipe)
    run_err = _read(env, "run.err")
    assert _read(env, "run.rc").strip() == "3", run_err
    ledger_path = state / "ledger.sqlite3"
    assert _first_error_line(run_err) == (
        f"error: ledger {ledger_path}: the disk holding the ledger is full (database or disk is full)"
    )
    assert "Traceback" not in run_err
    assert "`pragmash resume calit2` continues" in run_err
    # the run it stopped reads as interrupted, not running with a dead lock
    assert "run 1 (interrupted)" in _read(env, "status.out")
    resume_err = _read(env, "resume.err")
    assert _read(env, "resume.rc").strip() == "0", resume_err
    assert "calit2: finished" in _read(env, "resume.out")


@pytest.mark.libvirt
def test_read_only_state_folder_refuses_resume_with_exit_2_then_resume_works(
    env: RunEnv,
) -> None:
    state = env.site().state_dir
    state.mkdir(parents=True, exist_ok=True)
    flag = env.root / "flag"
    recipe = env.recipe(f"allocate 1\nboot frontend\nrun test -e {flag}\nboot compute\n")
    _in_private_mounts(env, READ_ONLY_SCRIPT, recipe)
    assert _read(env, "run.rc").strip() == "3"  # step 3 failed, as meant
    ro_err = _read(env, "ro.err")
    assert _read(env, "ro.rc").strip() == "2", ro_err
    assert _first_error_line(ro_err).startswith(
        f"error: ledger {state / 'ledger.sqlite3'}: the ledger cannot be written: "
        "the file system or file is read-only"
    ), ro_err
    assert "Traceback" not in ro_err
    resume_err = _read(env, "resume.err")
    assert _read(env, "resume.rc").strip() == "0", resume_err
    assert "calit2: finished" in _read(env, "resume.out")
