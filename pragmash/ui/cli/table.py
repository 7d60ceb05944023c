"""Every ``pragmash`` subcommand, written once: name, handler, synopsis, help.

``main`` dispatches from this table, ``pragmash --help`` lists it, the man page and the
shell completion are made from it, and "did you mean" suggests from it. A handler is
named as ``module:function`` and imported only when its command runs, so ``pragmash
list`` does not pay for the REPL's prompt_toolkit or the console's terminal code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO, cast

Handler = Callable[[list[str], TextIO, TextIO], int]


@dataclass(frozen=True)
class Command:
    """One subcommand. ``synopsis`` follows ``pragmash NAME``; ``summary`` is its help."""

    name: str
    target: str  # "pragmash.ui.cli.module:function"
    synopsis: str
    summary: str
    takes_vc: bool = False  # its first positional argument is a VC name (completion)

    def handler(self) -> Handler:
        module, _, function = self.target.partition(":")
        return cast(Handler, getattr(importlib.import_module(module), function))


_C = "pragmash.ui.cli.commands"

COMMANDS: tuple[Command, ...] = (
    Command(
        "check",
        "pragmash.ui.cli.check:cmd_check",
        "RECIPE [--vcname NAME] [--set NAME=VALUE]...",
        "parse and check a recipe without running it; every problem is listed",
    ),
    Command(
        "resume",
        "pragmash.ui.cli.resume:cmd_resume",
        "VCNAME [--accept-changes]",
        "continue a VC's last run from its first unfinished step\n"
        "(refused if its recipe changed, unless --accept-changes)",
        takes_vc=True,
    ),
    Command(
        "list",
        f"{_C}:cmd_list",
        "[--all] [repository]",
        "the VCs holding leases, with running/total nodes (--all: the\n"
        "cleaned ones too); `list repository`: what it offers",
    ),
    Command(
        "status",
        f"{_C}:cmd_status",
        "VCNAME [--json]",
        "each node's engine state, CPUs, address; the VC's private\nnetwork; the run's steps",
        takes_vc=True,
    ),
    Command(
        "history",
        "pragmash.ui.cli.history:cmd_history",
        "VCNAME [--json]",
        "every run of the VC (recipe, scale, stop, start): start, end,\noutcome",
        takes_vc=True,
    ),
    Command(
        "stop",
        "pragmash.ui.cli.power:cmd_stop",
        "VCNAME [--timeout SECONDS] [--force]",
        "ask every node at once to power off, one deadline for all\n"
        "(--timeout, default 120 s); --force powers off what is left;\n"
        "domains, disks and leases are kept",
        takes_vc=True,
    ),
    Command(
        "shutdown",
        "pragmash.ui.cli.power:cmd_shutdown",
        "VCNAME [--timeout SECONDS] [--force]",
        "the same as stop",
        takes_vc=True,
    ),
    Command(
        "start",
        "pragmash.ui.cli.power:cmd_start",
        "VCNAME",
        "start a stopped VC: frontend, its up test, computes; nothing\n"
        "staged or injected again unless a node's disk or domain is gone",
        takes_vc=True,
    ),
    Command(
        "ssh",
        "pragmash.ui.cli.access:cmd_ssh",
        "VCNAME [NODE] [-- COMMAND...]",
        "log in to a node (default the frontend) or run a command there;\n"
        "computes through the frontend (ProxyJump), with the VC's key",
        takes_vc=True,
    ),
    Command(
        "ssh-config",
        "pragmash.ui.cli.access:cmd_ssh_config",
        "VCNAME",
        "an OpenSSH config block per node (for ssh -F, ~/.ssh/config)",
        takes_vc=True,
    ),
    Command(
        "inventory",
        "pragmash.ui.cli.access:cmd_inventory",
        "VCNAME [--format ini|yaml|json]",
        "an Ansible inventory: frontend and compute groups, the VC's\nvariables",
        takes_vc=True,
    ),
    Command(
        "clean",
        f"{_C}:cmd_clean",
        "VCNAME",
        "destroy the VC's domains and private network, remove its own\n"
        "disks (overlays; the shared base images stay), release its leases",
        takes_vc=True,
    ),
    Command(
        "repl",
        "pragmash.ui.repl.debugger:main",
        "[RECIPE --vcname NAME [run options]] | --attach VCNAME",
        "load the recipe and stop before its first statement: step,\n"
        "break, retry, look at nodes, type statements (`help` inside);\n"
        "--attach VCNAME opens the VC's last run where it stopped",
    ),
    Command(
        "sync",
        "pragmash.ui.cli.sync:cmd_sync",
        "[REPOSITORY]",
        "fetch and verify every image of a repository (a folder or\n"
        "URL; default the site's) into the image cache ahead of runs",
    ),
    Command(
        "console",
        "pragmash.ui.cli.console_cmd:cmd_console",
        "VCNAME NODE",
        "an interactive serial console on a node (its name, frontend\n"
        "or compute[N]); Ctrl-] leaves",
        takes_vc=True,
    ),
    Command(
        "scale",
        "pragmash.ui.cli.scale:cmd_scale",
        "VCNAME +N|-N [--timeout SECONDS]",
        "grow a running VC by N computes (leases in one transaction,\n"
        "disks on the VC's base, vc-out.xml rewritten for the whole\n"
        "VC, booted, waited until up) or shrink it (the N highest-\n"
        "numbered destroyed, disks removed, leases released); a run\n"
        "of its own: `status` shows it, `resume` continues it",
        takes_vc=True,
    ),
    Command(
        "refresh",
        "pragmash.ui.cli.refresh:cmd_refresh",
        "VCNAME",
        "each running node receives its current vc-out without a reboot\n"
        "(guest agent, else ssh); a node neither reaches is named with\n"
        "how to do it by hand; `scale` does this as its last step",
        takes_vc=True,
    ),
    Command(
        "cache",
        "pragmash.ui.cli.cache:cmd_cache",
        "list | prune [--dry-run]",
        "the cached base images and the VCs whose disks use them;\n"
        "prune removes the ones no VC uses (--dry-run: only say which)",
    ),
    Command(
        "hosts",
        "pragmash.ui.cli.hosts:cmd_hosts",
        "[--json]",
        "each host of the site: CPUs and memory, what is placed there,\n"
        "the reserve, whether it answers now",
    ),
    Command(
        "import-site",
        "pragmash.ui.cli.import_site:cmd_import_site",
        "[PRAGMA_BOOT_FOLDER] [--site-conf F] [--kvm-rocks F] [--net-conf F] [-o site.toml]",
        "pragma_boot's site_conf.conf, kvm_rocks.conf (and 2013's\n"
        "net_conf.conf) as a commented site.toml, read without\n"
        "executing them; what cannot be mapped is marked FILL IN",
    ),
    Command(
        "site",
        "pragmash.ui.cli.site_cmd:cmd_site",
        "check [FILE]",
        "which site config pragmash uses, and why; `site check` reads it\n"
        "fully and asks every host, bridge and folder, allocating nothing",
    ),
    Command(
        "completion",
        "pragmash.ui.cli.completion:cmd_completion",
        "bash|zsh",
        "the shell completion script (scripts/setup installs it)",
    ),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}

# not listed: a recipe's run (``pragmash RECIPE …``), the command that loads the engine,
# the language and the REPL: imported only when a recipe runs
RUN = Command("RECIPE", "pragmash.ui.cli.run:main", "RECIPE --vcname NAME [options]", "")

# not listed: ``--version`` (``-V``, ``version``), a global option (ui.cli.globals)
VERSION = Command("--version", "pragmash.ui.cli.version:cmd_version", "", "")

# not listed: what the completion scripts run on <Tab> (``__complete INDEX WORDS…``)
COMPLETE = Command("__complete", "pragmash.ui.cli.completion:cmd_complete", "INDEX WORDS...", "")

# words people type for a command by habit from other tools
_HABITS = {
    "ls": "list",
    "ps": "status",
    "info": "status",
    "destroy": "clean",
    "delete": "clean",
    "rm": "clean",
    "up": "start",
    "halt": "stop",
    "down": "stop",
    "run": "RECIPE",
}


def suggest(word: str) -> str | None:
    """The command ``word`` was probably meant to be, if any looks close."""
    if word in _HABITS:
        return _HABITS[word]
    import difflib  # only for a mistyped command: not loaded at every start-up

    close = difflib.get_close_matches(word, list(BY_NAME), n=1, cutoff=0.6)
    return close[0] if close else None


def commands_help() -> str:
    """The ``commands:`` section of ``pragmash --help``, from the table."""
    lines = ["commands:"]
    for cmd in COMMANDS:
        head = f"  {cmd.name} {cmd.synopsis}"
        summary = cmd.summary.splitlines()
        if len(head) <= 22:
            lines.append(f"{head:<23}{summary[0]}")
        else:
            lines += [head, f"{'':23}{summary[0]}"]
        lines += [f"{'':23}{line}" for line in summary[1:]]
    return "\n".join(lines) + "\n"
