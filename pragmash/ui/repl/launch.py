"""Opening the run a REPL works on: ``pragmash repl RECIPE --vcname NAME`` or ``--attach NAME``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pragmash.engine import session as session_mod
from pragmash.engine.debug import DebugRun
from pragmash.engine.overrides import parse_mem
from pragmash.errors import UserError
from pragmash.ui.render import StepPrinter
from pragmash.vc.keys import read_public_keys
from pragmash.vc.names import validate_name


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}", hint="see `pragmash repl --help`")


def _arg_parser() -> _Parser:
    p = _Parser(
        prog="pragmash repl",
        description="Step through a run, or open a VC's last run where it stopped (--attach).",
        allow_abbrev=False,
    )
    p.add_argument("recipe", nargs="?", help="the recipe to load; stops before its first statement")
    p.add_argument("--vcname", help="the virtual cluster (with RECIPE)")
    p.add_argument(
        "--attach", metavar="NAME", help="open NAME's last run at the step where it stopped"
    )
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="with --attach: open the run even though its recipe changed since it started",
    )
    p.add_argument("--num_compute", type=int)
    p.add_argument("--base_path")
    p.add_argument("--site", help="the site config (default $PRAGMASH_SITE, else the demo site)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--allow-run", action="store_true")
    p.add_argument("--key", metavar="FILE", help="SSH public key for root (see pragmash --help)")
    p.add_argument("--mem", metavar="MIB[:MIB]", help="frontend[:compute] memory in MiB")
    return p


def open_run(argv: Sequence[str], err: TextIO) -> session_mod.Run:
    """The run the REPL works on: a fresh one stopped before step 1, or the VC's last (--attach)."""
    ns = _arg_parser().parse_args(list(argv))
    if ns.attach:
        if ns.recipe or ns.vcname:
            raise UserError("pragmash repl --attach NAME takes no RECIPE or --vcname")
        run = session_mod.resume(
            validate_name("VC name (--attach)", ns.attach),
            site=ns.site,
            accept_changes=ns.accept_changes,
        )
        DebugRun(run).restore_from_journal()
        for note in session_mod.site_notes(run.prepared) + run.notes:
            err.write(f"{note}\n")
        return run
    if not ns.recipe or not ns.vcname:
        raise UserError(
            "pragmash repl: expected RECIPE --vcname NAME, or --attach NAME",
            hint="see `pragmash repl --help`",
        )
    session_mod.require_recipe_file(ns.recipe)
    options = session_mod.RunOptions(
        recipe=ns.recipe,
        vcname=ns.vcname,
        num_compute=ns.num_compute,
        base_path=ns.base_path,
        site=ns.site,
        sets=session_mod.parse_sets(ns.sets),
        allow_run=ns.allow_run,
        key="\n".join(read_public_keys(Path(ns.key).expanduser())) if ns.key else None,
        mem=ns.mem if ns.mem is None else ":".join(map(str, parse_mem(ns.mem))),
    )
    # images are fetched and checked before the REPL opens; their progress goes to err
    prep = session_mod.prepare(options, on_event=StepPrinter(err, err))
    if prep.site.embedded:
        err.write(
            f"note: no site config given (--site or $PRAGMASH_SITE): using the embedded demo "
            f"site ({prep.site.uri}, state in {prep.site.state_dir})\n"
        )
    for note in session_mod.site_notes(prep):
        err.write(f"{note}\n")
    return session_mod.start(prep)
