"""Each run's log file, beside its journal: what pragmash did, for the 3 a.m. question.

The journal says which step ran and how it ended; the log says what each step did to
which host: the external tools it ran (command line, exit status, duration), the
libvirt calls it made (with the host's URI), the ledger's transactions (debug). Every
module logs to the ``pragmash`` logger hierarchy; while a run is journaled, everything
at debug and up also goes to ``STATE/logs/VCNAME-run-ID.log``, which ``status`` and
``history`` name. Keys never reach a log: nothing logs a key's text.

A site may also send every command's records to the system log (``[logging] syslog``,
a local socket: journald and rsyslog both listen on ``/dev/log``), so a site's usual
log tools see what pragmash did to its hosts.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import stat
from pathlib import Path

LOGGER = "pragmash"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: syslog adds the time and host; the tag names the program and its pid, as daemons do
_SYSLOG_FORMAT = "pragmash[%(process)d]: %(levelname)s %(name)s: %(message)s"
_syslog_handlers: dict[str, logging.Handler] = {}


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


def send_to_syslog(address: str, level: str) -> str | None:
    """Also send the ``pragmash`` logger's records from ``level`` up to the syslog socket
    at ``address`` (once per process); why not, when the socket cannot be used."""
    if address in _syslog_handlers:
        return None
    try:
        if not stat.S_ISSOCK(os.stat(address).st_mode):
            return f"cannot log to syslog at {address}: not a socket"
    except OSError as exc:
        return f"cannot log to syslog at {address}: {exc.strerror or exc}"
    try:
        handler = logging.handlers.SysLogHandler(address=address, socktype=socket.SOCK_DGRAM)
    except OSError as exc:
        return f"cannot log to syslog at {address}: {exc.strerror or exc}"
    handler.setLevel(getattr(logging, level.upper()))
    handler.setFormatter(logging.Formatter(_SYSLOG_FORMAT))
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    _syslog_handlers[address] = handler
    return None


def stop_syslog() -> None:
    """Stop sending to every syslog socket (tests; a process ends them by exiting)."""
    logger = logging.getLogger(LOGGER)
    for handler in _syslog_handlers.values():
        logger.removeHandler(handler)
        handler.close()
    _syslog_handlers.clear()
