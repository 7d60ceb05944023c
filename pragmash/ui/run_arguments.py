"""The options that start a run, one meaning wherever a run is started, checked or stepped.

``--vcname``, ``--set``, ``--key`` … mean the same thing to the run command, ``check``,
``resume`` and the REPL: each adds them here and turns them into one
:class:`~pragmash.engine.run.session.RunOptions` with :func:`run_options`. Kept apart
from :mod:`pragmash.ui.arguments` because building RunOptions needs the run session,
which commands that start no run (``list``, ``status``) should not pay for loading.
"""

from __future__ import annotations

import argparse

from pragmash.engine.run.mem_option import parse_mem
from pragmash.engine.run.session import RunOptions, parse_sets
from pragmash.vc.formats.keys import read_public_keys


def add_run_options(p: argparse.ArgumentParser, *, vcname_help: str | None = None) -> None:
    """The options that shape a run: base path, compute count, ``--set``, ``--allow-run``.

    ``RECIPE``, ``--vcname`` and ``--site`` are added by each command, because whether
    they are required differs (``check`` guesses a VC, ``repl --attach`` takes none).
    """
    p.add_argument("--num_compute", type=int, help="compute CPUs to allocate")
    p.add_argument("--base_path", help="the repository holding vcdb.txt")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="give a recipe parameter; repeatable",
    )
    p.add_argument("--allow-run", action="store_true", help="permit the recipe's `run` statements")


def add_node_options(p: argparse.ArgumentParser) -> None:
    """``--key`` and ``--mem``: what the nodes of a run get (the run command and the REPL)."""
    p.add_argument("--key", metavar="FILE", help="SSH public key for root (see pragmash --help)")
    p.add_argument("--mem", metavar="MIB[:MIB]", help="frontend[:compute] memory in MiB")


def key_option(path: str | None) -> str | None:
    """``--key FILE``'s public key text, checked (a private key or garbage is refused)."""
    return "\n".join(read_public_keys(path)) if path else None


def mem_option(text: str | None) -> str | None:
    """``--mem`` as given, checked now so a typo is a usage error before anything loads."""
    if text is not None:
        parse_mem(text)
    return text


def run_options(ns: argparse.Namespace, *, vcname: str | None = None) -> RunOptions:
    """The RunOptions the parsed arguments ask for (``vcname`` overrides ``--vcname``).

    ``--key`` and ``--mem`` count where the command has them (:func:`add_node_options`).
    """
    return RunOptions(
        recipe=ns.recipe,
        vcname=vcname if vcname is not None else ns.vcname,
        num_compute=ns.num_compute,
        base_path=ns.base_path,
        site=ns.site,
        sets=parse_sets(ns.sets),
        allow_run=ns.allow_run,
        key=key_option(ns.key) if "key" in ns else None,
        key_file=ns.key if "key" in ns else None,
        mem=mem_option(ns.mem) if "mem" in ns else None,
    )
