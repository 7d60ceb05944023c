"""Run journals and VC locks, kept in the ledger as they happen.

Each step's start is committed before the step does anything, so a process killed
with SIGKILL leaves a journal that says how far it got: the step it was in shows
``running`` with no end. Each step boundary is one write: a step's end goes with the
next step's start when the run goes straight on, the run's opening carries its
first step's start (and, when that step is ``allocate``, its leases, committed with
it: pragmash.engine.run.opening.lock_and_journal) and the run's end its last step's
end (a plain run); where the
interpreter stops (the REPL), a step's end is written at once. ``resume`` reads this to continue from the
first unfinished step. A lock row per VC keeps two runs off the same VC; a lock
whose process is gone (same host, and the pid is not alive or is now another
process: its start time differs) is stale and taken over, and the run it held is
marked ``interrupted`` then, so a killed run does not show ``running`` forever.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pragmash import outcomes
from pragmash.errors import BusyError, PragmashError, StepError, VcTakenError
from pragmash.store.ledger import Ledger, register_schema
from pragmash.store.runlog import close_run_log, open_run_log, run_log_path

if TYPE_CHECKING:
    from pragmash.language.ast import Statement

log = logging.getLogger("pragmash.journal")

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    vcname      TEXT NOT NULL,
    recipe      TEXT NOT NULL,
    options     TEXT NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    outcome     TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    message     TEXT,
    sources     TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_vc ON runs(vcname, id);
CREATE TABLE IF NOT EXISTS steps (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    idx         INTEGER NOT NULL,
    file        TEXT NOT NULL,
    line        INTEGER NOT NULL,
    col         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    outcome     TEXT NOT NULL,
    message     TEXT,
    stage       TEXT,
    products    TEXT,
    output_tail TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS locks (
    vcname  TEXT PRIMARY KEY,
    run_id  INTEGER,
    pid     INTEGER NOT NULL,
    host    TEXT NOT NULL,
    since   REAL NOT NULL,
    started TEXT
);
"""
# Columns added after ledgers were in use: older ledgers get them on first use.
JOURNAL_COLUMNS = {"runs": {"sources": "TEXT"}, "locks": {"started": "TEXT"}}
register_schema(JOURNAL_SCHEMA, JOURNAL_COLUMNS)


def ensure_journal(ledger: Ledger) -> None:
    """The journal's tables, with every column this version uses, in ``ledger``."""
    ledger.ensure_schema(JOURNAL_SCHEMA)
    for table, columns in JOURNAL_COLUMNS.items():
        ledger.ensure_columns(table, columns)


@dataclass(frozen=True)
class RunRecord:
    id: int
    vcname: str
    recipe: str
    options: dict[str, Any]
    started_at: float
    ended_at: float | None
    outcome: str
    pid: int
    host: str
    message: str | None
    # every recipe file the run read, resolved, with its SHA-256 when the run started
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    run_id: int
    idx: int
    file: str
    line: int
    col: int
    text: str
    started_at: float
    ended_at: float | None
    outcome: str
    message: str | None
    stage: str | None
    products: dict[str, str]
    output_tail: list[str]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process; an exited one not yet reaped (a zombie) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except (OSError, UnicodeDecodeError):
        return True
    return not state or state[0] not in ("Z", "X")


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as ``BOOT_ID:TICKS`` (None where /proc cannot tell).

    A pid is reused once its process is gone; the start time (and the boot it belongs
    to) tells a lock holder's process from a newer one that got the same pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    fields = stat.rpartition(")")[2].split()
    # field 22 of stat(5) is starttime; the split starts at field 3 (state)
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


