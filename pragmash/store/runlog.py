"""Each run's log file, beside its journal: what pragmash did, for the 3 a.m. question.

The journal says which step ran and how it ended; the log says what each step did to
which host: the external tools it ran (command line, exit status, duration), the
libvirt calls it made (with the host's URI), the ledger's transactions (debug). Every
module logs to the ``pragmash`` logger hierarchy; while a run is journaled, everything
at debug and up also goes to ``STATE/logs/VCNAME-run-ID.log``, which ``status`` and
``history`` name. Keys never reach a log: nothing logs a key's text.
"""

from __future__ import annotations

import logging
from pathlib import Path

LOGGER = "pragmash"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def run_log_path(state_dir: Path, vcname: str, run_id: int) -> Path:
    """Where run ``run_id`` of ``vcname`` writes its log."""
    return state_dir / "logs" / f"{vcname}-run-{run_id}.log"


def open_run_log(path: Path) -> logging.Handler | None:
    """Send the ``pragmash`` logger's records (debug and up) to ``path`` (appended).

    A log that cannot be written is no reason to stop a run: None, and the run goes on.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


def close_run_log(handler: logging.Handler | None) -> None:
    """Stop writing a run's log."""
    if handler is None:
        return
    logging.getLogger(LOGGER).removeHandler(handler)
    handler.close()
