"""REPL commands that move the run: step, next, continue, until, retry, skip, reload, display.

Each only sets the interpreter going through its public API (as ``pdb``'s commands
set a mode and resume ``bdb``) and then shows where it stopped.
"""

from __future__ import annotations

from pragmash import outcomes
from pragmash.errors import UserError
from pragmash.ui.repl.base import ReplBase
from pragmash.ui.repl.breaks import find_file


class SteppingCommands(ReplBase):
    """Commands that run steps."""

    def do_step(self, arg: str) -> None:
        """step (s): run exactly one step, then stop."""
        if self._at_end():
            return
        self.after(self.running(self.interp.step))

    def do_next(self, arg: str) -> None:
        """next (n): run one step; an include runs as a whole."""
        if self._at_end():
            return
        self.after(self.running(self.interp.next))

    def do_continue(self, arg: str) -> None:
        """continue (c): run until a breakpoint, a failure or the end of the recipe."""
        if self._at_end():
            return
        self.after(self.running(self.interp.cont))

    def do_until(self, arg: str) -> None:
        """until [LINE] (u): run until a statement at LINE or later (as pdb's until).

        With no LINE: until a line past the current one, so a loop of included steps
        is left behind. Breakpoints and failures still stop it.
        """
        if self._at_end():
            return
        cur = self.interp.current
        assert cur is not None
        file = cur.statement.span.file
        if arg:
            spec, _, line_text = arg.rpartition(":")
            if not (line_text.isascii() and line_text.isdigit()):  # '²' is no line
                self.error(f"until {arg!r}: expected a line number or FILE:LINE")
                return
            try:
                file = find_file(self.interp, spec or None) if spec else file
            except UserError as err:
                self.error(err.message)
                return
            line = int(line_text)
        else:
            line = cur.statement.span.line + 1
        self.after(self.running(lambda: self.interp.until(line, file)))

    def do_retry(self, arg: str) -> None:
        """retry: run the failed (or interrupted) step again, then stop.

        Use it after fixing the cause: nothing is allocated or staged again, every
        stage is idempotent (booting a running domain succeeds).
        """
        if self.interp.status not in (outcomes.FAILED, outcomes.INTERRUPTED):
            self.error(
                f"nothing to retry: the current step is {self.interp.status}, not failed "
                "(use `step` to run it)"
            )
            return
        self.after(self.running(self.interp.retry))

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
        changed, running = self.run.reload()
        path = self.run.vc_in_shown
        if not changed:
            self.message(f"reloaded {path}: no template changed")
            return
        self.message(f"reloaded {path}: {'; '.join(changed)}")
        if running:  # a shut-off domain is redefined from the template by `boot`
            self.message(
                f"  still running with the old template: {', '.join(running)} "
                "(`ve_driver/destroy` them, then `boot`, to use the new one)"
            )

    def do_display(self, arg: str) -> None:
        """display [WORDS]: show WORDS (e.g. `$num_compute` or `${vcname}-x`) at every stop.

        With no WORDS, show them all now. `undisplay [N]` removes one, or all.
        """
        if not arg:
            if not self.displays:
                self.message("nothing is displayed; `display $NAME` adds one")
            self.show_displays()
            return
        self.displays.append(arg)
        self.show_displays()

    def do_undisplay(self, arg: str) -> None:
        """undisplay [N]: stop displaying expression N (as `display` numbers them), or all."""
        if not arg:
            self.displays.clear()
            self.message("no expression is displayed now")
            return
        if not (arg.isascii() and arg.isdigit()) or not 1 <= int(arg) <= len(self.displays):
            self.error(f"undisplay {arg!r}: expected a number from 1 to {len(self.displays)}")
            return
        removed = self.displays.pop(int(arg) - 1)
        self.message(f"no longer displayed: {removed}")

    def _at_end(self) -> bool:
        if self.interp.finished:
            self.error("the recipe has run to its end; type statements to run more, or `quit`")
            return True
        return False
