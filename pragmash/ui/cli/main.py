"""The ``pragmash`` command: a thin front end over the session and the interpreter.

Parses the command line, opens a run through :mod:`pragmash.engine.session`, prints what
the interpreter reports and turns errors into messages and exit statuses. No run
logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pragmash import __version__
from pragmash.engine import session
from pragmash.engine.overrides import parse_mem
from pragmash.engine.plan import make_plan
from pragmash.engine.session import Prepared, Run, RunOptions, parse_sets
from pragmash.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    EXIT_USER,
    LedgerError,
    PragmashError,
    RecipeError,
    StepError,
    UserError,
)
from pragmash.ui.render import StepPrinter, location, printable_stream, render_error
from pragmash.vc.keys import read_public_keys

EXIT_CODES = f"""\
exit status:
  0    the run finished (or the command did what it said)
  1    an internal error in pragmash (please report it, with the traceback)
  {EXIT_USER}    bad input: recipe, vc-in.xml, vcdb.txt, site config or command line, or
       an unusable ledger (corrupted, full disk, read-only, locked); nothing was changed
  {EXIT_STEP_FAILED}    a step failed, or the ledger failed mid-run; domains, images and leases
       are kept: `pragmash resume VCNAME` continues, `pragmash clean VCNAME` removes them
  4    the VC is held by another run
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); `pragmash resume VCNAME` continues
"""

COMMANDS = (
    "check",
    "resume",
    "list",
    "status",
    "shutdown",
    "clean",
    "repl",
    "sync",
    "cache",
    "console",
    "scale",
)

MAIN_HELP = f"""\
usage: pragmash RECIPE --vcname NAME [--num_compute N] [--base_path PATH]
                [--site FILE] [--set NAME=VALUE]... [--dry-run] [--allow-run]
                [--key FILE] [--mem FRONTEND[:COMPUTE]]
                [--break LINE|KIND]... [--step] [--debug-on-failure]
       pragmash check RECIPE [--vcname NAME] [--site FILE] [--set NAME=VALUE]...
       pragmash resume VCNAME [--accept-changes]
       pragmash repl [RECIPE --vcname NAME [run options]] | repl --attach VCNAME
       pragmash list [repository] | status VCNAME | shutdown VCNAME | clean VCNAME
       pragmash sync [REPOSITORY]
       pragmash console VCNAME NODE
       pragmash cache list | cache prune [--dry-run]
       pragmash --help | --version

Boot a PRAGMA virtual cluster by running a recipe, a short script such as

    allocate $num_compute; fix all via virt-v2v; boot frontend; wait 300; boot compute

Each step is printed with its recipe location, outcome and duration.

run options:
  RECIPE               the recipe file (e.g. recipes/rocks6.prg)
  --vcname NAME        the virtual cluster, as named in the repository's vcdb.txt
  --num_compute N      compute CPUs to allocate (the recipe's `allocate` default)
  --base_path PATH     the repository holding vcdb.txt, vc-in.xml files and images:
                       a folder, or http(s)://HOST/PATH/ with a SHA256SUMS (images are
                       fetched into the cache and checked before anything is allocated)
                       (default: the site's, else the bundled demo repository)
  --site FILE          the site config (TOML); default $PRAGMASH_SITE, else the
                       embedded demo site on libvirt's test:///default
  --set NAME=VALUE     give a recipe parameter; repeatable
  --dry-run            print each step with the nodes and stages it would touch,
                       and change nothing
  --allow-run          permit the recipe's `run` statements (host commands)
  --key FILE           an SSH public key file (e.g. ~/.ssh/id_ed25519.pub): written to
                       vc-out.xml as <key> and added to root's authorized_keys in
                       every node's image by the distro driver's pre_boot
  --mem MIB[:MIB]      memory in MiB for the frontend[:each compute] (one number for
                       both), instead of the templates'; checked against the host
  --break LINE|KIND    run, and open the REPL before the statement at LINE (or
                       FILE:LINE, or every statement of KIND); repeatable
  --step               open the REPL before the first statement
  --debug-on-failure   open the REPL at a failed step instead of exiting

commands:
  check RECIPE         parse and check a recipe without running it
  resume VCNAME        continue a VC's last run from its first unfinished step
                       (refused if its recipe changed, unless --accept-changes)
  list                 VCs with their state; `list repository`: what it offers
  status VCNAME        each node's engine state, CPUs, address; the run's steps
  shutdown VCNAME      stop the VC's domains gracefully
  clean VCNAME         destroy the VC's domains, remove its own disks (overlays; the
                       shared base images stay), release its leases
  repl RECIPE --vcname NAME
                       load the recipe and stop before its first statement: step,
                       break, retry, look at nodes, type statements (`help` inside)
  repl --attach VCNAME open the VC's last run at the step where it stopped
  sync [REPOSITORY]    fetch and verify every image of a repository (a folder or
                       URL; default the site's) into the image cache ahead of runs
  console VCNAME NODE  an interactive serial console on a node (its name, frontend
                       or compute[N]); Ctrl-] leaves
  cache list           the cached base images (fixed once per image, method and
                       driver; decompressed .img.gz) and the VCs whose disks use them
  cache prune          remove the cached bases no VC uses (--dry-run: only say which)

