"""The REPL: step through a run and debug a stuck stage.

Built like CPython's ``pdb`` over ``bdb``: the interpreter does the stepping; this
module only reads a line, turns it into one interpreter/runtime call and shows
what happened. Each ``do_*`` method is a command and its docstring is its help
text. Anything that is not a command is parsed as recipe statements and run at
once against the same run (journaled, with the same file:line:col errors). All
output goes through :meth:`Repl.message` and :meth:`Repl.error`.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output as PtOutput

from pragmash.driver_api import describe_up_tests
from pragmash.engine import session as session_mod
from pragmash.engine.events import Event, Output, Progress, StepFailed, StepFinished, StepStarted
from pragmash.engine.interpreter import StopReason
from pragmash.engine.reload import reload_vc_in
from pragmash.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    PragmashError,
    RecipeError,
    StepError,
    UserError,
)
from pragmash.language.ast import STATEMENT_KINDS, Include
from pragmash.language.parser import parse_statement
from pragmash.language.program import FlatStep, flatten
from pragmash.language.sources import remember
from pragmash.store import allocation as alloc_mod
from pragmash.textsafe import printable, printable_text
from pragmash.ui.arguments import ArgumentParser, add_run_options, run_options
from pragmash.ui.render import StepPrinter, location, render_error, unescaped
from pragmash.ui.repl.completion import ReplCompleter
from pragmash.ui.repl.session import build_session
from pragmash.vc.names import validate_name

REPL_FILE = "<repl>"
SHOW_TOPICS = ("vc-out", "nodes", "node", "vars", "journal", "leases")
_ALIASES = {"s": "step", "n": "next", "c": "continue", "cont": "continue", "b": "break",
            "l": "list", "w": "where", "q": "quit", "exit": "quit", "h": "help", "?": "help"}  # fmt: skip
_FILE_LINE = re.compile(r"^(?:(?P<file>.+):)?(?P<line>\d+)$")


class Repl:
    """Debugger commands over one run; holds no run logic of its own."""

    def __init__(
        self, run: session_mod.Run, out: TextIO, *, session: PromptSession[str] | None = None
    ) -> None:
        self.run = run
        self.interp = run.interpreter
        self.runtime = run.prepared.runtime
        self.out = out
        self.session = session
        self.closed = False
        self.interp.on_event = self.on_event
        recorded = [s.idx for s in run.journal.steps()]
        self._typed_index = max([len(self.interp.steps) - 1, *recorded]) + 1
        self._last_progress = 0.0
        self._status_shown = False

    # -- output -----------------------------------------------------------------------

    def message(self, text: str) -> None:
        """Every line the REPL shows goes through here (or :meth:`error`), escaped."""
        self._clear_status()
        self.out.write(printable_text(text) + "\n")
        self.out.flush()

    def error(self, text: str) -> None:
        """A problem for the user; the REPL goes on."""
        self.message(text if text.startswith("error:") else f"error: {text}")

    def on_event(self, event: Event) -> None:
        """Interpreter events as lines: one per finished step, notes, progress."""
        if isinstance(event, StepStarted):
            return
        if isinstance(event, Progress):
            self._progress(event)
            return
        if isinstance(event, Output):
            self.message(f"    {event.text}")
            return
        span = event.statement.span
        where = f"{location(span.file, span.line, span.column):<24} {event.statement.text}"
        if isinstance(event, StepFinished):
            mark = "ok  " if event.outcome == "done" else "skip"
            msg = f"  {event.message}" if event.message else ""
            self.message(f"{mark} {where}  ({event.duration:.2f}s){msg}")
        elif isinstance(event, StepFailed):
            word = "INTR" if event.interrupted else "FAIL"
            self.message(f"{word} {where}  ({event.duration:.2f}s)")

    def _progress(self, event: Progress) -> None:
        if event.total:
            frac = max(0.0, min(1.0, event.done / event.total))
            text = f"  [{'#' * int(frac * 20):<20}] {frac * 100:5.1f}%  {event.label}"
        else:
            text = f"  ... {event.label}"
        if self.out.isatty():
            raw = unescaped(self.out)
            raw.write("\r\x1b[2K" + printable(text)[:120])
            raw.flush()
            self._status_shown = True
        elif time.monotonic() - self._last_progress > 5:
            self._last_progress = time.monotonic()
            self.message(text)

    def _clear_status(self) -> None:
        if self._status_shown:
            unescaped(self.out).write("\r\x1b[2K")
            self._status_shown = False

    # -- the loop ---------------------------------------------------------------------

    @classmethod
    def command_names(cls, *, aliases: bool = True) -> tuple[str, ...]:
        """Command words: with aliases for highlighting, without for completion (less noise)."""
        names = [n[3:] for n in dir(cls) if n.startswith("do_")]
        return tuple(sorted(names + (list(_ALIASES) if aliases else [])))

    def make_session(
        self,
        history: History | None = None,
        input: Input | None = None,
        output: PtOutput | None = None,
    ) -> PromptSession[str]:
        """This REPL's prompt session: its completer knows the run's nodes and variables."""
        completer = ReplCompleter(
            self.command_names(aliases=False),
            nodes=lambda: list(self.runtime.nodes),
            variables=lambda: list(self.runtime.variables),
        )
        self.session = build_session(
            history,
            input,
            output,
            completer=completer,
            commands=self.command_names(),
            toolbar=self.toolbar,
        )
        return self.session

    def toolbar(self) -> str:
        """The bottom line: the VC, where the run is and how its last step went."""
        total = len(self.interp.steps)
        cur = self.interp.current
        if cur is None:
            where = f"all {total} steps run"
        else:
            where = f"step {cur.index + 1}/{total}: {cur.statement.text}"
        status: str = self.interp.status
        if status in ("failed", "interrupted") and self.interp.last_error is not None:
            status += f": {self.interp.last_error.message.splitlines()[0][:60]}"
        return f" {self.runtime.vcname} · {where} · {status}"

    def read_and_run(self) -> bool:
        """Prompt once and run what was typed; False when the REPL should end."""
        assert self.session is not None, "make_session() first"
        try:
            line = self.session.prompt()
        except KeyboardInterrupt:
            return True
        except EOFError:
            self.do_quit("")
            return False
        return not self.onecmd(line)

    def cmdloop(self, intro: bool = True) -> int:
        """Read commands until quit or Ctrl-D; the run is closed (journaled) on the way out."""
        if intro:
            self.message(
                f"pragmash REPL on {self.runtime.vcname} ({self.runtime.site.uri}), "
                f"run {self.run.journal.run_id}: {len(self.interp.steps)} steps. "
                "`help` lists the commands; anything else runs as a recipe statement."
            )
            self.show_current()
        try:
            while self.read_and_run():
                pass
        finally:
            self.close()
        return self.exit_code()

    def onecmd(self, line: str) -> bool:
        """Run one line: a command, or recipe statements. True means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return False
        word, _, arg = line.partition(" ")
        name = _ALIASES.get(word, word)
        handler: Callable[[str], bool | None] | None = getattr(self, f"do_{name}", None)
        try:
            if handler is not None and name.isidentifier():
                return bool(handler(arg.strip()))
            self.run_typed(line)
        except KeyboardInterrupt:
            self.error("interrupted")
        except PragmashError as err:
            self.error(render_error(err))
        return False

    def run_typed(self, text: str) -> None:
        """Parse what was typed as recipe statements and run each against this run."""
        remember(REPL_FILE, text)  # so runtime errors show the typed line with a caret
        try:
            statements = parse_statement(text, file=REPL_FILE)
        except RecipeError as err:
            self.error(render_error(err))
            return
        for step in flatten(statements):
            index = self._typed_index
            self._typed_index += 1
            try:
                self.interp.run_statement(step.statement, index=index)
            except PragmashError as err:
                self.error(render_error(err))
                return

    # -- showing where we are ---------------------------------------------------------

    def _loc(self, step: FlatStep) -> str:
        span = step.statement.span
        return location(span.file, span.line, span.column)

    def show_current(self) -> None:
        """``> file:line:col  statement`` for the step the program counter points at."""
        cur = self.interp.current
        if cur is None:
            self.message(f"the recipe has run to its end ({len(self.interp.steps)} steps)")
            return
        self.message(f"> {self._loc(cur)}  {cur.statement.text}   [{self.interp.status}]")

    def _after(self, reason: StopReason) -> None:
        if reason == "breakpoint":
            cur = self.interp.current
            assert cur is not None
            self.message(f"breakpoint at {self._loc(cur)}")
        elif reason in ("failed", "interrupted"):
            err = self.interp.last_error
            if err is not None:
                self.error(render_error(err))
            self.message(
                "nothing was removed; look with `show node NAME`, fix the cause, then `retry` "
                "(or `skip`)"
            )
        self.show_current()

    # -- stepping ---------------------------------------------------------------------

    def do_step(self, arg: str) -> None:
        """step (s): run exactly one step, then stop."""
        if self._at_end():
            return
        self._after(self.interp.step())

    def do_next(self, arg: str) -> None:
        """next (n): run one step; an include runs as a whole."""
        if self._at_end():
            return
        self._after(self.interp.next())

    def do_continue(self, arg: str) -> None:
        """continue (c): run until a breakpoint, a failure or the end of the recipe."""
        if self._at_end():
            return
        self._after(self.interp.cont())

    def do_retry(self, arg: str) -> None:
        """retry: run the failed (or interrupted) step again, then stop.

        Use it after fixing the cause: nothing is allocated or staged again, every
        stage is idempotent (booting a running domain succeeds).
        """
        if self.interp.status not in ("failed", "interrupted"):
            self.error(
                f"nothing to retry: the current step is {self.interp.status}, not failed "
                "(use `step` to run it)"
            )
            return
        self._after(self.interp.retry())

    def do_skip(self, arg: str) -> None:
        """skip: leave the current step undone (journaled as skipped) and move past it."""
        if self._at_end():
            return
        self.interp.skip()
        self.show_current()

    def do_reload(self, arg: str) -> None:
        """reload: read vc-in.xml again after fixing a template in the repository.

        The next boot of a node that is not running uses the new template (stop a
        running one first, e.g. `ve_driver/destroy compute[1]`). Leases, staged disks
        and the journal stay; a change the allocation cannot follow is refused.
        """
        changed = reload_vc_in(self.run.prepared)
        path = self.run.prepared.vcin.path
        if not changed:
            self.message(f"reloaded {path}: no template changed")
            return
        self.message(f"reloaded {path}: {'; '.join(changed)}")
        running = [
            name
            for name, node in self.runtime.nodes.items()
            if f"the {node.role} template changed" in changed
            and self.runtime.engine.state(name) not in ("absent", "shut off")
        ]
        if running:  # a shut-off domain is redefined from the template by `boot`
            self.message(
                f"  still running with the old template: {', '.join(running)} "
                "(`ve_driver/destroy` them, then `boot`, to use the new one)"
            )

    def _at_end(self) -> bool:
        if self.interp.finished:
            self.error("the recipe has run to its end; type statements to run more, or `quit`")
            return True
        return False

    # -- breakpoints ------------------------------------------------------------------

    def do_break(self, arg: str) -> None:
        """break [LINE | FILE:LINE | KIND] (b): stop before a line's statement or every KIND.

        KIND is a statement kind: allocate, boot, driver, echo, fix, include, param,
        run, set, wait. With no argument, list the breakpoints.
        """
        if not arg:
            self._list_breakpoints()
            return
        try:
            what = self.add_break(arg)
        except UserError as err:
            self.error(err.message)
            return
        self.message(f"breakpoint set: {what}")

    def add_break(self, arg: str) -> str:
        """Set a breakpoint from ``LINE``, ``FILE:LINE`` or a statement kind; UserError if none fits."""
        if arg in STATEMENT_KINDS:
            self.interp.break_kinds.add(arg)
            return f"every '{arg}'"
        match = _FILE_LINE.match(arg)
        if match is None:
            raise UserError(
                f"break {arg!r}: expected a line number, FILE:LINE or a statement kind "
                f"({', '.join(STATEMENT_KINDS)})"
            )
        line = int(match.group("line"))
        file = self._find_file(match.group("file"))
        lines = sorted(
            {s.statement.span.line for s in self.interp.steps if s.statement.span.file == file}
        )
        if line not in lines:
            raise UserError(
                f"break {arg}: no statement starts at line {line} of {file}; "
                f"statements start at lines {', '.join(map(str, lines)) or '(none)'}"
            )
        self.interp.add_breakpoint(line, file)
        return f"{location(file, line, 1).rsplit(':', 1)[0]}"

    def _find_file(self, given: str | None) -> str:
        files = list(dict.fromkeys(s.statement.span.file for s in self.interp.steps))
        if given is None:
            return self.interp.program.file
        for file in files:
            if file == given or Path(file).name == given or file.endswith("/" + given):
                return file
        raise UserError(f"break: {given} is not part of this recipe; its files: {', '.join(files)}")

    def _list_breakpoints(self) -> None:
        if not self.interp.breakpoints and not self.interp.break_kinds:
            self.message("no breakpoints")
            return
        for file, line in sorted(self.interp.breakpoints):
            self.message(f"  {location(file, line, 1).rsplit(':', 1)[0]}")
        for kind in sorted(self.interp.break_kinds):
            self.message(f"  every '{kind}'")

    def do_clear(self, arg: str) -> None:
        """clear [LINE | FILE:LINE | KIND]: remove one breakpoint, or all of them."""
        if not arg:
            self.interp.clear_breakpoints()
            self.message("all breakpoints cleared")
            return
        if arg in self.interp.break_kinds:
            self.interp.break_kinds.discard(arg)
            self.message(f"cleared: every '{arg}'")
            return
        match = _FILE_LINE.match(arg)
        if match is not None:
            try:
                key = (self._find_file(match.group("file")), int(match.group("line")))
            except UserError as err:
                self.error(err.message)
                return
            if key in self.interp.breakpoints:
                self.interp.breakpoints.discard(key)
                self.message(f"cleared: {arg}")
                return
        self.error(f"clear {arg!r}: no such breakpoint (`break` lists them)")

    # -- looking ----------------------------------------------------------------------

    def do_list(self, arg: str) -> None:
        """list [LINE] (l): the recipe around the current step (or LINE).

        ``->`` marks the current step's line, ``B`` a breakpoint; the last column is
        how each line's step went in this run.
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
        if arg:
            if not arg.isdigit():
                self.error(f"list {arg!r}: expected a line number")
                return
            centre = int(arg)
        else:
            centre = cur.statement.span.line if cur else 1
        first = max(1, centre - 5)
        last = min(len(lines), first + 10)
        outcomes = {
            s.statement.span.line: self.interp.outcomes[s.index]
            for s in self.interp.steps
            if s.statement.span.file == file and s.index in self.interp.outcomes
        }
        current_line = (
            cur.statement.span.line if cur is not None and self.interp.current is not None else -1
        )
        self.message(f"{location(file, centre, 1).rsplit(':', 2)[0]}:")
        for number in range(first, last + 1):
            mark = "->" if number == current_line else "  "
            bp = "B" if (file, number) in self.interp.breakpoints else " "
            done = outcomes.get(number, "")
            self.message(f"{number:4d} {bp}{mark} {lines[number - 1]:<60} {done}".rstrip())

    def do_where(self, arg: str) -> None:
        """where (w): the current step, the includes it sits in, and how the run stands."""
        total = len(self.interp.steps)
        self.message(
            f"{self.runtime.vcname}: run {self.run.journal.run_id}, {self.interp.status}, "
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
        if self.interp.status in ("failed", "interrupted") and self.interp.last_error:
            self.error(render_error(self.interp.last_error))

    def do_show(self, arg: str) -> None:
        """show vc-out | nodes | node NAME | vars | journal | leases: look at the run's state.

        ``node NAME`` gives the engine's state, the domain XML and the console tail.
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
            for name, value in sorted(self.runtime.variables.items()):
                self.message(f"  ${name:<18} {value}")
        elif topic == "journal":
            self._show_journal()
        elif topic == "leases":
            self._show_leases()
        else:
            self.error(f"show {arg!r}: expected one of {', '.join(SHOW_TOPICS)}")

    def _show_vc_out(self) -> None:
        path = self.runtime.vc_out_path
        if not path.is_file():
            self.error(f"{path}: no vc-out.xml yet; `allocate` writes it")
            return
        self.message(f"{path}:")
        self.message(path.read_text(encoding="utf-8").rstrip())

    def _show_nodes(self) -> None:
        if not self.runtime.nodes:
            self.message("no nodes yet: nothing is allocated (`allocate` makes them)")
            return
        self.message(f"  {'node':<22} {'role':<9} {'cpus':>4}  {'private ip':<15} {'state'}")
        for node in self.runtime.nodes.values():
            self.message(
                f"  {node.name:<22} {node.role:<9} {node.cpus:>4}  {node.private_ip:<15} "
                f"{self.runtime.engine.state(node.name)}"
            )

    def _show_node(self, name: str) -> None:
        node = self.runtime.nodes.get(name)
        if node is None:
            known = ", ".join(self.runtime.nodes) or "none yet (nothing is allocated)"
            self.error(f"show node {name!r}: no such node; the nodes: {known}")
            return
        engine = self.runtime.engine
        self.message(f"{node.name}: {engine.state(node.name)} on {self.runtime.site.uri}")
        self.message(f"  role {node.role}, {node.cpus} CPU(s), MACs {', '.join(node.macs)}")
        self.message(
            f"  private ip {node.private_ip}"
            + (f", public ip {node.public_ip}" if node.public_ip else "")
        )
        self.message(f"  disks: {', '.join(node.disks) or '(none)'}")
        self.message(
            f"  up when: {describe_up_tests(node.up_tests)} "
            f"(chosen by {self.runtime.up_tests_source})"
        )
        xml = engine.domain_xml(node.name)
        self.message("  domain XML:" if xml else "  domain XML: not defined in the engine")
        if xml:
            self.message("\n".join(f"    {line}" for line in xml.rstrip().splitlines()))
        tail = engine.console_tail(node.name, 20)
        if tail:
            self.message("  console (last lines):")
            self.message("\n".join(f"    | {line}" for line in tail))
        else:
            self.message(
                "  console: no output" + (" (the engine is simulated)" if engine.simulated else "")
            )

    def _show_journal(self) -> None:
        for rec in self.run.journal.steps():
            where = location(rec.file, rec.line, rec.col) if rec.file else f"step {rec.idx + 1}"
            msg = f"  {rec.message}" if rec.message else ""
            self.message(f"  {rec.idx + 1:>3} {rec.outcome:<11} {where:<24} {rec.text}{msg}")

    def _show_leases(self) -> None:
        held = alloc_mod.current_allocation(self.run.prepared.ledger, self.runtime.vcname)
        if held is None:
            self.message(f"{self.runtime.vcname} holds no leases")
            return
        self.message(
            f"{held.vcname}: {held.public.fqdn} ({held.public.ip}), VLAN {held.vlan}, "
            f"{held.total_cpus} CPUs"
        )
        for lease in held.nodes:
            self.message(
                f"  {lease.name:<22} {lease.cpus:>2} cpu  {lease.private_ip:<15} {' '.join(lease.macs)}"
            )

    # -- help and leaving -------------------------------------------------------------

    def do_help(self, arg: str) -> None:
        """help [COMMAND] (h, ?): the commands, or one command's own text."""
        if arg:
            name = _ALIASES.get(arg, arg)
            handler = getattr(self, f"do_{name}", None)
            if handler is None or not name.isidentifier():
                self.error(f"help {arg!r}: no such command; `help` lists them")
                return
            self.message(inspect.cleandoc(handler.__doc__ or name))
            return
        self.message(
            "commands (anything else typed runs as recipe statements, e.g. `boot compute[1]`):"
        )
        for name in sorted(n[3:] for n in dir(self) if n.startswith("do_")):
            doc = inspect.cleandoc(getattr(self, f"do_{name}").__doc__ or name)
            self.message(f"  {doc.splitlines()[0]}")

    def do_quit(self, arg: str) -> bool:
        """quit (q, exit, Ctrl-D): leave the REPL; says what is still running. Nothing is destroyed."""
        running = []
        for name in self.runtime.nodes:
            try:
                if self.runtime.engine.state(name) == "running":
                    running.append(name)
            except PragmashError:
                continue
        vc = self.runtime.vcname
        if running:
            self.message(
                f"still running: {', '.join(running)} (`pragmash shutdown {vc}` stops them)"
            )
        else:
            self.message(f"no domain of {vc} is running")
        if not self.interp.finished:
            cur = self.interp.current
            assert cur is not None
            self.message(
                f"the run stopped at {self._loc(cur)} ({cur.statement.text}); "
                f"`pragmash repl --attach {vc}` or `pragmash resume {vc}` continues it"
            )
        self.close()
        return True

    def close(self) -> None:
        """Journal how the run was left and give the VC's lock back (once)."""
        if self.closed:
            return
        self.closed = True
        status = self.interp.status
        if self.interp.finished:
            self.run.close("finished")
        elif status in ("failed", "interrupted"):
            err = self.interp.last_error
            self.run.close(status, err.message if err else None)
        else:
            cur = self.interp.current
            where = f" at step {cur.index + 1} ({cur.statement.text})" if cur else ""
            self.run.close("interrupted", f"left the REPL{where}")

    def exit_code(self) -> int:
        """0 when the recipe finished or was left paused; else the failed step's status."""
        if self.interp.status == "failed":
            return EXIT_STEP_FAILED
        if self.interp.status == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_OK


