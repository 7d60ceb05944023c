"""Help for the language and for errors, read from docs/language.md (one source, no copy).

``help boot`` shows each ``### `boot …``` section of the language reference: the
grammar line, what it does and its example. ``help error`` finds the entry for the
last error's stage under "When a step fails". The page ships inside the package
(``pragmash.docs``), so the installed REPL reads the same text the repository has.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from pragmash.errors import Interrupted, PragmashError, RecipeError, StepError

_SECTION = re.compile(r"^(#{2,3}) (.+)$", re.MULTILINE)
_ENTRY = re.compile(r"^- `([^`]+)`(?:, `([^`]+)`)*: ", re.MULTILINE)


@cache
def language_page() -> str:
    return resources.files("pragmash.docs").joinpath("language.md").read_text("utf-8")


def sections(text: str) -> list[tuple[str, str]]:
    """The page's ``##``/``###`` sections as (heading, body) pairs, in order."""
    found = list(_SECTION.finditer(text))
    out = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        out.append((match.group(2).strip(), text[match.end() : end].strip("\n")))
    return out


def _heading_words(heading: str) -> list[str]:
    """The statement words a heading is about: ``wait`` in `` `wait DURATION` ``."""
    return [code.split()[0].split("/")[0] for code in re.findall(r"`([^`]+)`", heading)]


def topics() -> list[str]:
    """Every word ``help WORD`` knows from the page (statements, targets, variables)."""
    words: list[str] = []
    for heading, _ in sections(language_page()):
        for word in _heading_words(heading) or [heading.split()[0].lower()]:
            if word not in words:
                words.append(word)
    return words


def statement_help(word: str) -> str | None:
    """The reference sections for ``word`` (a statement, `targets`, `variables`), or None."""
    word = word.split("/")[0]
    shown = []
    for heading, body in sections(language_page()):
        heading_words = _heading_words(heading)
        title_word = heading.split()[0].lower() if not heading_words else ""
        if word not in heading_words and not (title_word and word == title_word):
            continue
        shown.append(_summary(heading, body))
    return "\n\n".join(shown) if shown else None


def _summary(heading: str, body: str) -> str:
    """The grammar line, the first paragraph and the first example of one section."""
    grammar = " and ".join(re.findall(r"`([^`]+)`", heading)) or heading
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    prose = next((p for p in paragraphs if not p.startswith(("```", "|", "-", "#"))), "")
    example = re.search(r"```prg\n(.*?)```", body, re.DOTALL)
    out = [grammar, "", "  " + "\n  ".join(prose.splitlines())] if prose else [grammar]
    if example:
        out += [
            "",
            "  example:",
            *(f"    {line}" for line in example.group(1).rstrip().splitlines()),
        ]
    return "\n".join(out)


def error_topic(error: PragmashError) -> str:
    """The key of "When a step fails" that explains ``error``."""
    if isinstance(error, Interrupted):
        return "interrupted"
    if isinstance(error, RecipeError):
        return "recipe"
    if isinstance(error, StepError):
        return error.stage
    return "recipe"


def error_help(error: PragmashError) -> str:
    """What the error means and what to try, from the page's "When a step fails"."""
    topic = error_topic(error)
    body = next((b for h, b in sections(language_page()) if h == "When a step fails"), "")
    entries = list(_ENTRY.finditer(body))
    for i, match in enumerate(entries):
        keys = re.findall(r"`([^`]+)`", body[match.start() : match.end()])
        if topic not in keys:
            continue
        end = entries[i + 1].start() if i + 1 < len(entries) else len(body)
        text = " ".join(line.strip() for line in body[match.end() : end].splitlines())
        return f"{topic}: {text}"
    return (
        f"{topic}: no entry in docs/language.md explains this stage; the error's own words "
        "and the tool output in it are the best lead (`where` shows them again)"
    )
