"""The CLI's subcommands list, status and clean (table.py lists all).

Each parses its arguments, calls :mod:`pragmash.engine.commands.lifecycle` and
prints what comes back: for people by default, JSON with ``--json``. Like the rest of
the CLI, they hold no run logic. They load no run machinery either (no recipe parser,
no REPL): ``check`` and ``resume``, which do, have modules of their own
(:mod:`~pragmash.ui.cli.check`, :mod:`~pragmash.ui.cli.resume`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from pragmash import domain_states, outcomes
from pragmash.engine.commands import lifecycle
from pragmash.engine.run.site import open_site
from pragmash.errors import EXIT_OK, EXIT_STEP_FAILED, EXIT_USER
from pragmash.ui.arguments import command_parser
from pragmash.ui.render import json_dump
from pragmash.vc.config.repository import site_repository
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.names import validate_name


def cmd_list(args: list[str], out: TextIO, err: TextIO) -> int:
    """VCs with their state, or (``list repository``) what the repository offers."""
    p = command_parser(
        "list",
        "List the VCs that hold leases (or have a run to resume), with their running and "
        "total nodes (or `list repository`: the VCs the repository offers).",
    )
    p.add_argument("what", nargs="?", choices=["vcs", "repository"], default="vcs")
    p.add_argument("--base_path")
    p.add_argument(
        "--all", action="store_true", help="also the VCs that were cleaned (their leases released)"
    )
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = open_site(ns.site)
    if ns.what == "repository":
        repo = site_repository(site, ns.base_path)
        repo_rows = [
            {"vcname": name, "vc_in": repo.shown(path)}
            for name, path in sorted(repo.entries.items())
        ]
        if ns.json:
            json_dump(repo_rows, out)
        else:
            out.write(f"repository {repo.location}:\n")
            for repo_row in repo_rows:
                out.write(f"  {repo_row['vcname']:<16} {repo_row['vc_in']}\n")
        return EXIT_OK
    rows = lifecycle.list_vcs(site, every=ns.all)
    if ns.json:
        json_dump([row.to_json() for row in rows], out)
        return EXIT_OK
    if not rows:
        hidden = "" if ns.all else " holding leases (`list --all`: cleaned ones too)"
        out.write(f"no VCs{hidden} (start one with `pragmash RECIPE --vcname NAME`)\n")
        return EXIT_OK
    out.write(f"{'VC':<16} {'STATE':<10} {'RUNNING':>7}  {'PUBLIC FQDN':<28} LAST RUN\n")
    for row in rows:
        last = f"{row.last_run} {row.last_outcome}" if row.last_run else "-"
        running = f"{'?' if row.running is None else row.running}/{row.nodes}"
        if row.state == "released":
            running = "-"
        out.write(f"{row.vcname:<16} {row.state:<10} {running:>7}  {row.fqdn or '-':<28} {last}\n")
    return EXIT_OK


def cmd_status(args: list[str], out: TextIO, err: TextIO) -> int:
    """Each node's engine state against the ledger, and the last run's steps."""
    p = command_parser(
        "status", "Show a VC's nodes (engine state vs ledger) and its last run's steps."
    )
    p.add_argument("vcname")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = open_site(ns.site)
    vcname = validate_name("VC name", ns.vcname)
    status = lifecycle.vc_status(site, vcname)
    if ns.json:
        json_dump(status.to_json(), out)
        return EXIT_OK
    held, run = status.allocation, status.run
    out.write(
        f"{vcname}: "
        + (
            f"{held.public.fqdn} ({held.public.ip}), VLAN {held.vlan}\n"
            if held
            else "no allocation\n"
        )
    )
    if status.lock:
        out.write(f"  in use by {status.lock}\n")
    net = status.private_network
    if net is not None:
        # a scale's run record names the scale; its options, the VC's recipe
        recipe = (run.options.get("recipe") or run.recipe) if run else ""
        again = (
            f"`pragmash resume {vcname}` or `pragmash repl --attach {vcname}`"
            if status.run_outcome in (outcomes.FAILED, outcomes.INTERRUPTED) or run is None
            else f"`pragmash {recipe} --vcname {vcname}"
            + (f" --num_compute {held.cpus}" if held else "")
            + "` (same allocation)"
        )
        flag = f"   <- missing: {again} makes it again" if net.missing else ""
        out.write(f"  private network {net.plan.describe()}: {net.state}{flag}\n")
    if status.nodes:
        host_head = f"{'HOST':<12} " if site.multi_host else ""
        out.write(
            f"  {'NODE':<22} {host_head}{'ENGINE':<14} {'CPUS':>4} {'MiB':>6}  {'IP':<16} MAC\n"
        )
        for n in status.nodes:
            flag = f"   <- ledger says {n.ledger_says}; {_repair(n, vcname)}" if n.mismatch else ""
            host = f"{n.host:<12} " if site.multi_host else ""
            out.write(
                f"  {n.name:<22} {host}{n.engine_state:<14} {n.cpus:>4} {n.memory_mib or '-':>6}  "
                f"{n.ip:<16} {', '.join(n.macs)}{flag}\n"
            )
    if run:
        out.write(f"  run {run.id} ({status.run_outcome}): {run.recipe}\n")
        if status.log:
            out.write(f"  log: {status.log}\n")
        for s in status.steps:
            msg = f"  {s.message}" if s.message else ""
            if s.stage and s.outcome in (outcomes.FAILED, outcomes.INTERRUPTED):
                msg = f"  {s.stage}: {s.message}"
            out.write(f"    {s.outcome:<11} {Path(s.file).name}:{s.line}:{s.col}  {s.text}{msg}\n")
    return EXIT_OK


def _repair(node: lifecycle.NodeStatus, vcname: str) -> str:
    """What brings one node back to what the ledger says (never: delete the whole VC)."""
    if node.engine_state == domain_states.ABSENT:
        return f"`pragmash start {vcname}` makes it again"
    if node.ledger_says == domain_states.RUNNING:
        return f"`pragmash start {vcname}` starts it"
    return f"`pragmash stop {vcname}` stops it"


def cmd_clean(args: list[str], out: TextIO, err: TextIO) -> int:
    """Destroy a VC's domains and private network, remove its staged images, release its leases."""
    p = command_parser(
        "clean",
        "Destroy a VC's domains and private network, remove its staged images and release "
        "its leases.",
    )
    p.add_argument("vcname")
    p.add_argument(
        "--force",
        action="store_true",
        help="clean even while a run holds the VC: stop that run first",
    )
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask (at a terminal, clean names what it destroys and asks first)",
    )
    ns = p.parse_args(args)
    site = open_site(ns.site)
    vcname = validate_name("VC name", ns.vcname)
    if not ns.yes and sys.stdin.isatty() and not _confirmed(site, vcname, err):
        err.write("nothing was destroyed\n")
        return EXIT_USER

    def note(text: str) -> None:
        out.write(text + "\n")

    kept = lifecycle.clean_vc(site, vcname, force=ns.force, note=note)
    if kept:
        err.write(
            f"{vcname} is not clean yet: {', '.join(kept)} kept (their hosts did not answer)\n"
        )
        return EXIT_STEP_FAILED
    out.write(f"{vcname} is clean\n")
    return EXIT_OK


def _confirmed(site: SiteConfig, vcname: str, err: TextIO) -> bool:
    """Ask at the terminal, naming what clean would destroy; only "y" or "yes" goes on."""
    status = lifecycle.vc_status(site, vcname)  # no such VC: a UserError, nothing asked
    held = status.allocation
    nodes = ", ".join(n.name for n in status.nodes) or "no nodes"
    address = f" and release {held.public.fqdn} ({held.public.ip})" if held else ""
    err.write(f"destroy {vcname}'s domains ({nodes}) and their disks{address}? [y/N] ")
    err.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
