"""Long output behind a pager, as ``git log`` does it.

At a terminal, text taller than the window goes to ``$PAGER`` when one is set (run
as a program with its arguments, never through a shell; ``PAGER=cat`` or an empty
``PAGER`` means no pager), else to a small built-in pager, so a machine without
``less`` still pages. Text that fits is printed as is (``less -F``), and the REPL
prints everything plainly when it is not at a terminal.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompt_toolkit.application import Application
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output


class Pager:
    """A full-screen view of some lines: space/b page, j/k line, g/G ends, q quits."""

    def __init__(self, text: str, input: Input, output: Output) -> None:
        self.lines = text.rstrip("\n").split("\n")
        self.top = 0
        self.input = input
        self.output = output
        self.app = self._application()

    def height(self) -> int:
        try:
            return max(1, self.output.get_size().rows - 1)
        except Exception:  # an output that cannot say: a usual height
            return 23

    def scroll(self, by: int) -> None:
        self.top = max(0, min(self.top + by, len(self.lines) - self.height()))

    def _body(self) -> StyleAndTextTuples:
        shown = self.lines[self.top : self.top + self.height()]
        return [("", "\n".join(shown))]

    def _status(self) -> StyleAndTextTuples:
        last = min(len(self.lines), self.top + self.height())
        end = " (END)" if last >= len(self.lines) else ""
        return [
            (
                "reverse",
                f" lines {self.top + 1}-{last} of {len(self.lines)}{end}  "
                "space/b: page  j/k: line  g/G: top/end  q: quit ",
            )
        ]

    def _application(self) -> Application[None]:
        from prompt_toolkit.application import Application
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.layout import FormattedTextControl, HSplit, Layout, Window

        keys = KeyBindings()

        def bind(*names: str) -> Callable[[Callable[[KeyPressEvent], None]], object]:
            def add(handler: Callable[[KeyPressEvent], None]) -> object:
                for name in names:
                    keys.add(name)(handler)
                return handler

            return add

        @bind("q", "Q", "escape", "c-c")
        def _quit(event: KeyPressEvent) -> None:
            event.app.exit()

        @bind("space", "f", "pagedown", "c-f")
        def _page_down(event: KeyPressEvent) -> None:
            self.scroll(self.height())

        @bind("b", "pageup", "c-b")
        def _page_up(event: KeyPressEvent) -> None:
            self.scroll(-self.height())

        @bind("j", "down", "enter", "c-m")
        def _line_down(event: KeyPressEvent) -> None:
            self.scroll(1)

        @bind("k", "up")
        def _line_up(event: KeyPressEvent) -> None:
            self.scroll(-1)

        @bind("g", "home")
        def _top(event: KeyPressEvent) -> None:
            self.top = 0

        @bind("G", "end")
        def _end(event: KeyPressEvent) -> None:
            self.scroll(len(self.lines))

        layout = Layout(
            HSplit(
                [
                    Window(FormattedTextControl(self._body), wrap_lines=False),
                    Window(FormattedTextControl(self._status), height=1),
                ]
            )
        )
        return Application(
            layout=layout,
            key_bindings=keys,
            input=self.input,
            output=self.output,
            full_screen=True,
        )

    def run(self) -> None:
        self.app.run(handle_sigint=False)


def page(
    text: str,
    input: Input,
    output: Output,
    *,
    fallback: Callable[[str], None],
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Show ``text``: printed through ``fallback`` when it fits or no pager is wanted."""
    lines = text.rstrip("\n").split("\n")
    try:
        rows = output.get_size().rows
    except Exception:  # an output that cannot say: page anyway
        rows = 24
    wanted = environ.get("PAGER")
    if len(lines) < rows or (wanted is not None and wanted.strip() in ("", "cat")):
        fallback(text.rstrip("\n"))
        return
    if wanted:
        try:
            subprocess.run(shlex.split(wanted), input=text.encode(), check=False)
            return
        except (OSError, ValueError):
            pass  # a PAGER that cannot be started: our own pager instead
    Pager(text, input, output).run()
