"""``pragmash hosts``: each host of the site, its capacity, what is placed there, reachability."""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.hosts.capacity import HostReport, site_hosts
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import json_dump


def _figure(used: int, total: int | None, unit: str) -> str:
    return f"{used}/{total}{unit}" if total is not None else f"{used}/?{unit}"


def _memory(h: HostReport) -> str:
    """Memory used, and of how much where the host's size is known; used is always known."""
    if h.memory_mib:
        return _figure(h.memory_used_mib, h.memory_mib, " MiB")
    return f"{h.memory_used_mib} MiB"


def _row(h: HostReport) -> str:
    state = "up" if h.reachable else "UNREACHABLE"
    free = "-" if h.cpus_free is None else str(h.cpus_free)
    memory = _memory(h)
    line = (
        f"{h.name:<12} {state:<11} {_figure(h.cpus_used, h.cpus, ''):>9} {h.reserve:>7} "
        f"{free:>5}  {memory:>16}  {h.nodes:>5}  {h.storage:<6}  {h.uri}"
    )
    if h.vcs:
        line += f"\n{'':12} VCs: {', '.join(h.vcs)}"
    if h.problem:
        line += f"\n{'':12} {h.problem}"
    return line


def cmd_hosts(args: list[str], out: TextIO, err: TextIO) -> int:
    """Show each host's CPUs and memory (libvirt's, or the site config's), use and reachability."""
    p = ArgumentParser(
        prog="pragmash hosts",
        description="Show each host of the site: its CPUs and memory (the site config's, "
        "else libvirt's), what the ledger has placed there, the reserve kept back, and "
        "whether it can be reached now.",
    )
    add_site_option(p)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = session.open_site(ns.site)
    reports = site_hosts(site)
    if ns.json:
        json_dump({"hosts": [h.to_json() for h in reports]}, out)
        return EXIT_OK
    out.write(
        f"{'HOST':<12} {'STATE':<11} {'CPUS USED':>9} {'RESERVE':>7} {'FREE':>5}  "
        f"{'MEMORY USED':>16}  {'NODES':>5}  {'DISKS':<6}  URI\n"
    )
    for report in reports:
        out.write(_row(report) + "\n")
    return EXIT_OK
