"""Opening the run a REPL works on: ``pragmash repl RECIPE --vcname NAME`` or ``--attach NAME``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from pragmash.engine.run import session as session_mod
from pragmash.engine.run.debug import DebugRun
from pragmash.errors import UserError
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.run_arguments import add_node_options, add_run_options, run_options
from pragmash.ui.step_printer import StepPrinter
from pragmash.vc.formats.names import validate_name


def _arg_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="pragmash repl",
        description="Step through a run, or open a VC's last run where it stopped (--attach).",
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
    add_site_option(p)
    add_run_options(p)
    add_node_options(p)
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
    options = run_options(ns)
    # images are fetched and checked before the REPL opens; their progress goes to err
    prep = session_mod.prepare(options, on_event=StepPrinter(err, err))
    if prep.site.embedded:
        err.write(
            f"note: no site config given (--site, $PRAGMASH_SITE, ~/.config/pragmash/site.toml or /etc/pragmash/site.toml): using the embedded demo "
            f"site ({prep.site.uri}, state in {prep.site.state_dir})\n"
        )
    for note in session_mod.site_notes(prep):
        err.write(f"{note}\n")
    return session_mod.start(prep)