# -- entry points ---------------------------------------------------------------------


def _arg_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="pragmash repl",
        description="Step through a run, or open a VC's last run where it stopped (--attach).",
    )
    p.add_argument("recipe", nargs="?", help="the recipe to load; stops before its first statement")
    p.add_argument("--vcname", help="the virtual cluster (with RECIPE)")
    p.add_argument(
        "--attach", metavar="NAME", help="open NAME's last run at the step where it stopped"
    )
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="with --attach: open the run even though its recipe changed since it started",
    )
    p.add_argument("--site", help="the site config (default $PRAGMASH_SITE, else the demo site)")
    add_run_options(p)
    return p


def open_run(argv: Sequence[str], err: TextIO) -> session_mod.Run:
    """The run the REPL works on: a fresh one stopped before step 1, or the VC's last (--attach)."""
    ns = _arg_parser().parse_args(list(argv))
    if ns.attach:
        if ns.recipe or ns.vcname:
            raise UserError("pragmash repl --attach NAME takes no RECIPE or --vcname")
        run = session_mod.resume(
            validate_name("VC name (--attach)", ns.attach),
            site=ns.site,
            accept_changes=ns.accept_changes,
        )
        restore_from_journal(run)
        for note in session_mod.site_notes(run.prepared) + run.notes:
            err.write(f"{note}\n")
        return run
    if not ns.recipe or not ns.vcname:
        raise UserError(
            "pragmash repl: expected RECIPE --vcname NAME, or --attach NAME",
            hint="see `pragmash repl --help`",
        )
    session_mod.require_recipe_file(ns.recipe)
    options = run_options(ns)
    # images are fetched and checked before the REPL opens; their progress goes to err
    prep = session_mod.prepare(options, on_event=StepPrinter(err, err))
    if prep.site.embedded:
        err.write(
            f"note: no site config given (--site or $PRAGMASH_SITE): using the embedded demo "
            f"site ({prep.site.uri}, state in {prep.site.state_dir})\n"
        )
    for note in session_mod.site_notes(prep):
        err.write(f"{note}\n")
    return session_mod.start(prep)


