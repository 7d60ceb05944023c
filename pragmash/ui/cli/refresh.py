"""``pragmash refresh VCNAME``: the VC's running nodes receive their current vc-out.

What a refresh does (and why it is no journaled run) is :mod:`pragmash.engine.commands.refresh`'s;
this front end parses, prints its step as a run's steps are printed, and says how it
ended.
"""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.commands import refresh
from pragmash.errors import EXIT_OK
from pragmash.images.nocloud import GUEST_VC_OUT
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import render_error
from pragmash.ui.step_printer import StepPrinter

DESCRIPTION = f"""\
Put each running node's current vc-out at {GUEST_VC_OUT} without a reboot (the
frontend the whole VC's, each compute its own, written again from the ledger first):
through the node's QEMU guest agent, else over ssh with the VC's key (computes
through the frontend). A node neither way reaches is named as not updated, with the
command that copies its file by hand (exit 3); nodes not running are left alone. A
guest's disk is never written while it runs. `pragmash scale` does this as its last
step. Holds the VC's lock while it works (exit 4 while a run holds the VC)."""


def cmd_refresh(args: list[str], out: TextIO, err: TextIO) -> int:
    """Refresh a VC's running nodes; exit 0 when every running node was updated."""
    p = ArgumentParser(prog="pragmash refresh", description=DESCRIPTION)
    p.add_argument("vcname", metavar="VCNAME")
    add_site_option(p)
    ns = p.parse_args(args)
    error = refresh.refresh(ns.vcname, site=ns.site, on_event=StepPrinter(out, err))
    if error is None:
        out.write(f"{ns.vcname}: every running node holds its current vc-out\n")
        return EXIT_OK
    err.write(render_error(error) + "\n")
    return error.exit_code
