"""``pragmash resume VCNAME``: continue a VC's last run (recipe, scale, stop or start)."""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.commands import power, scale
from pragmash.engine.run import session
from pragmash.ui.arguments import command_parser
from pragmash.ui.cli import run as run_mod
from pragmash.ui.cli.power import finish as finish_power
from pragmash.ui.step_printer import StepPrinter
from pragmash.vc.formats.names import validate_name


def cmd_resume(args: list[str], out: TextIO, err: TextIO) -> int:
    """Continue a VC's last run from its first unfinished step."""
    p = command_parser(
        "resume", "Continue a VC's last run from its first unfinished step, same allocation."
    )
    p.add_argument("vcname")
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="resume even though the recipe changed since the run started (steps are "
        "matched by position)",
    )
    ns = p.parse_args(args)
    vcname = validate_name("VC name", ns.vcname)
    printer = StepPrinter(out, err)
    opened = session.opened_site(ns.site)  # once: each resume below takes it as it is
    record = opened.last_run(vcname)
    if record is not None and power.power_kind(record) is not None:
        # a stop's or start's steps are pragmash's
        run = power.resume(vcname, site=opened, on_event=printer)
        err.write(f"resuming {vcname}'s {power.plan_of(run).describe()}\n")
        return finish_power(run, out, err)
    if record is not None and scale.is_scale(record):  # a scale's steps are pragmash's
        run = scale.resume(vcname, site=opened, on_event=printer)
    else:
        run = session.resume(
            vcname, on_event=printer, site=opened, accept_changes=ns.accept_changes
        )
    printer.size_to(run.interpreter.steps)
    for note in session.site_notes(run.prepared) + run.notes:
        err.write(f"{note}\n")
    cur = run.interpreter.current
    if cur is not None:
        span = cur.statement.span
        err.write(f"resuming {ns.vcname} at {span}: {cur.statement.text}\n")
    return run_mod.finish(run, out, err)
