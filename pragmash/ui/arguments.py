"""Command-line parsing shared by every front end: one argparse class, one ``--site``.

The run command, the subcommands, ``sync`` and the REPL all parse arguments; a usage
mistake must end the same way everywhere (a UserError: exit 2, a hint to ``--help``,
no traceback). The options that start a run live in :mod:`pragmash.ui.run_arguments`,
so a command that starts no run (``list``, ``status``) does not load the run machinery
they are checked with.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, NoReturn

from pragmash.errors import UserError


def positive_seconds(text: str) -> float:
    """An option's seconds: a finite number above zero (``nan``, ``inf`` and ``-5`` are not)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as a UserError, never abbreviating options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def add_site_option(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--site FILE``: every command takes it, and says the same of it unless told otherwise."""
    p.add_argument(
        "--site", help=help or "the site config (default $PRAGMASH_SITE, else the demo site)"
    )


def command_parser(name: str, description: str) -> ArgumentParser:
    """The parser of ``pragmash NAME``, with ``--site``; the command adds the rest."""
    p = ArgumentParser(prog=f"pragmash {name}", description=description)
    add_site_option(p)
    return p
