"""Key bindings of the REPL, one docstring per binding.

The function keys follow the debuggers people already know (F5 continue, F10 next,
F11 step): on an empty line they submit the command as if it had been typed, so
the REPL sees one kind of input and the bindings hold no run logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent


def build_key_bindings() -> KeyBindings:
    """The REPL's bindings, added on top of prompt_toolkit's Emacs defaults."""
    from prompt_toolkit.filters import Condition
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @Condition
    def line_empty() -> bool:
        from prompt_toolkit.application.current import get_app

        return not get_app().current_buffer.text.strip()

    def submit(event: KeyPressEvent, command: str) -> None:
        buffer = event.app.current_buffer
        buffer.text = command
        buffer.validate_and_handle()

    @kb.add("f5", filter=line_empty)
    def _continue(event: KeyPressEvent) -> None:
        """F5: continue to the next breakpoint, failure or the end."""
        submit(event, "continue")

    @kb.add("f10", filter=line_empty)
    def _next(event: KeyPressEvent) -> None:
        """F10: run the next step, over an include as a whole."""
        submit(event, "next")

    @kb.add("f11", filter=line_empty)
    def _step(event: KeyPressEvent) -> None:
        """F11: run exactly one step."""
        submit(event, "step")

    @kb.add("escape", "l", filter=line_empty)
    def _list(event: KeyPressEvent) -> None:
        """Alt-L: list the recipe around the current step (on a non-empty line: Emacs' own)."""
        submit(event, "list")

    return kb
