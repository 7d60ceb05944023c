"""REPL breakpoint commands: break, tbreak, clear (through the interpreter's breakpoint API)."""

from __future__ import annotations

import re
from pathlib import Path

from pragmash.engine.run.interpreter import Interpreter
from pragmash.errors import UserError
from pragmash.language.ast import STATEMENT_KINDS
from pragmash.ui.render import location
from pragmash.ui.repl.base import ReplBase

FILE_LINE = re.compile(r"^(?:(?P<file>.+):)?(?P<line>\d+)$")


def find_file(interp: Interpreter, given: str | None) -> str:
    """The recipe (or included) file a user means by ``given``: a path, a name, a tail."""
    files = list(dict.fromkeys(s.statement.span.file for s in interp.steps))
    if given is None:
        return interp.program.file
    for file in files:
        if file == given or Path(file).name == given or file.endswith("/" + given):
            return file
    raise UserError(f"{given} is not part of this recipe; its files: {', '.join(files)}")


def line_name(file: str, line: int) -> str:
    return location(file, line, 1).rsplit(":", 1)[0]


class BreakCommands(ReplBase):
    """Breakpoints by line (``B`` in ``list``), temporary (``T``) and by kind (``b``)."""

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

    def do_tbreak(self, arg: str) -> None:
        """tbreak LINE | FILE:LINE: a temporary breakpoint, cleared when first hit."""
        if not arg or arg in STATEMENT_KINDS:
            self.error("tbreak: expected a line number or FILE:LINE")
            return
        try:
            what = self.add_break(arg, temporary=True)
        except UserError as err:
            self.error(err.message)
            return
        self.message(f"temporary breakpoint set: {what}")

    def add_break(self, arg: str, *, temporary: bool = False) -> str:
        """Set a breakpoint from ``LINE``, ``FILE:LINE`` or a statement kind; UserError if none fits."""
        if arg in STATEMENT_KINDS:
            self.interp.add_break_kind(arg)
            return f"every '{arg}'"
        match = FILE_LINE.match(arg)
        if match is None:
            raise UserError(
                f"break {arg!r}: expected a line number, FILE:LINE or a statement kind "
                f"({', '.join(STATEMENT_KINDS)})"
            )
        line = int(match.group("line"))
        try:
            file = find_file(self.interp, match.group("file"))
        except UserError as err:
            raise UserError(f"break: {err.message}") from None
        lines = sorted(
            {s.statement.span.line for s in self.interp.steps if s.statement.span.file == file}
        )
        if line not in lines:
            raise UserError(
                f"break {arg}: no statement starts at line {line} of {file}; "
                f"statements start at lines {', '.join(map(str, lines)) or '(none)'}"
            )
        self.interp.add_breakpoint(line, file, temporary=temporary)
        return line_name(file, line)

    def _list_breakpoints(self) -> None:
        if not self.interp.breakpoints and not self.interp.break_kinds:
            self.message("no breakpoints")
            return
        for file, line in sorted(self.interp.breakpoints):
            temporary = " (temporary)" if (file, line) in self.interp.temporary else ""
            self.message(f"  {line_name(file, line)}{temporary}")
        for kind in sorted(self.interp.break_kinds):
            self.message(f"  every '{kind}'")

    def do_clear(self, arg: str) -> None:
        """clear [LINE | FILE:LINE | KIND]: remove one breakpoint, or all of them."""
        if not arg:
            self.interp.clear_breakpoints()
            self.message("all breakpoints cleared")
            return
        if self.interp.remove_break_kind(arg):
            self.message(f"cleared: every '{arg}'")
            return
        match = FILE_LINE.match(arg)
        if match is not None:
            try:
                file = find_file(self.interp, match.group("file"))
            except UserError as err:
                self.error(f"clear: {err.message}")
                return
            if self.interp.remove_breakpoint(int(match.group("line")), file):
                self.message(f"cleared: {arg}")
                return
        self.error(f"clear {arg!r}: no such breakpoint (`break` lists them)")
