"""``pragmash history VCNAME``: every run of a VC (recipe, scale, stop, start), oldest first.

The runs come from :func:`pragmash.engine.commands.lifecycle.vc_history`; this prints them
for people (local time, how long each took) or as JSON with ``--json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from pragmash import outcomes
from pragmash.engine.commands import lifecycle
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import json_dump
from pragmash.vc.formats.names import validate_name


def cmd_history(args: list[str], out: TextIO, err: TextIO) -> int:
    """List a VC's runs with their kind, start, end and outcome."""
    p = ArgumentParser(
        prog="pragmash history",
        description="Every run of a VC, oldest first: the recipe's runs, scales, stops and "
        "starts, each with its start, end (local time), duration and outcome.",
    )
    p.add_argument("vcname", metavar="VCNAME")
    add_site_option(p)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = session.open_site(ns.site)
    runs = lifecycle.vc_history(site, validate_name("VC name", ns.vcname))
    if ns.json:
        json_dump([r.to_json() for r in runs], out)
        return EXIT_OK
    out.write(f"{'RUN':>4}  {'KIND':<7} {'STARTED':<19}  {'TOOK':>8}  {'OUTCOME':<12} WHAT\n")
    for r in runs:
        took = "-" if r.ended_at is None else _duration(r.ended_at - r.started_at)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        out.write(f"{r.id:>4}  {r.kind:<7} {started:<19}  {took:>8}  {r.outcome:<12} {r.what}\n")
        if r.message and r.outcome not in (outcomes.FINISHED,):
            out.write(f"{'':>6}{r.message}\n")
    logs = [r.log for r in runs if r.log]
    if logs:
        out.write(f"logs: {Path(logs[-1]).parent}/{ns.vcname}-run-N.log (one per run)\n")
    return EXIT_OK


def _duration(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``2h14m``: short enough for a column."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