{EXIT_CODES}"""


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pragmash", add_help=False, allow_abbrev=False)
    p.add_argument("recipe")
    p.add_argument("--vcname", required=True)
    p.add_argument("--num_compute", type=int)
    p.add_argument("--base_path")
    p.add_argument("--site")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--allow-run", action="store_true")
    p.add_argument("--key")
    p.add_argument("--mem")
    p.add_argument("--break", dest="breaks", action="append", default=[])
    p.add_argument("--step", action="store_true")
    p.add_argument("--debug-on-failure", action="store_true")
    return p


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as a UserError (exit 2, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}", hint="see `pragmash --help`")


def _parser(prog: str) -> _Parser:
    return _Parser(prog=prog, allow_abbrev=False)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point; returns the exit status (see EXIT_CODES)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # every line goes out with control characters escaped (see PrintableStream)
    out = printable_stream(out or sys.stdout)
    err = printable_stream(err or sys.stderr)
    try:
        return _dispatch(args, out, err)
    except PragmashError as error:
        err.write(render_error(error) + "\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED


def _dispatch(args: list[str], out: TextIO, err: TextIO) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        out.write(MAIN_HELP)
        return EXIT_OK if args else EXIT_USER
    if args[0] == "--version":
        out.write(f"pragmash {__version__}\n")
        return EXIT_OK
    if args[0] in COMMANDS:
        from pragmash.ui.cli import commands

        return commands.dispatch(args[0], args[1:], out, err)
    p = _run_parser()
    p.__class__ = _Parser
    ns = p.parse_args(args)
    return run_recipe(ns, out, err)


def _options(ns: argparse.Namespace) -> RunOptions:
    return RunOptions(
        recipe=ns.recipe,
        vcname=ns.vcname,
        num_compute=ns.num_compute,
        base_path=ns.base_path,
        site=ns.site,
        sets=parse_sets(ns.sets),
        allow_run=ns.allow_run,
        key=key_option(ns.key),
        mem=mem_option(ns.mem),
    )


def key_option(path: str | None) -> str | None:
    """``--key FILE``'s public key text, checked (a private key or garbage is refused)."""
    return "\n".join(read_public_keys(Path(path).expanduser())) if path else None


def mem_option(text: str | None) -> str | None:
    """``--mem`` as given, checked now so a typo is a usage error before anything loads."""
    if text is not None:
        parse_mem(text)
    return text


def run_recipe(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    options = _options(ns)
    session.require_recipe_file(options.recipe)
    printer = StepPrinter(out, err)
    # images are fetched and checked here, before the run starts (not for a dry run)
    prep = session.prepare(options, on_event=printer, fetch_images=not ns.dry_run)
    if prep.site.embedded:
        err.write(
            f"note: no site config given (--site or $PRAGMASH_SITE): using the embedded demo site "
            f"({prep.site.uri}, state in {prep.site.state_dir})\n"
        )
    if ns.dry_run:
        return print_plan(prep, out)
    for note in session.site_notes(prep):
        err.write(f"{note}\n")
    if ns.breaks or ns.step or ns.debug_on_failure:
        from pragmash.ui.repl import debugger as repl

        return repl.debug_run(
            session.start(prep),
            out,
            breaks=ns.breaks,
            step=ns.step,
            debug_on_failure=ns.debug_on_failure,
        )
    run = session.start(prep, on_event=printer)
    return finish(run, out, err)


def finish(run: Run, out: TextIO, err: TextIO) -> int:
    """Run to the end and report; shared by a fresh run and ``resume``."""
    interp = run.interpreter
    vcname = run.prepared.runtime.vcname
    try:
        try:
            reason = interp.run_to_end()
        except KeyboardInterrupt:
            reason = "interrupted"
        if reason == "finished":
            run.close("finished")
    except LedgerError as fault:
        return ledger_stopped(run, fault, err)
    if reason == "finished":
        vc_out = run.prepared.runtime.vc_out_path
        out.write(f"{vcname}: finished; vc-out.xml written to {vc_out}\n")
        return EXIT_OK
    error = interp.last_error
    step = interp.current
    try:
        run.close(
            "interrupted" if reason == "interrupted" else "failed",
            error.message if error else None,
        )
    except LedgerError as fault:
        return ledger_stopped(run, fault, err)
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
    if reason == "interrupted":
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
    return EXIT_OK


def json_dump(data: object, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
