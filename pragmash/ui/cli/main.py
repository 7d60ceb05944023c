"""The ``pragmash`` command: a thin front end over the session and the interpreter.

Sends the command line to a subcommand (:mod:`~pragmash.ui.cli.commands`) or to the
run command (:mod:`~pragmash.ui.cli.run`), and turns errors into messages and exit
statuses. No run logic lives here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pragmash.engine.steps.process_trees import end_running_commands
from pragmash.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    EXIT_USER,
    PragmashError,
    UserError,
)
from pragmash.ui.cli import interrupts
from pragmash.ui.cli.globals import configure_logging, split_global_options
from pragmash.ui.cli.table import (
    BY_NAME,
    COMMANDS,
    COMPLETE,
    RUN,
    VERSION,
    commands_help,
    suggest,
)
from pragmash.ui.render import printable_stream, render_error

EXIT_CODES = f"""\
exit status:
  0    the run finished (or the command did what it said)
  1    an internal error in pragmash (please report it, with the traceback)
  {EXIT_USER}    bad input: recipe, vc-in.xml, vcdb.txt, site config or command line, or
       an unusable ledger (corrupted, full disk, read-only, locked); nothing was changed;
       or a new run's allocate refused for want of capacity: nothing taken, no run kept
  {EXIT_STEP_FAILED}    a step failed, or the ledger failed mid-run; domains, images and leases
       are kept: `pragmash resume VCNAME` continues, `pragmash clean VCNAME` removes them
  4    the VC is held by another run
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); `pragmash resume VCNAME` continues
  141  the reader of the output went away (`| head -1`); output stops there
"""


def _usage() -> str:
    lines = [
        "usage: pragmash RECIPE --vcname NAME [--num_compute N] [--base_path PATH]",
        "                [--site FILE] [--set NAME=VALUE]... [--dry-run] [--allow-run]",
        "                [--key FILE] [--mem FRONTEND[:COMPUTE]]",
        "                [--break LINE|KIND]... [--step] [--debug-on-failure]",
    ]
    lines += [f"       pragmash {c.name} {c.synopsis}" for c in COMMANDS]
    lines.append("       pragmash --help | --version")
    return "\n".join(lines) + "\n"


MAIN_HELP = (
    _usage()
    + """
Boot a PRAGMA virtual cluster by running a recipe, a short script such as

    allocate $num_compute; fix all via virt-v2v; boot frontend; wait 300; boot compute

Each step is printed with its recipe location, outcome and duration. Options that
every command takes (--site, --log-level, -v) may come before or after the command.

run options:
  RECIPE               the recipe file (e.g. recipes/rocks6.prg)
  --vcname NAME        the virtual cluster, as named in the repository's vcdb.txt
  --num_compute N      compute CPUs to allocate (the recipe's `allocate` default)
  --base_path PATH     the repository holding vcdb.txt, vc-in.xml files and images:
                       a folder, or http(s)://HOST/PATH/ with a SHA256SUMS (images are
                       fetched into the cache and checked before anything is allocated)
                       (default: the site's, else the bundled demo repository)
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

options of every command:
  --site FILE          the site config (TOML); default $PRAGMASH_SITE, else
                       /etc/pragmash/site.toml, else the embedded demo site
                       (libvirt's test:///default); `pragmash site` says which
  --log-level LEVEL    debug, info, warning (default) or error, on stderr; every
                       command also writes a debug log under the state folder
  -v, --verbose        --log-level info (-vv: debug)
  -V, --version        pragmash's version and those of Python, libvirt, libguestfs,
                       QEMU and the libraries a bug report needs

"""
    + commands_help()
    + "\n"
    + EXIT_CODES
)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point; returns the exit status (see EXIT_CODES)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # every line goes out with control characters escaped (see PrintableStream)
    out = printable_stream(out or sys.stdout)
    err = printable_stream(err or sys.stderr)
    # the real entry point (no argv given): a third Ctrl-C exits 130 at once
    counter = interrupts.install(err) if argv is None else None
    try:
        try:
            code = _dispatch(args, out, err)
            out.flush()  # a reader gone (`| head -1`) is found here, not at interpreter exit
        except BrokenPipeError:
            _quiet_stdout()
            return EXIT_BROKEN_PIPE
        except PragmashError as error:
            err.write(render_error(error) + "\n")
            code = error.exit_code
        except KeyboardInterrupt:
            err.write("interrupted\n")
            code = EXIT_INTERRUPTED
        if code == EXIT_INTERRUPTED:
            # a host command on a worker thread would outlive us (daemon threads are not
            # waited for): its process tree ends with the command that started it
            end_running_commands()
        return code
    finally:
        if counter is not None:
            counter.done = True  # a Ctrl-C while Python shuts down: exit 130 at once


#: What a shell reports for a command ended by SIGPIPE: its reader (``| head -1``) left.
EXIT_BROKEN_PIPE = 141


def _quiet_stdout() -> None:
    """The reader of stdout is gone: send what Python still flushes at exit nowhere, so
    no BrokenPipeError traceback follows (the output was not wanted any more)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _dispatch(args: list[str], out: TextIO, err: TextIO) -> int:
    if args[:1] == [COMPLETE.name]:  # the completion scripts' question, words as typed
        return COMPLETE.handler()(args[1:], out, err)
    args, options = split_global_options(args)
    configure_logging(options.log_level, err)
    if options.version:
        return VERSION.handler()([], out, err)
    if not args or args[0] in ("-h", "--help", "help"):
        out.write(MAIN_HELP)
        return EXIT_OK if args else EXIT_USER
    site = ["--site", options.site] if options.site is not None else []
    command = BY_NAME.get(args[0])
    if command is not None:
        return command.handler()([*site, *args[1:]], out, err)
    if not _looks_like_recipe(args[0]):
        guess = suggest(args[0])
        hint = f"did you mean `pragmash {guess}`?" if guess and guess != "RECIPE" else None
        raise UserError(
            f"unknown command {args[0]!r}: expected one of {', '.join(BY_NAME)}, or a "
            "recipe file (e.g. recipes/rocks6.prg)",
            hint=hint or "see `pragmash --help`",
        )
    return RUN.handler()([*site, *args], out, err)


def _looks_like_recipe(word: str) -> bool:
    """A recipe is named by its path: a file, or something path-shaped (``x/y``, ``*.prg``)."""
    return word.startswith("-") or "/" in word or word.endswith(".prg") or Path(word).exists()


if __name__ == "__main__":
    sys.exit(main())
