"""The ledger: one SQLite database in the site's state folder.

It holds what a site has handed out (public addresses, VLANs, MACs, CPUs per VC)
and, through :meth:`Ledger.ensure_schema`, other modules' tables (run journals).
Several pragmash processes may run at once on one site, so every write goes through
:meth:`Ledger.transaction` (``BEGIN IMMEDIATE``: one writer at a time, others wait up
to the busy timeout) and UNIQUE constraints are the last line of defence against
handing one lease out twice. WAL mode lets readers go on while one process writes.

sqlite3 connections must not cross a fork or be shared between threads, so the
ledger opens one connection per (process, thread), lazily, on first use.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pragmash.errors import UserError
from pragmash.vc.site import SiteConfig

BUSY_TIMEOUT_SECONDS = 30.0

# Tables owned by allocation. Every lease is one row in `leases`, keyed by (kind, value),
# so two VCs can never hold the same public address, VLAN or MAC.
LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS vcs (
    vcname      TEXT PRIMARY KEY,
    vc_in_path  TEXT NOT NULL,
    cpus        INTEGER NOT NULL,
    vlan        INTEGER NOT NULL UNIQUE,
    public_ip   TEXT NOT NULL UNIQUE,
    public_fqdn TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'allocated'
);
CREATE TABLE IF NOT EXISTS nodes (
    vcname      TEXT NOT NULL REFERENCES vcs(vcname) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('frontend', 'compute')),
    idx         INTEGER,
    cpus        INTEGER NOT NULL,
    private_ip  TEXT NOT NULL,
    public_ip   TEXT,
    private_mac TEXT NOT NULL UNIQUE,
    public_mac  TEXT UNIQUE,
    PRIMARY KEY (vcname, name),
    UNIQUE (vcname, private_ip)
);
CREATE TABLE IF NOT EXISTS leases (
    kind   TEXT NOT NULL CHECK (kind IN ('public_ip', 'vlan', 'mac')),
    value  TEXT NOT NULL,
    vcname TEXT NOT NULL REFERENCES vcs(vcname) ON DELETE CASCADE,
    node   TEXT,
    PRIMARY KEY (kind, value)
);
CREATE INDEX IF NOT EXISTS leases_by_vc ON leases(vcname);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class Ledger:
    """The site's SQLite ledger; safe to use from several processes and threads at once."""

    def __init__(
        self, where: SiteConfig | Path | str, *, timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = Path(where.ledger_path if isinstance(where, SiteConfig) else where)
        self.timeout = timeout
        self._local = threading.local()
        self._schemas_done: set[str] = set()
        self.ensure_schema(LEASE_SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """This process's and thread's connection, opened on first use (and after a fork)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = self._open()
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so BEGIN IMMEDIATE is possible.
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True
            )
        except (OSError, sqlite3.Error) as exc:
            raise UserError(
                f"{self.path}: cannot open the ledger: {exc}",
                hint="check the site config's [paths] state folder (or $PRAGMASH_STATE_DIR)",
            ) from None
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._set_wal(conn)
        return conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL; the switch itself can report 'locked' without waiting, so retry."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception.

        Takes the write lock up front, so a read-then-write (find a free address, take
        it) cannot interleave with another process's. Nested use joins the outer one.
        """
        conn = self.connection
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (disk full, I/O error): don't mask that.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only view that stays consistent across several SELECTs (deferred BEGIN)."""
        conn = self.connection
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def ensure_schema(self, sql: str) -> None:
        """Run a ``CREATE TABLE IF NOT EXISTS …`` script once per Ledger, in one transaction.

        Other modules (the run journal) add their own tables this way.
        """
        if sql in self._schemas_done:
            return
        with self.transaction() as conn:
            for statement in _statements(sql):
                conn.execute(statement)
        self._schemas_done.add(sql)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statements(sql: str) -> Iterator[str]:
    """Split a schema script into statements; executescript() would COMMIT our transaction."""
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