class Journal:
    """One run's record in the ledger; also the interpreter's journal sink."""

    def __init__(self, ledger: Ledger, run_id: int) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self._log: logging.Handler | None = None  # this run's log file, while it runs here
        # the last step's end, written with the run's end (see last_step_finished)
        self._pending: tuple[int, str, str, dict[str, str], float] | None = None

    def log_path(self, vcname: str) -> Path:
        """Where this run writes its log (``STATE/logs/VCNAME-run-ID.log``)."""
        return run_log_path(self.ledger.path.parent, vcname, self.run_id)

    def _open_log(self, vcname: str, what: str) -> None:
        close_run_log(self._log)
        self._log = open_run_log(self.log_path(vcname))
        log.info("run %d of %s %s (pid %d)", self.run_id, vcname, what, os.getpid())

    # -- runs -------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        ledger: Ledger,
        vcname: str,
        recipe: str,
        options: dict[str, Any],
        sources: dict[str, str] | None = None,
        first: tuple[int, Statement] | None = None,
    ) -> Journal:
        """A new run's record; with ``first``, that step's start too (the run goes straight
        on to it), in the same write."""
        ensure_journal(ledger)
        with ledger.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (vcname, recipe, options, started_at, outcome, pid, host, sources) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    vcname,
                    recipe,
                    json.dumps(options),
                    time.time(),
                    outcomes.RUNNING,
                    os.getpid(),
                    socket.gethostname(),
                    json.dumps(sources or {}),
                ),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            journal = cls(ledger, run_id)
            journal._open_log(vcname, f"started: {recipe}")
            if first is not None:
                journal._record_start(conn, *first)
        return journal

    def reopen(self, sources: dict[str, str] | None = None) -> None:
        """Mark a journaled run as running again (``resume``), by this process.

        ``sources`` (the recipe files' digests now) replace the recorded ones, so the
        next resume compares against the recipe this run really went on with.
        """
        with self.ledger.transaction() as conn:
            conn.execute(
                "UPDATE runs SET outcome=?, ended_at=NULL, message=NULL, pid=?, host=?, "
                "sources=COALESCE(?, sources) WHERE id=?",
                (
                    outcomes.RUNNING,
                    os.getpid(),
                    socket.gethostname(),
                    json.dumps(sources) if sources is not None else None,
                    self.run_id,
                ),
            )
            row = conn.execute("SELECT vcname FROM runs WHERE id=?", (self.run_id,)).fetchone()
        if row is not None:
            self._open_log(row[0], "resumed")

    def end(self, outcome: outcomes.RunEnd, message: str | None = None) -> None:
        """Close the run; a step it left ``running`` (a clean took it) is interrupted."""
        log.info("run %d ended: %s%s", self.run_id, outcome, f": {message}" if message else "")
        close_run_log(self._log)
        self._log = None
        with self.ledger.transaction() as conn:
            self._still_held(conn)
            self._write_pending(conn)
            now = time.time()
            conn.execute(
                "UPDATE runs SET outcome=?, ended_at=?, message=? WHERE id=?",
                (outcome, now, message, self.run_id),
            )
            conn.execute(
                "UPDATE steps SET outcome=?, ended_at=?, message=? WHERE run_id=? AND outcome=?",
                (
                    outcomes.INTERRUPTED,
                    now,
                    f"the run ended ({outcome}) while this step ran",
                    self.run_id,
                    outcomes.RUNNING,
                ),
            )

    def discard(self, vcname: str) -> None:
        """Remove this run from the journal as if it had not started, its log file too,
        and release the VC's lock in the same write: for a run refused before it took
        anything (a shortage at its ``allocate``), which leaves nothing to resume or look
        at, and must not stand as the VC's last run."""
        close_run_log(self._log)
        self._log = None
        self._pending = None
        with self.ledger.transaction() as conn:
            self._still_held(conn)
            conn.execute("DELETE FROM steps WHERE run_id=?", (self.run_id,))
            conn.execute("DELETE FROM runs WHERE id=?", (self.run_id,))
            release_lock(self.ledger, vcname)  # joins this transaction
        self.log_path(vcname).unlink(missing_ok=True)

    # -- steps (JournalSink) ----------------------------------------------------------

    def step_started(self, index: int, statement: Statement) -> None:
        with self.ledger.transaction() as conn:
            self._still_held(conn)
            self._write_pending(conn)
            self._record_start(conn, index, statement)

    def step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        with self.ledger.transaction() as conn:
            self._still_held(conn)
            self._write_pending(conn)
            self._record_end(conn, index, outcome, message, products, time.time())

    def step_handed_over(
        self,
        index: int,
        outcome: str,
        message: str,
        products: dict[str, str],
        next_index: int,
        next_statement: Statement,
    ) -> None:
        """Step ``index`` ended and ``next_index`` starts straight away: both in one write.

        The next step's start is committed before its side effects, as a lone start
        would be; a process killed in between shows that step ``running`` (resume runs
        it, as it would a step killed before its first side effect), never a step done
        that was not.
        """
        with self.ledger.transaction() as conn:
            self._still_held(conn)
            self._write_pending(conn)
            self._record_end(conn, index, outcome, message, products, time.time())
            self._record_start(conn, next_index, next_statement)

    def last_step_finished(
        self, index: int, outcome: str, message: str, products: dict[str, str]
    ) -> None:
        """The run's last step ended and the run ends straight after (a run to the end):
        its record is written with the run's end (:meth:`end`), in one write.

        A process killed before that write shows the step ``running``, so ``resume``
        runs it again, as it would after a kill in the step's last moment.
        """
        log.info("step %d %s: %s", index, outcome, message)
        self._pending = (index, outcome, message, products, time.time())

    def flush(self) -> None:
        """Write a finished step's record still held for the run's end (see
        :meth:`last_step_finished`) now: the run goes on, or is looked at, first."""
        if self._pending is not None:
            with self.ledger.transaction() as conn:
                self._still_held(conn)
                self._write_pending(conn)

    def _write_pending(self, conn: Any) -> None:
        if self._pending is not None:
            index, outcome, message, products, ended = self._pending
            self._pending = None
            self._record_end(conn, index, outcome, message, products, ended, logged=True)

    def _record_start(self, conn: Any, index: int, statement: Statement) -> None:
        span = statement.span
        log.info("step %d started: %s:%d: %s", index, span.file, span.line, statement.text)
        conn.execute(
            "INSERT OR REPLACE INTO steps (run_id, idx, file, line, col, text, started_at, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                index,
                span.file,
                span.line,
                span.column,
                statement.text,
                time.time(),
                outcomes.RUNNING,
            ),
        )

    def _record_end(
        self,
        conn: Any,
        index: int,
        outcome: str,
        message: str,
        products: dict[str, str],
        ended: float,
        *,
        logged: bool = False,
    ) -> None:
        if not logged:
            log.info("step %d %s: %s", index, outcome, message)
        updated = conn.execute(
            "UPDATE steps SET ended_at=?, outcome=?, message=?, products=? WHERE run_id=? AND idx=?",
            (ended, outcome, message, json.dumps(products), self.run_id, index),
        ).rowcount
        if not updated:  # a step skipped without being started (the REPL's `skip`)
            conn.execute(
                "INSERT INTO steps (run_id, idx, file, line, col, text, started_at, ended_at, outcome, message) "
                "VALUES (?, ?, '', 0, 0, '', ?, ?, ?, ?)",
                (self.run_id, index, ended, ended, outcome, message),
            )

    def step_failed(self, index: int, error: PragmashError, interrupted: bool) -> None:
        stage = error.stage if isinstance(error, StepError) else None
        tail = error.output_tail if isinstance(error, StepError) else []
        outcome = outcomes.INTERRUPTED if interrupted else outcomes.FAILED
        log.warning(
            "step %d %s%s: %s",
            index,
            outcome,
            f" in {stage}" if stage else "",
            error.message,
        )
        with self.ledger.transaction() as conn:
            if self._taken_by(conn) is not None:
                return  # the run is stopping anyway; the journal is the taker's now
            self._write_pending(conn)
            conn.execute(
                "UPDATE steps SET ended_at=?, outcome=?, message=?, stage=?, output_tail=? "
                "WHERE run_id=? AND idx=?",
                (
                    time.time(),
                    outcome,
                    error.message,
                    stage,
                    json.dumps(tail),
                    self.run_id,
                    index,
                ),
            )

    # -- who holds the VC -------------------------------------------------------------

    def _taken_by(self, conn: Any) -> str | None:
        """Who took the run's VC from this process (None while this process holds it).

        A forced ``clean`` moves the lock to itself, then releases it; either way the
        lock is no longer this process's, and that is how the run notices.
        """
        row = conn.execute(
            "SELECT r.vcname, l.pid, l.host FROM runs r LEFT JOIN locks l ON l.vcname = r.vcname "
            "WHERE r.id=?",
            (self.run_id,),
        ).fetchone()
        if row is None or (row["pid"], row["host"]) == (os.getpid(), socket.gethostname()):
            return None
        if row["pid"] is None:
            return "another process (the VC's lock is gone)"
        return f"pid {row['pid']} on {row['host']}"

    def _still_held(self, conn: Any) -> None:
        """Raise VcTakenError if the run's VC is no longer this process's."""
        taker = self._taken_by(conn)
        if taker is None:
            return
        vcname = conn.execute("SELECT vcname FROM runs WHERE id=?", (self.run_id,)).fetchone()[0]
        raise VcTakenError(
            f"{vcname} was taken from run {self.run_id} while it was going, by {taker}: the run "
            "stopped and leaves the VC's leases, domains and journal alone",
            hint=f"a forced `pragmash clean {vcname}` (or another run) has the VC now; "
            f"see `pragmash status {vcname}`",
        )

    # -- reading ----------------------------------------------------------------------

    def steps(self) -> list[StepRecord]:
        self.flush()
        return steps_of(self.ledger, self.run_id)


