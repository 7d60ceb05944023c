"""The REPL: step through a run and debug a stuck stage.

Built like CPython's ``pdb`` over ``bdb``: the interpreter does the stepping; the
REPL only reads a line, turns it into one call of the run's public API
(:class:`~pragmash.engine.run.debug.DebugRun` and the interpreter's stepping methods)
and shows what happened. Each ``do_*`` method is a command and its docstring is its
help text; the commands live in one mixin per concern (stepping, breakpoints,
looking) and this module puts them together with the loop, help and leaving.
Anything that is not a command is parsed and checked as recipe statements and run
at once against the same run.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import io
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from prompt_toolkit.history import History
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output as PtOutput

from pragmash import outcomes
from pragmash.engine.run import session as session_mod
from pragmash.engine.run.interpreter import StopReason
from pragmash.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED, PragmashError, UserError
from pragmash.language.program import FlatStep
from pragmash.language.vocabulary import STATEMENT_KEYWORDS, did_you_mean
from pragmash.ui.render import ellipsize, plural, render_error
from pragmash.ui.repl.breaks import BreakCommands
from pragmash.ui.repl.completion import ReplCompleter
from pragmash.ui.repl.consoling import ConsoleCommands
from pragmash.ui.repl.helptext import error_help, statement_help, topics
from pragmash.ui.repl.launch import open_run
from pragmash.ui.repl.looking import LookingCommands
from pragmash.ui.repl.session import LineReader, Reader, build_session
from pragmash.ui.repl.stepping import SteppingCommands

_ALIASES = {"s": "step", "n": "next", "c": "continue", "cont": "continue", "b": "break",
            "u": "until", "unt": "until", "l": "list", "w": "where", "q": "quit",
            "exit": "quit", "h": "help", "?": "help"}  # fmt: skip


class Repl(SteppingCommands, BreakCommands, LookingCommands, ConsoleCommands):
    """Debugger commands over one run; holds no run logic of its own."""

    reader: Reader | None = None
    last_typed_error: PragmashError | None = None  # `help error` when no step failed

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
    ) -> Reader:
        """This REPL's prompt session: its completer knows the run's nodes and variables.

        The session's input and output are also where the live view and the pager draw.
        """
        completer = ReplCompleter(
            self.command_names(aliases=False),
            nodes=lambda: [n.name for n in self.run.nodes()],
            variables=lambda: list(self.run.variables()),
            computes=lambda: sum(1 for n in self.run.nodes() if n.role == "compute"),
            help_topics=topics,
        )
        session = build_session(
            history,
            input,
            output,
            completer=completer,
            commands=self.command_names(),
            toolbar=self.toolbar,
        )
        self.terminal = (session.input, session.output)
        self.reader = session
        return session

    def read_plainly(self, stream: TextIO) -> Reader:
        """Read commands from a pipe or file: no terminal, so no toolbar, view or pager."""
        self.terminal = None
        self.reader = LineReader(stream, self.out)
        return self.reader

    def toolbar(self) -> StyleAndTextTuples:
        """The bottom line: the VC, where the run is and how its last step went, in the
        colour of the run's state, cut with an ellipsis at the window's edge."""
        from prompt_toolkit.application import get_app_or_none

        total = len(self.interp.steps)
        cur = self.interp.current
        if cur is None:
            where = f"all {plural(total, 'step')} run"
        else:
            where = f"step {cur.index + 1}/{total}: {cur.statement.text}"
        status: str = self.interp.status
        if status in (outcomes.FAILED, outcomes.INTERRUPTED) and self.interp.last_error is not None:
            status += f": {self.interp.last_error.message.splitlines()[0]}"
        text = f" {self.run.vcname} · {where} · {status}"
        app = get_app_or_none()
        width = app.output.get_size().columns if app is not None else 80
        return [(f"class:toolbar.{self.interp.status}", ellipsize(text, width))]

    def read_and_run(self) -> bool:
        """Prompt once and run what was typed; False when the REPL should end."""
        assert self.reader is not None, "make_session() or read_plainly() first"
        try:
            line = self.reader.prompt()
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
                f"pragmash REPL on {self.run.vcname} ({self.run.uri}), "
                f"run {self.run.run_id}: {plural(len(self.interp.steps), 'step')}. "
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
            command = self._meant_command(word)
            if command is not None:
                self.error(
                    f"unknown command {word!r}; did you mean {command!r}? "
                    "(`help` lists the commands; recipe statements run as typed)"
                )
                return False
            self.run_typed(line)
        except KeyboardInterrupt:
            self.error("interrupted")
        except PragmashError as err:
            self.error(render_error(err))
        return False

    def _meant_command(self, word: str) -> str | None:
        """The command a mistyped first word is closest to, when it is no statement.

        ``shwo nodes`` means ``show``; ``boto frontend`` is left to the parser, which
        says "did you mean 'boot'" in its own words.
        """
        if word in STATEMENT_KEYWORDS or word.startswith(("ve_driver/", "vc_driver/", "$")):
            return None
        commands = [*self.command_names(aliases=False), *_ALIASES]
        close = difflib.get_close_matches(word, [*commands, *STATEMENT_KEYWORDS], n=1)
        if not close or close[0] not in commands:
            return None
        return _ALIASES.get(close[0], close[0])

    def run_typed(self, text: str) -> None:
        """Recipe statements typed at the prompt, run against this run one by one.

        A mistake found before running (syntax, an unknown variable, a node the VC does
        not have, a missing include, a refused `run`) is one located error and nothing
        is journaled; a statement that ran is journaled, and its failure shows as FAIL.
        """
        try:
            steps = self.run.parse_typed(text)
        except PragmashError as err:
            self.last_typed_error = err
            self.error(render_error(err) + "\n(nothing ran; `help error` says more)")
            return
        for step in steps:
            try:
                self.running(functools.partial(self._run_one_typed, step))
            except PragmashError as err:
                self.last_typed_error = err
                self.error(render_error(err))
                return

    def _run_one_typed(self, step: FlatStep) -> StopReason:
        self.run.run_typed(step)
        return "step"

    # -- help and leaving -------------------------------------------------------------

    def do_help(self, arg: str) -> None:
        """help [COMMAND | STATEMENT | error] (h, ?): commands; a statement's grammar and
        example (`help boot`); `help error`: what the last error means and what to try."""
        if arg == "error":
            err = self.interp.last_error or self.last_typed_error
            if err is None:
                self.message("no error yet: `help error` explains the last one when there is")
                return
            self.message(error_help(err))
            return
        if arg:
            name = _ALIASES.get(arg, arg)
            handler = getattr(self, f"do_{name}", None)
            if handler is not None and name.isidentifier():
                self.message(inspect.cleandoc(handler.__doc__ or name))
                return
            text = statement_help(arg)
            if text is None:
                known = [*self.command_names(), *topics(), "error"]
                self.error(
                    f"help {arg!r}: no such command or statement; `help` lists the commands, "
                    f"and `help WORD` knows {', '.join(topics())}" + did_you_mean(arg, known)
                )
                return
            self.page(text)
            return
        self.message(
            "commands (anything else typed runs as recipe statements, e.g. `boot compute[1]`):"
        )
        for name in self.command_names(aliases=False):
            self.message(_entry(getattr(self, f"do_{name}").__doc__ or name))
        self.message(
            textwrap.fill(
                f"`help WORD` for a statement or a part of the language ({', '.join(topics())}); "
                "`help error` for the last error",
                width=_HELP_WIDTH,
                subsequent_indent="  ",
            )
        )

    def do_quit(self, arg: str) -> bool:
        """quit (q, exit, Ctrl-D): leave the REPL; says what is still running. Nothing is destroyed."""
        running = self.run.running_domains()
        vc = self.run.vcname
        if running and not self.run.domains_outlive_process:
            self.message(
                f"still running: {', '.join(running)}; they end with this process "
                f"(the demo engine {self.run.uri} lives inside it), nothing to shut down"
            )
        elif running:
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
            self.run.close(outcomes.FINISHED)
        elif status in (outcomes.FAILED, outcomes.INTERRUPTED):
            err = self.interp.last_error
            self.run.close(status, err.message if err else None)
        else:
            cur = self.interp.current
            where = f" at step {cur.index + 1} ({cur.statement.text})" if cur else ""
            self.run.close(outcomes.INTERRUPTED, f"left the REPL{where}")

    def exit_code(self) -> int:
        """0 when the recipe finished or was left paused; else the failed step's status."""
        if self.interp.status == outcomes.FAILED:
            return EXIT_STEP_FAILED
        if self.interp.status == outcomes.INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_OK