def restore_from_journal(run: session_mod.Run) -> None:
    """Show an attached run as it was left: step outcomes, and the failed step's error."""
    interp = run.interpreter
    records = {r.idx: r for r in run.journal.steps()}
    for idx, rec in records.items():
        if idx < len(interp.steps):
            interp.outcomes[idx] = rec.outcome
    stopped = records.get(interp.pc)
    if stopped is not None and stopped.outcome in ("failed", "interrupted"):
        interp.status = "failed" if stopped.outcome == "failed" else "interrupted"
        message = stopped.message or f"the step was {stopped.outcome}"
        interp.last_error = (
            StepError(message, stage=stopped.stage, output_tail=stopped.output_tail)
            if stopped.stage
            else PragmashError(message)
        )


def history_for(run: session_mod.Run) -> History:
    """Input history kept across sessions in the site's state folder."""
    state = run.prepared.site.state_dir
    state.mkdir(parents=True, exist_ok=True)
    return FileHistory(str(state / "repl_history"))


def main(args: Sequence[str], out: TextIO, err: TextIO) -> int:
    """``pragmash repl``: open a run and read commands until quit or Ctrl-D."""
    run = open_run(args, err)
    repl = Repl(run, out)
    repl.make_session(history_for(run))
    return repl.cmdloop()


def debug_run(
    run: session_mod.Run,
    out: TextIO,
    *,
    breaks: Sequence[str] = (),
    step: bool = False,
    debug_on_failure: bool = False,
) -> int:
    """The run CLI's ``--break``/``--step``/``--debug-on-failure``: run, and open the REPL there."""
    repl = Repl(run, out)
    try:
        for spec in breaks:
            repl.add_break(spec)
    except UserError:
        repl.close()
        raise
    if not step:
        reason = repl.interp.cont()
        if reason == "finished" or (reason in ("failed", "interrupted") and not debug_on_failure):
            repl._after(reason)
            repl.close()
            return repl.exit_code()
        repl._after(reason)
    repl.make_session(history_for(run))
    return repl.cmdloop(intro=False)
