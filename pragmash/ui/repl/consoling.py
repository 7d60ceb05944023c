"""The REPL's ``console NODE``: the same interactive console as ``pragmash console``."""

from __future__ import annotations

import sys

from pragmash.errors import PragmashError
from pragmash.ui.console import attach, shower
from pragmash.ui.render import render_error
from pragmash.ui.repl.base import ReplBase


class ConsoleCommands(ReplBase):
    def do_console(self, arg: str) -> None:
        """console NODE: attach to the node's serial console (frontend, compute[0], a name)

        Keys go to the guest, Ctrl-C included; Ctrl-] comes back to the REPL. The run
        does not move meanwhile. On the simulated engine there is no console, and it
        says so.
        """
        if not arg.strip():
            self.error("console: expected a node: frontend, compute[N] or a node name")
            return
        try:
            name, console = self.run.open_console(arg.strip())
        except PragmashError as exc:
            self.error(render_error(exc))
            return
        self.message(f"connected to the serial console of {name}; Ctrl-] comes back")
        how = attach(console, sys.stdin.fileno(), shower(self.out))
        self.message(
            f"\nback from the console of {name}" + (" (it closed)" if how == "closed" else "")
        )
