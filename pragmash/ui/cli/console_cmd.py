"""``pragmash console VC NODE``: an interactive serial console on one node; Ctrl-] leaves."""

from __future__ import annotations

import sys
from typing import TextIO

from pragmash.engine.hosts.console import open_node_console
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.console import attach, shower
from pragmash.vc.formats.names import validate_name


def cmd_console(args: list[str], out: TextIO, err: TextIO) -> int:
    """Attach the terminal to a node's serial console until Ctrl-]."""
    p = ArgumentParser(
        prog="pragmash console",
        description="Attach to a node's serial console (libvirt's console stream); Ctrl-] leaves.",
    )
    p.add_argument("vcname")
    p.add_argument("node", help="the node's name, `frontend` or `compute[N]`")
    add_site_option(p)
    ns = p.parse_args(args)
    site = session.open_site(ns.site)
    name, console = open_node_console(site, validate_name("VC name", ns.vcname), ns.node)
    err.write(f"connected to the serial console of {name}; Ctrl-] leaves\r\n")
    err.flush()
    how = attach(console, sys.stdin.fileno(), shower(out))
    err.write(
        f"\r\nleft the console of {name}" + (" (it closed)" if how == "closed" else "") + "\n"
    )
    return EXIT_OK
