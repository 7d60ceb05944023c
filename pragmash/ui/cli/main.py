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
from typing import TextIO

from pragmash import __version__
from pragmash.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    EXIT_USER,
    PragmashError,
)
from pragmash.ui.cli import commands, interrupts, run
from pragmash.ui.render import printable_stream, render_error

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
  141  the reader of the output went away (`| head -1`); output stops there
"""

COMMANDS = (
    "check",
    "resume",
    "list",
    "status",
    "stop",
    "shutdown",
    "start",
    "history",
    "ssh",
    "ssh-config",
    "inventory",
    "clean",
    "repl",
    "sync",
    "cache",
    "console",
    "scale",
    "hosts",
    "import-site",
)

MAIN_HELP = f"""\
usage: pragmash RECIPE --vcname NAME [--num_compute N] [--base_path PATH]
                [--site FILE] [--set NAME=VALUE]... [--dry-run] [--allow-run]
                [--key FILE] [--mem FRONTEND[:COMPUTE]]
                [--break LINE|KIND]... [--step] [--debug-on-failure]
       pragmash check RECIPE [--vcname NAME] [--site FILE] [--set NAME=VALUE]...
       pragmash resume VCNAME [--accept-changes]
       pragmash repl [RECIPE --vcname NAME [run options]] | repl --attach VCNAME
       pragmash list [--all] [repository] | status VCNAME | history VCNAME | clean VCNAME [--yes]
       pragmash stop VCNAME [--timeout SECONDS] [--force] | start VCNAME
       pragmash ssh VCNAME [NODE] [-- COMMAND...] | ssh-config VCNAME
       pragmash inventory VCNAME [--format ini|yaml|json]
       pragmash sync [REPOSITORY]
       pragmash console VCNAME NODE
       pragmash scale VCNAME +N|-N [--timeout SECONDS]
       pragmash cache list | cache prune [--dry-run]
       pragmash hosts [--json]
       pragmash import-site [PRAGMA_BOOT_FOLDER] [--site-conf F] [--kvm-rocks F]
                            [--net-conf F] [-o site.toml]
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
  list                 the VCs holding leases, with running/total nodes (--all: the
                       cleaned ones too); `list repository`: what it offers
  status VCNAME        each node's engine state, CPUs, address; the VC's private
                       network; the run's steps
  history VCNAME       every run of the VC (recipe, scale, stop, start): start, end,
                       outcome
  stop VCNAME          ask every node at once to power off, one deadline for all
                       (--timeout, default 120 s); --force powers off what is left;
                       domains, disks and leases are kept (`shutdown`: the same)
  start VCNAME         start a stopped VC: frontend, its up test, computes; nothing
                       staged or injected again unless a node's disk or domain is gone
  ssh VCNAME [NODE] [-- COMMAND...]
                       log in to a node (default the frontend) or run a command there;
                       computes through the frontend (ProxyJump), with the VC's key
  ssh-config VCNAME    an OpenSSH config block per node (for ssh -F, ~/.ssh/config)
  inventory VCNAME     an Ansible inventory: frontend and compute groups, the VC's
                       variables (--format ini|yaml|json)
  clean VCNAME         destroy the VC's domains and private network, remove its own
                       disks (overlays; the shared base images stay), release its leases
  repl RECIPE --vcname NAME
                       load the recipe and stop before its first statement: step,
                       break, retry, look at nodes, type statements (`help` inside)
  repl --attach VCNAME open the VC's last run at the step where it stopped
  sync [REPOSITORY]    fetch and verify every image of a repository (a folder or
                       URL; default the site's) into the image cache ahead of runs
  console VCNAME NODE  an interactive serial console on a node (its name, frontend
                       or compute[N]); Ctrl-] leaves
  scale VCNAME +N|-N   grow a running VC by N computes (leases in one transaction,
                       disks on the VC's base, vc-out.xml rewritten for the whole
                       VC, booted, waited until up) or shrink it (the N highest-
                       numbered destroyed, disks removed, leases released); a run
                       of its own: `status` shows it, `resume` continues it
  cache list           the cached base images (fixed once per image, method and
                       driver; decompressed .img.gz) and the VCs whose disks use them
  cache prune          remove the cached bases no VC uses (--dry-run: only say which)
  hosts                each host of the site: CPUs and memory, what is placed there,
                       the reserve, whether it answers now
  import-site [FOLDER] pragma_boot's site_conf.conf, kvm_rocks.conf (and 2013's
                       net_conf.conf) as a commented site.toml, read without
                       executing them; what cannot be mapped is marked FILL IN

{EXIT_CODES}"""


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
        code = _dispatch(args, out, err)
        out.flush()  # a reader gone (`| head -1`) is found here, not at interpreter exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except PragmashError as error:
        err.write(render_error(error) + "\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
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
    if not args or args[0] in ("-h", "--help", "help"):
        out.write(MAIN_HELP)
        return EXIT_OK if args else EXIT_USER
    if args[0] == "--version":
        out.write(f"pragmash {__version__}\n")
        return EXIT_OK
    if args[0] in COMMANDS:
        return commands.dispatch(args[0], args[1:], out, err)
    return run.main(args, out, err)


if __name__ == "__main__":
    sys.exit(main())
