"""``pragmash stop VCNAME`` (alias ``shutdown``) and ``pragmash start VCNAME``, printed like runs.

The stop and the start themselves (their checks, steps, journal and lock) are
:mod:`pragmash.engine.commands.power`'s; this front end parses, prints each step as a run's
steps are printed and reports how it ended through the run command's
:func:`~pragmash.ui.cli.run.finish`.
"""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.commands import power
from pragmash.engine.run.session import Run
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.cli import run as run_mod
from pragmash.ui.step_printer import StepPrinter

STOP_DESCRIPTION = f"""\
Stop a VC's nodes: every node is asked at once (the hosts in parallel) to power off
(ACPI), and all of them get one deadline together (--timeout, default
{power.STOP_TIMEOUT:g} s). With --force, what is still running then is powered off
(as pulling the plug: the guest gets no say). Domains stay defined, disks and leases
are kept: `pragmash start VCNAME` starts the VC again. Says which nodes did not stop
(exit 3 unless --force got them). A stop is a run: `pragmash history VCNAME` lists
it, `pragmash resume VCNAME` continues it. `shutdown` is the same command."""

START_DESCRIPTION = f"""\
Start a stopped VC: the frontend, then (once it is up) the computes, each waited for
until up (--timeout seconds each wait, default {power.START_TIMEOUT:g}). Nodes
already running are left alone. Nothing is staged and no vc_driver/pre_boot runs
again, unless a node's domain or staged disk is missing: that node is named and
booted as `boot` would (staged, its vc-out.xml put in, defined). A start is a run:
`pragmash resume VCNAME` continues it after a failure or Ctrl-C."""


def _parser(name: str, description: str) -> ArgumentParser:
    p = ArgumentParser(prog=f"pragmash {name}", description=description)
    p.add_argument("vcname", metavar="VCNAME")
    add_site_option(p)
    return p


def cmd_stop(args: list[str], out: TextIO, err: TextIO, *, name: str = "stop") -> int:
    """Stop every node of a VC under one deadline; exit status as a run's."""
    p = _parser(name, STOP_DESCRIPTION)
    p.add_argument(
        "--timeout",
        type=float,
        default=power.STOP_TIMEOUT,
        help=f"seconds every node gets, together, to stop (default {power.STOP_TIMEOUT:g})",
    )
    p.add_argument(
        "--force", action="store_true", help="power off what did not stop by the deadline"
    )
    ns = p.parse_args(args)
    if ns.timeout < 0:
        p.error("--timeout: expected 0 or more seconds")
    plan = power.PowerPlan("stop", ns.timeout, ns.force)
    run = power.begin(ns.vcname, plan, site=ns.site, on_event=StepPrinter(out, err))
    return finish(run, out, err)


def cmd_shutdown(args: list[str], out: TextIO, err: TextIO) -> int:
    """``shutdown``: the name ``stop`` had before it was a run (kept for scripts)."""
    return cmd_stop(args, out, err, name="shutdown")


def cmd_start(args: list[str], out: TextIO, err: TextIO) -> int:
    """Start a stopped VC's nodes, frontend first; exit status as a run's."""
    p = _parser("start", START_DESCRIPTION)
    p.add_argument(
        "--timeout",
        type=float,
        default=power.START_TIMEOUT,
        help=f"seconds each wait gives the nodes to be up (default {power.START_TIMEOUT:g})",
    )
    ns = p.parse_args(args)
    if ns.timeout < 0:
        p.error("--timeout: expected 0 or more seconds")
    plan = power.PowerPlan("start", ns.timeout)
    run = power.begin(ns.vcname, plan, site=ns.site, on_event=StepPrinter(out, err))
    return finish(run, out, err)


def finish(run: Run, out: TextIO, err: TextIO) -> int:
    """Run a stop or start to the end (also for ``resume``) and say how the VC is left."""
    vcname = run.prepared.runtime.vcname
    stopping = power.plan_of(run).kind == "stop"
    left = "every node is shut off" if stopping else "every node is up"
    return run_mod.finish(run, out, err, finished=f"{vcname}: {left}\n")