#: Where ``help`` wraps its list: a terminal's usual width.
_HELP_WIDTH = 88


def _entry(doc: str) -> str:
    """A command's line in ``help``: its docstring's first paragraph, whole, wrapped.

    The first paragraph is the usage and what it does; cutting it at the docstring's
    first line break left sentences half-said.
    """
    first = inspect.cleandoc(doc).split("\n\n")[0]
    return textwrap.fill(
        " ".join(first.split()), width=_HELP_WIDTH, initial_indent="  ", subsequent_indent="      "
    )


# -- entry points ---------------------------------------------------------------------


def history_for(repl: Repl) -> History:
    """Input history kept across sessions in the site's state folder."""
    from prompt_toolkit.history import FileHistory

    state = repl.run.state_dir
    state.mkdir(parents=True, exist_ok=True)
    return FileHistory(str(state / "repl_history"))


def _reader_for(repl: Repl, stdin: TextIO | None) -> None:
    """A prompt_toolkit session at a terminal; plain line reading from a pipe or file."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin.isatty():
        repl.make_session(history_for(repl))
    else:
        if isinstance(stdin, io.TextIOWrapper):  # one bad byte must not end all input
            stdin.reconfigure(errors="replace")
        repl.read_plainly(stdin)


def main(args: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO | None = None) -> int:
    """``pragmash repl``: open a run and read commands until quit or Ctrl-D."""
    repl = Repl(open_run(args, err), out)
    _reader_for(repl, stdin)
    return repl.cmdloop()


def debug_run(
    run: session_mod.Run,
    out: TextIO,
    *,
    breaks: Sequence[str] = (),
    step: bool = False,
    debug_on_failure: bool = False,
    stdin: TextIO | None = None,
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
        repl.after(reason)
        if reason == outcomes.FINISHED or (
            reason in (outcomes.FAILED, outcomes.INTERRUPTED) and not debug_on_failure
        ):
            repl.close()
            return repl.exit_code()
    _reader_for(repl, stdin)
    return repl.cmdloop(intro=False)
