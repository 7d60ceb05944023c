"""What the REPL tests share: a recipe, a stuck compute, and a Driver that types lines.

The Driver gives the REPL prompt_toolkit's pipe input and a DummyOutput, so the REPL
believes a person is at a terminal: the live view runs during steps and long output
goes to the pager, both drawn to the DummyOutput (40 rows, 80 columns).
"""

from __future__ import annotations

import io
from pathlib import Path

import libvirt
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput
from prompt_toolkit.output import DummyOutput

from pragmash.engine.run import session
from pragmash.ui.repl.debugger import Repl

RECIPE = """\
allocate 2
boot frontend
wait frontend running timeout 5s
boot compute
wait compute running timeout 1s
echo "$vcname is up"
"""

# a domain left behind under compute 1's name, paused: the compute "hangs"
STUCK = """\
<domain type='test'>
  <name>calit2-compute-1</name>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
</domain>
"""


def leave_stuck_compute(conn: libvirt.virConnect) -> None:
    stuck = conn.defineXML(STUCK)
    stuck.create()
    stuck.suspend()


def domain_state(conn: libvirt.virConnect, name: str) -> str:
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return "absent"
    code = dom.state()[0]
    return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused"}.get(
        code, str(code)
    )


class Driver:
    """Types one line at a time into a REPL over a fresh run of ``recipe``."""

    def __init__(
        self,
        recipe: Path,
        pipe: PipeInput,
        base_path: Path | None = None,
        *,
        colour: bool = False,
        allow_run: bool = False,
    ) -> None:
        prep = session.prepare(
            session.RunOptions(
                recipe=str(recipe),
                vcname="calit2",
                base_path=str(base_path) if base_path else None,
                allow_run=allow_run,
            )
        )
        self.run = session.start(prep)
        self.out = io.StringIO()
        self.repl = Repl(self.run, self.out, colour=colour)
        self.repl.make_session(InMemoryHistory(), input=pipe, output=DummyOutput())
        self.pipe = pipe

    def type(self, line: str) -> str:
        """Type a line and Enter; return what the REPL printed for it."""
        start = len(self.out.getvalue())
        self.pipe.send_text(line + "\r")
        assert self.repl.read_and_run(), f"the REPL ended after {line!r}"
        return self.out.getvalue()[start:]

    def journal(self) -> dict[int, str]:
        return {s.idx: s.outcome for s in self.run.journal.steps()}