def run_from_row(row: Any) -> RunRecord:
    """A ``runs`` row as a RunRecord (for the readers here and in store.history)."""
    return RunRecord(
        id=row["id"],
        vcname=row["vcname"],
        recipe=row["recipe"],
        options=json.loads(row["options"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        outcome=row["outcome"],
        pid=row["pid"],
        host=row["host"],
        message=row["message"],
        sources=json.loads(row["sources"]) if row["sources"] else {},
    )


def last_run(ledger: Ledger, vcname: str) -> RunRecord | None:
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        row = conn.execute(
            "SELECT * FROM runs WHERE vcname=? ORDER BY id DESC LIMIT 1", (vcname,)
        ).fetchone()
    return run_from_row(row) if row else None


def all_last_runs(ledger: Ledger) -> dict[str, RunRecord]:
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        rows = conn.execute(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY vcname)"
        ).fetchall()
    return {row["vcname"]: run_from_row(row) for row in rows}


def run_outcome(run: RunRecord, holder: LockHolder | None) -> str:
    """A run's outcome as it really is: ``running`` only while its process holds the VC.

    A process killed with SIGKILL (or stopped by a ledger fault) cannot write its end;
    its run then says ``running`` in the journal but is interrupted in fact.
    """
    if run.outcome != outcomes.RUNNING:
        return run.outcome
    if holder is not None and (holder.pid, holder.host) == (run.pid, run.host) and holder.alive:
        return outcomes.RUNNING
    return outcomes.INTERRUPTED


def steps_of(ledger: Ledger, run_id: int) -> list[StepRecord]:
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        rows = conn.execute("SELECT * FROM steps WHERE run_id=? ORDER BY idx", (run_id,)).fetchall()
    return [
        StepRecord(
            run_id=r["run_id"],
            idx=r["idx"],
            file=r["file"],
            line=r["line"],
            col=r["col"],
            text=r["text"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            outcome=r["outcome"],
            message=r["message"],
            stage=r["stage"],
            products=json.loads(r["products"]) if r["products"] else {},
            output_tail=json.loads(r["output_tail"]) if r["output_tail"] else [],
        )
        for r in rows
    ]


# -- locks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    run_id: int | None
    pid: int
    host: str
    since: float
    started: str | None = None  # the holder process's start (see process_started)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        run = f"run {self.run_id}, " if self.run_id else ""
        return f"{run}pid {self.pid} on {self.host}, since {when}"

    @property
    def alive(self) -> bool:
        """False only when we can tell the holder is gone: same host, and no such pid or
        the pid now belongs to a process that started at another time (a reused pid)."""
        if self.host != socket.gethostname():
            return True
        if not _pid_alive(self.pid):
            return False
        now = process_started(self.pid)
        return self.started is None or now is None or now == self.started


def _holder(row: Any) -> LockHolder:
    return LockHolder(row["run_id"], row["pid"], row["host"], row["since"], row["started"])


def lock_holder(ledger: Ledger, vcname: str) -> LockHolder | None:
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        row = conn.execute("SELECT * FROM locks WHERE vcname=?", (vcname,)).fetchone()
    return _holder(row) if row else None


def acquire_lock(ledger: Ledger, vcname: str, run_id: int | None = None) -> None:
    """Take the VC for this process, or raise BusyError naming who holds it.

    A stale holder's run, left ``running`` by a process that was killed, is marked
    ``interrupted`` as the lock is taken over.
    """
    ensure_journal(ledger)
    me = (os.getpid(), socket.gethostname())
    with ledger.transaction() as conn:
        row = conn.execute("SELECT * FROM locks WHERE vcname=?", (vcname,)).fetchone()
        if row is not None:
            holder = _holder(row)
            if (holder.pid, holder.host) != me and holder.alive:
                raise BusyError(
                    f"{vcname} is busy: held by {holder.describe()}",
                    hint=f"wait for it to finish, or see `pragmash status {vcname}`",
                )
            if (holder.pid, holder.host) != me and holder.run_id is not None:
                _mark_abandoned(conn, holder)
        conn.execute(
            "INSERT OR REPLACE INTO locks (vcname, run_id, pid, host, since, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (vcname, run_id, me[0], me[1], time.time(), process_started(me[0])),
        )


def _mark_abandoned(conn: Any, holder: LockHolder) -> None:
    """Close the run (and its step) a dead process left ``running``."""
    now = time.time()
    why = f"pid {holder.pid} on {holder.host} ended without finishing the run (killed?)"
    conn.execute(
        "UPDATE runs SET outcome=?, ended_at=?, message=? WHERE id=? AND outcome=?",
        (outcomes.INTERRUPTED, now, why, holder.run_id, outcomes.RUNNING),
    )
    conn.execute(
        "UPDATE steps SET outcome=?, ended_at=?, message=? WHERE run_id=? AND outcome=?",
        (outcomes.INTERRUPTED, now, why, holder.run_id, outcomes.RUNNING),
    )


def set_lock_run(ledger: Ledger, vcname: str, run_id: int) -> None:
    with ledger.transaction() as conn:
        conn.execute(
            "UPDATE locks SET run_id=? WHERE vcname=? AND pid=?", (run_id, vcname, os.getpid())
        )


def release_lock(ledger: Ledger, vcname: str) -> None:
    """Give the VC back; only the holder's own lock is removed."""
    with ledger.transaction() as conn:
        conn.execute(
            "DELETE FROM locks WHERE vcname=? AND pid=? AND host=?",
            (vcname, os.getpid(), socket.gethostname()),
        )


def take_lock(ledger: Ledger, vcname: str) -> LockHolder | None:
    """Take the VC from whoever holds it, live or not (``clean --force``); return them.

    The holder's run notices at its next journal write (it no longer holds the
    lock) and stops without touching the VC again.
    """
    ensure_journal(ledger)
    me = (os.getpid(), socket.gethostname())
    with ledger.transaction() as conn:
        row = conn.execute("SELECT * FROM locks WHERE vcname=?", (vcname,)).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO locks (vcname, run_id, pid, host, since, started) "
            "VALUES (?, NULL, ?, ?, ?, ?)",
            (vcname, me[0], me[1], time.time(), process_started(me[0])),
        )
    return _holder(row) if row is not None else None


def break_lock(ledger: Ledger, vcname: str) -> None:
    """Take the VC from whoever holds it, live or not (``clean --force``).

    The holder's run keeps going but no longer owns the VC; its own
    :func:`release_lock` then removes nothing.
    """
    ensure_journal(ledger)
    with ledger.transaction() as conn:
        conn.execute("DELETE FROM locks WHERE vcname=?", (vcname,))
