"""REPL commands that look without changing anything: list, where, show, watch.

Nodes are named as recipes name them (``frontend``, ``compute[0]``, ``compute``,
``all`` or a node's name) wherever a command asks for one. Long output (the journal,
vc-out.xml, a domain's XML, a whole console) goes through :meth:`ReplBase.page`.
"""

from __future__ import annotations

from pathlib import Path

from pragmash import outcomes
from pragmash.errors import PragmashError, UserError
from pragmash.language.ast import Include
from pragmash.language.program import FlatStep
from pragmash.ui.render import location, render_error
from pragmash.ui.repl.base import ReplBase
from pragmash.ui.repl.live import LiveView

SHOW_TOPICS = ("vc-out", "nodes", "node", "vars", "journal", "leases")
NODE_FLAGS = ("--xml", "--console")
CONSOLE_SUMMARY = 3


class LookingCommands(ReplBase):
    """Commands that show the recipe, the run and its nodes."""

    def do_list(self, arg: str) -> None:
        """list [LINE] (l): the recipe around the current step (or LINE).

        ``->`` marks the current step's line; ``B`` a breakpoint, ``T`` a temporary
        one, ``b`` a statement whose kind has a breakpoint (`break boot`); the last
        column is how each line's step went in this run.
        """
        cur = self.interp.current or (self.interp.steps[-1] if self.interp.steps else None)
        file = cur.statement.span.file if cur else self.interp.program.file
        if file == self.interp.program.file:
            text = self.interp.program.source
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as err:
                self.error(f"{file}: cannot read: {err.strerror}")
                return
        lines = text.splitlines()
        name = location(file, 1, 1).rsplit(":", 2)[0]
        if arg:
            if not (arg.isascii() and arg.isdigit()) or int(arg) < 1:  # '²': not int's
                self.error(f"list {arg!r}: expected a line number (1 or more)")
                return
            centre = int(arg)
            if centre > len(lines):
                self.error(f"list {arg}: {name} has only {len(lines)} line(s)")
                return
        else:
            centre = cur.statement.span.line if cur else 1
        first = max(1, centre - 5)
        last = min(len(lines), first + 10)
        here = [s for s in self.interp.steps if s.statement.span.file == file]
        outcomes = {
            s.statement.span.line: self.interp.outcomes[s.index]
            for s in here
            if s.index in self.interp.outcomes
        }
        kind_breaks = {
            s.statement.span.line for s in here if s.statement.kind in self.interp.break_kinds
        }
        current_line = (
            cur.statement.span.line if cur is not None and self.interp.current is not None else -1
        )
        self.message(f"{name}:")
        for number in range(first, last + 1):
            mark = "->" if number == current_line else "  "
            if (file, number) in self.interp.temporary:
                bp = "T"
            elif (file, number) in self.interp.breakpoints:
                bp = "B"
            else:
                bp = "b" if number in kind_breaks else " "
            done = outcomes.get(number, "")
            self.message(f"{number:4d} {bp}{mark} {lines[number - 1]:<60} {done}".rstrip())

    def do_where(self, arg: str) -> None:
        """where (w): the current step, the includes it sits in, and how the run stands."""
        total = len(self.interp.steps)
        self.message(
            f"{self.run.vcname}: run {self.run.run_id}, {self.interp.status}, "
            f"step {min(self.interp.pc + 1, total)} of {total}"
        )
        cur = self.interp.current
        if cur is None:
            self.message("  at the end of the recipe")
            return
        chain: list[FlatStep] = []
        depth = cur.depth
        for step in reversed(self.interp.steps[: cur.index]):
            if step.depth < depth and isinstance(step.statement, Include):
                chain.append(step)
                depth = step.depth
        for step in reversed(chain):
            self.message(f"  {self._loc(step)}  {step.statement.text}")
        self.message(f"> {self._loc(cur)}  {cur.statement.text}")
        if self.interp.status in (outcomes.FAILED, outcomes.INTERRUPTED) and self.interp.last_error:
            self.error(render_error(self.interp.last_error))

    def do_show(self, arg: str) -> None:
        """show vc-out | nodes | node NODE [--xml | --console] | vars | journal | leases:
        look at the run without changing it.

        ``node NODE`` (any target: `frontend`, `compute[0]`, a name) gives a summary:
        the engine's state, addresses, disks and the last console lines; `--xml` the
        domain XML, `--console` the whole console, both paged at a terminal.
        The journal is in the order things ran, typed statements among the steps.
        """
        topic, _, rest = arg.partition(" ")
        rest = rest.strip()
        if topic == "vc-out":
            self._show_vc_out()
        elif topic == "nodes":
            self._show_nodes()
        elif topic == "node":
            self._show_node(rest)
        elif topic == "vars":
            for name, value in sorted(self.run.variables().items()):
                self.message(f"  ${name:<18} {value}")
        elif topic == "journal":
            self._show_journal()
        elif topic == "leases":
            self._show_leases()
        else:
            self.error(f"show {arg!r}: expected one of {', '.join(SHOW_TOPICS)}")

    def do_watch(self, arg: str) -> None:
        """watch nodes: each node's state and last console line, redrawn until a key is pressed."""
        if arg != "nodes":
            self.error(f"watch {arg!r}: expected `watch nodes`")
            return
        if not self.run.nodes():
            self.message("no nodes yet: nothing is allocated (`allocate` makes them)")
            return
        view = LiveView(*self.terminal, colour=self.colour) if self.terminal else None
        if view is None:
            self.message("(not at a terminal: the nodes once, not watched)")
            self._show_nodes()
            return
        view.watch(self.run.node_views)
        self.message(view.text().rstrip("\n"))

    def _show_vc_out(self) -> None:
        path = self.run.vc_out_path
        if not path.is_file():
            self.error(f"{path}: no vc-out.xml yet; `allocate` writes it")
            return
        self.page(f"{path}:\n" + path.read_text(encoding="utf-8").rstrip())

    def _show_nodes(self) -> None:
        views = self.run.node_views()
        if not views:
            self.message("no nodes yet: nothing is allocated (`allocate` makes them)")
            return
        self.message(f"  {'node':<22} {'role':<9} {'cpus':>4}  {'private ip':<15} {'state'}")
        for v in views:
            self.message(f"  {v.name:<22} {v.role:<9} {v.cpus:>4}  {v.private_ip:<15} {v.state}")

    def _show_node(self, rest: str) -> None:
        words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        names = [w for w in words if not w.startswith("--")]
        bad = [f for f in flags if f not in NODE_FLAGS]
        if len(names) != 1 or bad or len(flags) > 1:
            self.error(
                f"show node {rest!r}: expected `show node NODE [--xml | --console]` "
                "(NODE: frontend, compute[i], compute, all or a node's name)"
            )
            return
        try:
            chosen = self.run.resolve_nodes(names[0])
        except UserError as err:
            self.error(f"show node {names[0]!r}: {err.message}")
            return
        for name in chosen:
            try:
                if flags == ["--xml"]:
                    xml = self.run.domain_xml(name)
                    self.page(xml.rstrip() if xml else f"{name}: not defined in the engine")
                elif flags == ["--console"]:
                    self._show_console(name)
                else:
                    self._node_summary(name)
            except PragmashError as err:
                self.error(render_error(err))

    def _node_summary(self, name: str) -> None:
        node = next(n for n in self.run.nodes() if n.name == name)
        self.message(f"{node.name}: {self.run.state(node.name)} on {self.run.uri}")
        self.message(f"  role {node.role}, {node.cpus} CPU(s), MACs {', '.join(node.macs)}")
        self.message(
            f"  private ip {node.private_ip}"
            + (f", public ip {node.public_ip}" if node.public_ip else "")
        )
        self.message(f"  disks: {', '.join(node.disks) or '(none)'}")
        self.message(f"  up when: {self.run.up_when(node.name)}")
        defined = self.run.domain_xml(node.name) is not None
        self.message(
            f"  domain XML: `show node {name} --xml`"
            if defined
            else "  domain XML: not defined in the engine"
        )
        tail = self.run.console_tail(node.name, CONSOLE_SUMMARY)
        if tail:
            self.message(f"  console (last {len(tail)} lines; `show node {name} --console`):")
            self.message("\n".join(f"    | {line}" for line in tail))
        else:
            simulated = " (the engine is simulated)" if self.run.simulated else ""
            self.message(f"  console: no output{simulated}")

    def _show_console(self, name: str) -> None:
        tail = self.run.console_tail(name, 100_000)
        if not tail:
            simulated = " (the engine is simulated)" if self.run.simulated else ""
            self.message(f"{name}: no console output{simulated}")
            return
        self.page(f"{name} console:\n" + "\n".join(f"| {line}" for line in tail))

    def _show_journal(self) -> None:
        records = self.run.journal()
        if not records:
            self.message("the journal is empty: nothing has run yet")
            return
        rows = []
        for rec in records:
            where = location(rec.file, rec.line, rec.col) if rec.file else f"step {rec.idx + 1}"
            msg = f"  {rec.message}" if rec.message else ""
            rows.append(f"  #{rec.idx + 1:<3} {rec.outcome:<11} {where:<24} {rec.text}{msg}")
        self.page(
            f"journal of run {self.run.run_id}, in the order things ran (#: step index):\n"
            + "\n".join(rows)
        )

    def _show_leases(self) -> None:
        held = self.run.leases()
        if held is None:
            self.message(f"{self.run.vcname} holds no leases")
            return
        self.message(
            f"{held.vcname}: {held.public.fqdn} ({held.public.ip}), VLAN {held.vlan}, "
            f"{held.total_cpus} CPUs"
        )
        for lease in held.nodes:
            self.message(
                f"  {lease.name:<22} {lease.cpus:>2} cpu  {lease.private_ip:<15} {' '.join(lease.macs)}"
            )
