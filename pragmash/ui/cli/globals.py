"""The options every command takes, wherever they are written, and what they set up.

``pragmash --site X list`` and ``pragmash list --site X`` mean the same, as do ``-v``
and ``--log-level`` anywhere before a ``--`` (what follows ``--`` belongs to a command
run elsewhere, such as ``pragmash ssh VC -- ls -v``). What ``--version`` prints is
:mod:`pragmash.ui.cli.version`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TextIO

from pragmash.errors import UserError

LEVELS = ("debug", "info", "warning", "error")


@dataclass
class GlobalOptions:
    site: str | None = None
    log_level: str = "warning"
    version: bool = False


def split_global_options(args: list[str]) -> tuple[list[str], GlobalOptions]:
    """``args`` without the global options, and those options."""
    found = GlobalOptions()
    rest: list[str] = []
    verbose = 0
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            rest += args[i:]
            break
        if word in ("--site", "--log-level"):
            if i + 1 >= len(args):
                raise UserError(f"pragmash: {word} needs a value", hint="see `pragmash --help`")
            value = args[i + 1]
            i += 2
        elif word.startswith(("--site=", "--log-level=")):
            word, _, value = word.partition("=")
            i += 1
        else:
            if word in ("-v", "--verbose"):
                verbose += 1
            elif word == "-vv":
                verbose += 2
            elif word in ("-V", "--version") or (word == "version" and not rest):
                found.version = True
            else:
                rest.append(word)
            i += 1
            continue
        if word == "--site":
            found.site = value
        else:
            if value.lower() not in LEVELS:
                raise UserError(
                    f"pragmash: --log-level {value!r}: expected one of {', '.join(LEVELS)}"
                )
            found.log_level = value.lower()
    if verbose:
        found.log_level = "info" if verbose == 1 else "debug"
    return rest, found


def configure_logging(level: str, err: TextIO) -> None:
    """The ``pragmash`` logger: ``level`` and up on stderr (once per process)."""
    logger = logging.getLogger("pragmash")
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        if getattr(handler, "pragmash_stderr", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(err)
    handler.setLevel(getattr(logging, level.upper()))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.pragmash_stderr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
