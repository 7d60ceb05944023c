"""A quoted command (``exec frontend "rocks sync config"``) split into its argument words.

``exec`` runs a command inside a guest as an argument list (the QEMU guest agent's
``guest-exec`` takes a path and its arguments; over ssh each word is quoted for the
remote shell), so nothing of a recipe ever reaches a shell as code. The recipe writes
the command as one double-quoted string, which this module splits once, as the recipe
is parsed: at blanks, with ``'…'`` (or ``\\"…\\"``) grouping words that hold blanks, as
a shell would but with nothing else of a shell (no ``$(…)``, globs, ``;`` or ``|``:
they are plain text). A variable is part of the word it is written in and its value
is never split, so ``"touch /root/$name"`` is two words whatever ``$name`` holds.
"""

from __future__ import annotations

from pragmash.language.ast import VarRef, Word

_BLANKS = " \t"
_QUOTES = "'\""


def split_command(command: Word) -> tuple[Word, ...]:
    """The words of ``command``; a ValueError (in recipe words) when a quote is left open."""
    words: list[Word] = []
    parts: list[str | VarRef] = []
    text: list[str] = []
    started = False  # a word is under way (even an empty one: '')
    quote: str | None = None

    def end_text() -> None:
        if text:
            parts.append("".join(text))
            text.clear()

    def end_word() -> None:
        nonlocal parts, started
        end_text()
        words.append(Word(tuple(parts) or ("",), command.span, quoted=True))
        parts = []
        started = False

    for part in command.parts:
        if isinstance(part, VarRef):
            end_text()
            parts.append(part)
            started = True
            continue
        for char in part:
            if quote is not None:
                if char == quote:
                    quote = None
                else:
                    text.append(char)
            elif char in _QUOTES:
                quote = char
                started = True
            elif char in _BLANKS:
                if started:
                    end_word()
            else:
                text.append(char)
                started = True
    if quote is not None:
        shown = '\\"' if quote == '"' else "'"
        raise ValueError(f"the command's {shown} is never closed: close it, or quote it")
    if started:
        end_word()
    return tuple(words)
