"""The ledger: one SQLite database in the site's state folder.

It holds what a site has handed out (public addresses, VLANs, MACs, CPUs per VC)
and, through :meth:`Ledger.ensure_schema`, other modules' tables (run journals).
Several pragmash processes may run at once on one site, so every write goes through
:meth:`Ledger.transaction` (``BEGIN IMMEDIATE``: one writer at a time, others wait up
to the busy timeout) and UNIQUE constraints are the last line of defence against
handing one lease out twice. WAL mode lets readers go on while one process writes.

sqlite3 connections must not cross a fork or be shared between threads, so the
ledger opens one connection per (process, thread), lazily, on first use.

The ledger is the only record of who holds which address, so losing it silently
would hand leases out twice. Hence: a new ledger is made complete in a side file
and linked into place, so a ledger file is never legitimately empty (a zero-byte
one was truncated and is refused, not taken as new); its header carries pragmash's
``application_id``, so a SQLite file that is not ours is refused, not written into;
and every transaction checks that the path still names the file this process
opened, so a ledger deleted or replaced mid-run stops the run. Every SQLite fault
(corrupted, full disk, read-only, locked past the busy timeout) becomes a
:class:`LedgerError` naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pragmash.atomic_files import fsync_path
from pragmash.errors import LedgerError
from pragmash.vc.config.site import SiteConfig

log = logging.getLogger("pragmash.ledger")

BUSY_TIMEOUT_SECONDS = 30.0

# "PMSH" in the database header (PRAGMA application_id): this file is a pragmash ledger.
APPLICATION_ID = 0x504D5348
# The tables every ledger made before the header was stamped has; such a ledger is adopted.
_LEGACY_TABLES = frozenset({"vcs", "nodes", "leases", "counters"})

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

# The object a CREATE … IF NOT EXISTS statement makes, for a read-only look first.
_CREATES = re.compile(r"CREATE\s+(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)

# Added to `nodes` when sites grew several hosts (store.placement): each node's host and
# the memory placement counted for it. Older ledgers get them NULL (the first host).
NODE_PLACEMENT_COLUMNS = {"host": "TEXT", "memory_mib": "INTEGER"}


#: Every table a new ledger is made with (see :func:`register_schema`): the script, and
#: columns added since (table: {column: declaration}) that a script's CREATE may lack.
_SCHEMAS: list[tuple[str, dict[str, dict[str, str]]]] = [
    (LEASE_SCHEMA, {"nodes": NODE_PLACEMENT_COLUMNS})
]


def register_schema(sql: str, columns: dict[str, dict[str, str]] | None = None) -> None:
    """Have every new ledger made with these tables (another store module's, at import).

    A ledger is then complete when it is linked into place, and a command's first use of
    a new ledger writes no schema. Older ledgers get them through :meth:`Ledger.ensure_schema`
    and :meth:`Ledger.ensure_columns` as before.
    """
    if all(sql != known for known, _ in _SCHEMAS):
        _SCHEMAS.append((sql, columns or {}))


#: A new ledger: the site's admins (the state folder's group) read and write it, others
#: nothing (it names every VC and address of the site).
LEDGER_MODE = 0o660
#: A state folder pragmash makes: the group's, and new files in it get that group (setgid).
STATE_FOLDER_MODE = 0o2770


#: The ledger's marker: ``ledger.sqlite3.made`` beside ``ledger.sqlite3``.
MARKER_SUFFIX = ".made"


def _mark(marker: Path) -> None:
    """Leave the ledger's marker (best effort: a folder others made read-only keeps none)."""
    with contextlib.suppress(OSError):
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, LEDGER_MODE)
        with os.fdopen(fd, "w") as out:
            out.write(
                "pragmash made the ledger beside this file; while this file is here, a missing"
                " ledger was deleted, and no new one is started in its place\n"
            )


