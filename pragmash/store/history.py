"""A VC's runs over time, for what one run's journal cannot say alone.

``pragmash history`` lists them all, each with its kind (a recipe's run, a scale, a
stop, a start). A VC's nodes may have been booted by several runs: the recipe's run, then each
``pragmash scale`` (a run of its own). ``status`` needs every run since the VC was
allocated to tell which nodes the ledger believes are running.
"""

from __future__ import annotations

from pragmash import outcomes, stages
from pragmash.store.journal import RunRecord, StepRecord, ensure_journal, run_from_row, steps_of
from pragmash.store.ledger import Ledger

#: The file name a stop's or start's steps are shown and journaled under
#: (pragmash.engine.commands.power makes them; ``status`` reads what they powered).
POWER_FILE = "power"


def run_ids(ledger: Ledger, vcname: str) -> list[int]:
    """The VC's run ids, newest first."""
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        rows = conn.execute("SELECT id FROM runs WHERE vcname=? ORDER BY id DESC", (vcname,))
        return [int(row[0]) for row in rows]


def runs_of(ledger: Ledger, vcname: str) -> list[RunRecord]:
    """Every run of the VC, oldest first (``pragmash history``)."""
    ensure_journal(ledger)
    with ledger.snapshot() as conn:
        rows = conn.execute("SELECT * FROM runs WHERE vcname=? ORDER BY id", (vcname,)).fetchall()
    return [run_from_row(row) for row in rows]


def run_kind(record: RunRecord) -> str:
    """What made a run: ``recipe``, ``scale``, ``stop`` or ``start`` (their options say)."""
    if isinstance(record.options.get("scale"), dict):
        return "scale"
    power = record.options.get("power")
    if isinstance(power, dict) and power.get("kind") in ("stop", "start"):
        return str(power["kind"])
    return "recipe"


def steps_since_allocation(ledger: Ledger, vcname: str) -> list[StepRecord]:
    """The steps of the VC's runs back to (and including) the one whose ``allocate`` was done.

    Oldest run first. A VC cleaned and allocated again starts afresh: runs before the
    allocating one speak of domains that were destroyed since.
    """
    runs: list[list[StepRecord]] = []
    for run_id in run_ids(ledger, vcname):
        steps = steps_of(ledger, run_id)
        runs.append(steps)
        if any(s.outcome == outcomes.DONE and _allocates(s.text) for s in steps):
            break
    return [step for steps in reversed(runs) for step in steps]


def _allocates(text: str) -> bool:
    return text.startswith(("allocate", stages.ALLOCATE))
