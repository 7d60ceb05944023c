"""The ledger's SQLite setup: WAL, foreign keys, transactions, schemas, per-process connections."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from pragmash.errors import LedgerError
from pragmash.store.ledger import Ledger


def test_creates_parent_folders_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "ledger.sqlite3"
    ledger = Ledger(path)
    conn = ledger.connection
    assert path.exists()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"vcs", "nodes", "leases", "counters"} <= tables


def test_transaction_commits_and_rolls_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.ensure_schema("CREATE TABLE IF NOT EXISTS notes (text TEXT PRIMARY KEY);")
    with ledger.transaction() as conn:
        conn.execute("INSERT INTO notes VALUES ('kept')")
    with pytest.raises(RuntimeError), ledger.transaction() as conn:
        conn.execute("INSERT INTO notes VALUES ('dropped')")
        raise RuntimeError("boom")
    rows = [r[0] for r in Ledger(tmp_path / "l.db").connection.execute("SELECT text FROM notes")]
    assert rows == ["kept"]


def test_nested_transaction_joins_the_outer_one(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.ensure_schema("CREATE TABLE IF NOT EXISTS notes (text TEXT);")
    with pytest.raises(ValueError), ledger.transaction() as outer:
        with ledger.transaction() as inner:
            assert inner is outer
            inner.execute("INSERT INTO notes VALUES ('inner')")
        raise ValueError("outer fails")
    assert ledger.connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0


def test_ensure_schema_batches_multi_statement_scripts_and_is_repeatable(tmp_path: Path) -> None:
    sql = """
    CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, vcname TEXT);
    CREATE TABLE IF NOT EXISTS parts (run INTEGER REFERENCES batches(id) ON DELETE CASCADE, n INT);
    """
    Ledger(tmp_path / "l.db").ensure_schema(sql)
    ledger = Ledger(tmp_path / "l.db")
    ledger.ensure_schema(sql)
    with ledger.transaction() as conn:
        conn.execute("INSERT INTO batches VALUES (1, 'calit2')")
        conn.execute("INSERT INTO parts VALUES (1, 0)")
        conn.execute("DELETE FROM batches")
    # foreign keys are on: the cascade removed the step
    assert ledger.connection.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 0


def test_a_new_ledger_is_made_with_every_registered_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new ledger holds the journal's and the notes' tables (and the columns added to
    older ledgers) when it is linked into place: a command's first use writes no schema."""
    import pragmash.store.journal
    import pragmash.store.notes  # both register their tables at import

    writes: list[str] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        conn.set_trace_callback(writes.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    ledger = Ledger(tmp_path / "l.db")
    pragmash.store.journal.ensure_journal(ledger)
    assert not [w for w in writes if w.upper().startswith("BEGIN IMMEDIATE")], writes
    conn = ledger.connection
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"vcs", "nodes", "leases", "runs", "steps", "locks", "notes_shown"} <= tables
    columns = {row[1] for row in conn.execute("PRAGMA table_info(nodes)")}
    assert {"host", "memory_mib"} <= columns


def test_foreign_keys_refuse_orphan_leases(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    with pytest.raises(sqlite3.IntegrityError), ledger.transaction() as conn:
        conn.execute("INSERT INTO leases VALUES ('vlan', '5', 'nobody', NULL)")


def test_each_thread_gets_its_own_connection(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    seen: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: seen.append(ledger.connection))
    thread.start()
    thread.join()
    assert seen and seen[0] is not ledger.connection


def _child_writes(ledger: Ledger) -> None:
    with ledger.transaction() as conn:
        conn.execute("INSERT INTO counters VALUES ('child', 1)")


def test_threads_creating_a_new_ledger_at_once_all_get_it(tmp_path: Path) -> None:
    """Eight threads of one process open a ledger nobody has made yet, at the same moment:
    each gets the one ledger (they once shared one half-made side file: disk I/O error)."""
    path = tmp_path / "state" / "ledger.sqlite3"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Ledger(path).connection.execute("SELECT count(*) FROM vcs").fetchone()
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    for _ in range(5):  # a race: several rounds, each on a fresh path
        path = path.with_name(f"{path.stem}x.sqlite3")
        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert not list(path.parent.glob(".*.new"))  # no side file left behind


def test_connection_reopens_after_fork(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    parent_conn = ledger.connection
    process = multiprocessing.get_context("fork").Process(target=_child_writes, args=(ledger,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert ledger.connection is parent_conn
    row = parent_conn.execute("SELECT value FROM counters WHERE name = 'child'").fetchone()
    assert row is not None and row[0] == 1


def test_unopenable_ledger_is_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger(blocker / "ledger.sqlite3")
