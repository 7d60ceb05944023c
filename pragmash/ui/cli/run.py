"""``pragmash RECIPE --vcname NAME``: start a run, print its steps, report how it ended.

Also home of :func:`finish` (run to the end and report), which ``resume`` shares,
and of the dry-run plan printer. The run itself is :mod:`pragmash.engine.run.session`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from pragmash import outcomes
from pragmash.engine.run import session
from pragmash.engine.run.plan import make_plan
from pragmash.engine.run.session import Prepared, Run
from pragmash.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    EXIT_USER,
    LedgerError,
    RecipeError,
    StepError,
    UserError,
    VcTakenError,
)
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import location, render_error
from pragmash.ui.repl.debugger import debug_run
from pragmash.ui.run_arguments import add_node_options, add_run_options, run_options
from pragmash.ui.step_printer import StepPrinter


def _run_parser() -> ArgumentParser:
    """The run command's options; ``pragmash --help`` (MAIN_HELP) documents them."""
    p = ArgumentParser(prog="pragmash", add_help=False)
    p.add_argument("recipe")
    p.add_argument("--vcname", required=True)
    add_site_option(p)
    add_run_options(p)
    add_node_options(p)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--break", dest="breaks", action="append", default=[])
    p.add_argument("--step", action="store_true")
    p.add_argument("--debug-on-failure", action="store_true")
    return p


def main(args: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Parse the run command's arguments and run the recipe."""
    ns = _run_parser().parse_args(list(args))
    options = run_options(ns)
    session.require_recipe_file(options.recipe)
    printer = StepPrinter(out, err)
    # images are fetched and checked here, before the run starts (not for a dry run)
    prep = session.prepare(options, on_event=printer, fetch_images=not ns.dry_run)
    if prep.site.embedded:
        err.write(
            f"note: no site config given (--site, $PRAGMASH_SITE, ~/.config/pragmash/site.toml or /etc/pragmash/site.toml): using the embedded demo site "
            f"({prep.site.uri}, state in {prep.site.state_dir})\n"
        )
    if ns.dry_run:
        return print_plan(prep, out)
    for note in session.site_notes(prep):
        err.write(f"{note}\n")
    if ns.breaks or ns.step or ns.debug_on_failure:
        return debug_run(
            session.start(prep),
            out,
            breaks=ns.breaks,
            step=ns.step,
            debug_on_failure=ns.debug_on_failure,
        )
    run = session.start(prep, on_event=printer, straight=True)
    printer.size_to(run.interpreter.steps)
    # the CLI prints steps, not a live per-node view: no engine call per node for one
    run.interpreter.set_event_sink(printer, node_status=False)
    return finish(run, out, err)


def finish(run: Run, out: TextIO, err: TextIO, *, finished: str | None = None) -> int:
    """Run to the end and report; shared by a fresh run, ``resume``, ``scale``, ``stop``
    and ``start`` (``finished``: their last line instead of a recipe run's)."""
    interp = run.interpreter
    vcname = run.prepared.runtime.vcname
    try:
        try:
            reason = interp.run_to_end(ending=True)  # closed at once when finished
        except KeyboardInterrupt:
            reason = outcomes.INTERRUPTED
        if reason == outcomes.FINISHED:
            run.close(outcomes.FINISHED)
    except LedgerError as fault:
        return ledger_stopped(run, fault, err)
    except VcTakenError as taken:
        err.write(render_error(taken) + "\n")
        return taken.exit_code
    if reason == outcomes.FINISHED:
        vc_out = run.prepared.runtime.vc_out_path
        out.write(finished or f"{vcname}: finished; vc-out.xml written to {vc_out}\n")
        return EXIT_OK
    error = interp.last_error
    step = interp.current
    if reason != outcomes.INTERRUPTED and error is not None and step is not None:
        try:
            if run.refused_before_anything(error):
                run.discard()
                span = step.statement.span
                err.write(
                    f"{location(span.file, span.line, span.column)}: '{step.statement.text}'"
                    " refused\n"
                )
                err.write(render_error(error) + "\n")
                err.write(f"nothing was taken and no run of {vcname} was recorded\n")
                return EXIT_USER
        except LedgerError as fault:
            return ledger_stopped(run, fault, err)
        except VcTakenError as taken:
            err.write(render_error(taken) + "\n")
            return taken.exit_code
    try:
        run.close(
            outcomes.INTERRUPTED if reason == outcomes.INTERRUPTED else outcomes.FAILED,
            error.message if error else None,
        )
    except LedgerError as fault:
        return ledger_stopped(run, fault, err)
    except VcTakenError as taken:  # a forced clean stopped the run: nothing to resume
        err.write(render_error(taken) + "\n")
        return taken.exit_code
    if error is not None and step is not None:
        span = step.statement.span
        err.write(
            f"{location(span.file, span.line, span.column)}: '{step.statement.text}' failed\n"
        )
        err.write(render_error(error) + "\n")
        err.write(
            "Nothing was removed: domains, images and leases are kept.\n"
            f"next: `pragmash status {vcname}` to look, `pragmash resume {vcname}` to continue "
            f"from this step, `pragmash repl --attach {vcname}` to debug, "
            f"`pragmash clean {vcname}` to remove it all\n"
        )
    if reason == outcomes.INTERRUPTED:
        return EXIT_INTERRUPTED
    if isinstance(error, LedgerError):
        return EXIT_STEP_FAILED
    if isinstance(error, RecipeError | UserError) and not isinstance(error, StepError):
        return EXIT_STEP_FAILED
    return error.exit_code if error else EXIT_STEP_FAILED


def ledger_stopped(run: Run, fault: LedgerError, err: TextIO) -> int:
    """A run the ledger stopped half-way: say so, keep everything, leave it resumable.

    The run is marked interrupted if the ledger still takes a write; if not, its lock
    dies with this process, and the next command sees the run as interrupted.
    """
    vcname = run.prepared.runtime.vcname
    run.abandon(fault.message)
    err.write(render_error(fault) + "\n")
    err.write(
        f"{vcname}: the run stopped because its ledger failed. Nothing was removed: domains, "
        f"images and leases are kept.\n"
        f"next: fix the ledger as said above, then `pragmash resume {vcname}` continues\n"
    )
    return EXIT_STEP_FAILED


def print_plan(prep: Prepared, out: TextIO) -> int:
    out.write(f"plan for {prep.runtime.vcname} on {prep.site.uri} (dry run: nothing will change)\n")
    for step in make_plan(prep):
        span = step.statement.span
        out.write(f"{location(span.file, span.line, span.column):<24} {step.statement.text}\n")
        for action in step.actions:
            out.write(f"    {action}\n")
        if step.refused is not None:
            out.write(f"    refused: {step.refused.message}\n")
            out.write("the run would stop here, having taken nothing\n")
            return EXIT_USER
    return EXIT_OK
