"""Notes a site is told once: remembered in the ledger, so the next run stays quiet.

A note such as "this site config does not say how private networks are made" matters
the first time an administrator runs pragmash on the site; printed on every run it
becomes noise that hides the lines that matter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pragmash.store.ledger import Ledger, register_schema

NOTES_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes_shown (
    key      TEXT PRIMARY KEY,
    shown_at TEXT NOT NULL
);
"""
register_schema(NOTES_SCHEMA)


def first_time(ledger: Ledger, key: str) -> bool:
    """True the first time ``key`` is asked about on this ledger, False ever after."""
    ledger.ensure_schema(NOTES_SCHEMA)
    with ledger.transaction() as conn:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO notes_shown(key, shown_at) VALUES (?, ?)",
            (key, datetime.now(UTC).isoformat(timespec="seconds")),
        )
        return cursor.rowcount == 1
