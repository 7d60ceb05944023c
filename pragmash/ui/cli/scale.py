"""``pragmash scale VCNAME +N|-N``: grow or shrink a running VC, printed like a run.

The scale itself (its checks, steps, journal and lock) is
:mod:`pragmash.engine.commands.scale`'s; this front end parses, prints each step as a run's
steps are printed, and reports how it ended through the run command's
:func:`~pragmash.ui.cli.run.finish`.
"""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.commands import scale
from pragmash.ui.arguments import ArgumentParser, add_site_option, positive_seconds
from pragmash.ui.cli import run as run_mod
from pragmash.ui.step_printer import StepPrinter

DESCRIPTION = """\
Grow a running VC by N computes (+N): their leases are taken in one ledger
transaction (refused, taking nothing, beyond the site's capacity), their disks made
as overlays on the base the VC's computes use, vc-out.xml rewritten for the whole
VC and put into the new nodes, which are booted and waited for until up. Or shrink
it (-N): the N highest-numbered computes are destroyed, their disks removed, their
leases released and vc-out.xml rewritten. Last, every running node receives its
current vc-out without a reboot, as `pragmash refresh VCNAME` does, and the VC's
recipe's `on grow` (or `on shrink`) statements run as steps. A scale is a run: `pragmash status VCNAME` shows its steps, `pragmash resume VCNAME`
continues it after a failure or Ctrl-C."""


def cmd_scale(args: list[str], out: TextIO, err: TextIO) -> int:
    """Grow (+N) or shrink (-N) a VC; exit status as a run's."""
    p = ArgumentParser(prog="pragmash scale", description=DESCRIPTION)
    p.add_argument("vcname", metavar="VCNAME")
    p.add_argument("change", metavar="+N|-N", help="computes to add (+N) or remove (-N)")
    add_site_option(p)
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=scale.DEFAULT_TIMEOUT,
        help=f"seconds the new computes get to be up (default {scale.DEFAULT_TIMEOUT:g})",
    )
    ns = p.parse_args(args)
    change = scale.parse_change(ns.change)
    run = scale.start(
        ns.vcname, change, site=ns.site, timeout=ns.timeout, on_event=StepPrinter(out, err)
    )
    for note in run.notes:
        err.write(f"{note}\n")
    return run_mod.finish(run, out, err)
