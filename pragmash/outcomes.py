"""How a run and each of its steps ended, or that they have not: the journal's ``outcome``.

The ledger keeps these words (``runs.outcome``, ``steps.outcome``); ``status``,
``history``, ``list``, ``resume`` and ``scale`` read them back, and users and scripts
see them as they are. Each is written once, here, as a constant whose type is its
exact text (``Final``: mypy reads it as that literal), so no module spells one out,
and a misspelt outcome cannot hide a run from ``resume`` or a failure from ``status``.
The text never changes: ledgers written by earlier versions must still read right.

A node's domain state (``running``, ``shut off``, ``absent``) is another meaning,
written in :mod:`pragmash.domain_states`.
"""

from __future__ import annotations

from typing import Final, Literal

# -- a run's and a step's ----------------------------------------------------------------

#: Started and not ended: still going, or its process was killed before it could write
#: its end (``store.journal.run_outcome`` tells which for a run).
RUNNING: Final = "running"
FAILED: Final = "failed"  # stopped by an error
INTERRUPTED: Final = "interrupted"  # stopped by the user, a signal, or a dead process

# -- a step's ----------------------------------------------------------------------------

DONE: Final = "done"
SKIPPED: Final = "skipped"  # nothing to do here (a simulated engine, the REPL's `skip`)

# -- a run's -----------------------------------------------------------------------------

FINISHED: Final = "finished"  # every step done or skipped
CLEANED: Final = "cleaned"  # `pragmash clean` ended it (the VC is gone)

# -- the types of the words above, for mypy (tests/test_outcomes.py keeps them equal) ----

#: How a step that did not fail ended (a driver stage's or a statement's result).
DoneOrSkipped = Literal["done", "skipped"]
#: How a run or a step stopped before its end.
Stopped = Literal["failed", "interrupted"]
#: How walking a run's steps ends: every one done or skipped, or one stopped it.
Ended = Literal["finished", "failed", "interrupted"]
#: How a run ends (what ``Journal.end`` writes): as its steps ended, or cleaned.
RunEnd = Literal["finished", "failed", "interrupted", "cleaned"]