def _make_state_folder(folder: Path) -> None:
    """Make the state folder so that the site's admins, as a group, can share the ledger.

    An administrator may make it beforehand with the admins' group
    (``install -d -m 2770 -g pragma /var/lib/pragmash/SITE``); made here, it gets the
    group of whoever runs pragmash first.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it first
        folder.mkdir()
        folder.chmod(STATE_FOLDER_MODE)


class Ledger:
    """The site's SQLite ledger; safe to use from several processes and threads at once."""

    def __init__(
        self, where: SiteConfig | Path | str, *, timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = Path(where.ledger_path if isinstance(where, SiteConfig) else where)
        self.timeout = timeout
        self._local = threading.local()
        self._schemas_done: set[str] = set()
        self._file_id: tuple[int, int] | None = None
        self.ensure_schema(LEASE_SCHEMA)
        self.ensure_columns("nodes", NODE_PLACEMENT_COLUMNS)

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
            if not self.path.parent.exists():
                _make_state_folder(self.path.parent)
            if not self.path.exists():
                # the marker is made after the ledger's link: seen with the ledger still
                # missing, the ledger was deleted (not being made by another process now)
                if self.marker.exists() and not self.path.exists():
                    raise self._deleted_between_commands()
                self._create()
            elif not self.marker.exists():
                _mark(self.marker)  # a ledger made before markers were: from now on
            info = self.path.stat()
        except OSError as exc:
            raise LedgerError(
                str(self.path),
                f"cannot open the ledger: {exc}",
                hint="check the site config's [paths] state folder (or $PRAGMASH_STATE_DIR); an "
                "administrator makes it for the site's admins' group: install -d -m 2770 -g "
                f"GROUP {self.path.parent}",
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise LedgerError(str(self.path), "is not a file", hint=_ELSEWHERE)
        if info.st_size == 0:
            raise LedgerError(
                str(self.path),
                "the file is empty (0 bytes): a pragmash ledger never is, so it was truncated "
                "and the VCs and leases it recorded are lost; pragmash will not start a new "
                "one over it, since that would hand the same addresses out again",
                hint="restore the ledger from a backup; only if no VC of this site is allocated "
                "(no domains running), remove the empty file and its marker "
                f"({self.marker.name}) to start a new ledger",
            )
        try:
            # isolation_level=None: we issue BEGIN ourselves, so BEGIN IMMEDIATE is possible.
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._check_identity(conn)
            self._set_wal(conn)
        except sqlite3.Error as exc:
            raise self._fault(exc) from None
        file_id = (info.st_dev, info.st_ino)
        if self._file_id is None:
            self._file_id = file_id
        elif file_id != self._file_id:
            raise self._gone("replaced by another file")
        return conn

    def _create(self) -> None:
        """Make a new, stamped ledger with every registered table beside the path, then
        link it into place.

        The link is atomic and never overwrites, so another process sees either no
        ledger or a complete one, and two processes creating at once end with one.
        """
        # named by process AND thread: two threads of one process (parallel boots, a
        # test's concurrent runs) creating at once must not share one half-made file
        side = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.new")
        try:
            conn = sqlite3.connect(side, isolation_level=None)
            try:
                # no other process sees this file yet: no rollback journal and no syncs
                # while it is made; it is synced once, whole, before it is linked
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("BEGIN")  # every table in one transaction
                for sql, columns in _SCHEMAS:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    for table, wanted in columns.items():
                        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                        for name, decl in wanted.items():
                            if name not in have:
                                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
                conn.execute("COMMIT")
                # WAL is kept in the file's header: no connection has to switch it (a
                # write) when it first opens the ledger
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()  # the last connection: its WAL is checkpointed and removed
            side.chmod(LEDGER_MODE)  # SQLite gives its -wal and -shm files the same mode
            fsync_path(side)
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(side, self.path)
            _mark(self.marker)
        except sqlite3.Error as exc:
            raise self._fault(exc) from None
        finally:
            side.unlink(missing_ok=True)

    @property
    def marker(self) -> Path:
        """Beside the ledger, made with it: while it is there, a missing ledger was deleted
        (between commands too), not never made, and no empty one is started in its place."""
        return self.path.with_name(self.path.name + MARKER_SUFFIX)

    def _deleted_between_commands(self) -> LedgerError:
        return LedgerError(
            str(self.path),
            f"the ledger is gone, though this site had one ({self.marker} says so): it was"
            " deleted or moved, and the VCs and leases it recorded with it; pragmash will not"
            " start an empty one, since that would hand the same addresses out again",
            hint="put the ledger back (from a backup); only if no VC of this site is allocated"
            f" (no domains running), remove {self.marker} to start a new ledger",
        )

    def _check_identity(self, conn: sqlite3.Connection) -> None:
        """Refuse a SQLite file that is not a pragmash ledger; stamp an older one of ours."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:
            return
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if app_id != 0 or (tables and not tables >= _LEGACY_TABLES):
            what = (
                f"application id {app_id:#x}" if app_id else f"tables {', '.join(sorted(tables))}"
            )
            raise LedgerError(
                str(self.path),
                f"this SQLite database is not a pragmash ledger ({what}); "
                "pragmash will not write into it",
                hint=_ELSEWHERE,
            )
        # a blank database, or a ledger made before ledgers were stamped: ours
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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

    def _check_same_file(self) -> None:
        """The path still names the file this process opened (not deleted, not replaced)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise self._gone("deleted") from None
        except OSError as exc:
            raise LedgerError(str(self.path), f"cannot read the ledger: {exc.strerror}") from None
        if (info.st_dev, info.st_ino) != self._file_id:
            raise self._gone("replaced by another file")

    def _gone(self, what: str) -> LedgerError:
        return LedgerError(
            str(self.path),
            f"the ledger was {what} while pragmash was using it; stopped rather than go on "
            "with leases no longer recorded",
            hint="put the ledger back (from a backup) before starting or resuming runs on this "
            "site: a new ledger would hand the same addresses out again",
        )

    def _fault(self, exc: sqlite3.Error) -> LedgerError | sqlite3.Error:
        """A SQLite failure as a LedgerError saying what happened and what to do.

        An error that is not about the file (a constraint, a bug in a statement) is
        returned as it is, for the caller to re-raise.
        """
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        where = str(self.path)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
            return LedgerError(
                where,
                f"another process has held a write transaction on the ledger for longer than "
                f"the busy timeout ({self.timeout:g} s)",
                hint="wait for the other pragmash (or a sqlite3 shell) to finish, then try "
                "again; `fuser` on the ledger file shows who has it open",
            )
        if name == "SQLITE_FULL":
            return LedgerError(
                where,
                f"the disk holding the ledger is full ({text})",
                hint=f"free space on the file system of {self.path.parent}, then try again",
            )
        if name.startswith("SQLITE_READONLY") or (
            name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")) and _read_only(self.path.parent)
        ):
            return LedgerError(
                where,
                f"the ledger cannot be written: the file system or file is read-only ({text})",
                hint=f"make {self.path.parent} writable (remount it read-write, or fix the "
                "file's permissions), then try again",
            )
        if name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT"):
            return LedgerError(
                where,
                f"the ledger is corrupted ({text}); pragmash will not write into it",
                hint="restore it from a backup (`sqlite3 FILE .recover` may save what is left); "
                "only if no VC of this site is allocated, move it aside to start a new ledger",
            )
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")):
            return LedgerError(
                where,
                f"cannot read or write the ledger ({text})",
                hint=f"check the file and the file system of {self.path.parent}",
            )
        if text.startswith(("no such table", "no such column")) or "has no column" in text:
            return LedgerError(
                where,
                f"the ledger's tables are not what this pragmash expects ({text})",
                hint=_ELSEWHERE,
            )
        return exc

    def _raise(self, exc: sqlite3.Error) -> None:
        fault = self._fault(exc)
        if fault is exc:
            raise exc
        raise fault from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception.

        Takes the write lock up front, so a read-then-write (find a free address, take
        it) cannot interleave with another process's. Nested use joins the outer one.
        """
        with self._guarded("BEGIN IMMEDIATE") as conn:
            yield conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: what the body writes is undone if it raises, and the
        transaction goes on (``SAVEPOINT`` … ``RELEASE``, or ``ROLLBACK TO``)."""
        conn = self.connection
        assert conn.in_transaction, "a savepoint needs a transaction around it"
        try:
            conn.execute("SAVEPOINT part")
        except sqlite3.Error as exc:
            self._raise(exc)
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # the body's error is the one to report
                conn.execute("ROLLBACK TO part")
                conn.execute("RELEASE part")
            raise
        try:
            conn.execute("RELEASE part")
        except sqlite3.Error as exc:
            self._raise(exc)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only view that stays consistent across several SELECTs (deferred BEGIN)."""
        with self._guarded("BEGIN") as conn:
            yield conn

    @contextmanager
    def _guarded(self, begin: str) -> Iterator[sqlite3.Connection]:
        """One transaction, with every SQLite fault about the file made a LedgerError."""
        conn = self.connection
        if conn.in_transaction:
            yield conn
            return
        self._check_same_file()
        started = time.monotonic()
        try:
            conn.execute(begin)
        except sqlite3.Error as exc:
            self._raise(exc)
        try:
            yield conn
            conn.execute("COMMIT")
            log.debug("%s … COMMIT in %.4f s", begin, time.monotonic() - started)
        except sqlite3.Error as exc:
            self._rollback(conn)
            self._raise(exc)
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (disk full, I/O error): don't mask that.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                conn.execute("ROLLBACK")

    def ensure_schema(self, sql: str) -> None:
        """Run a ``CREATE TABLE IF NOT EXISTS …`` script once, in one transaction.

        Other modules (the run journal) add their own tables this way. A ledger that has
        every table and index already is only read (one SELECT): a command's set-up
        writes nothing to a ledger in use.
        """
        if sql in self._schemas_done:
            return
        wanted = {name for _kind, name in _CREATES.findall(sql)}
        with self.snapshot() as conn:
            have = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not wanted <= have:
            with self.transaction() as conn:
                for statement in _statements(sql):
                    conn.execute(statement)
        self._schemas_done.add(sql)

    def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add columns a newer pragmash uses to a table an older one made (``ALTER TABLE``).

        Existing ledgers keep working when the format grows: the new columns start NULL.
        """
        key = f"columns {table} {sorted(columns.items())}"
        if key in self._schemas_done:
            return
        with self.snapshot() as conn:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not set(columns) <= have:
            with self.transaction() as conn:  # read again: another process may have added them
                have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                for name, decl in columns.items():
                    if name not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        self._schemas_done.add(key)

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


_ELSEWHERE = (
    "point the site config's [paths] state (or $PRAGMASH_STATE_DIR) at a folder of its own; "
    "pragmash keeps its ledger there as ledger.sqlite3"
)


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


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
