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


#: Prose headings' words that name nothing by themselves.
_SMALL_WORDS = frozenset({"a", "an", "and", "the", "of"})
#: Sections other help shows: "When a step fails" is `help error`.
_NOT_TOPICS = frozenset({"When a step fails"})


def _prose_words(heading: str) -> list[str]:
    """``lines``, ``comments``, ``words`` in "Lines, comments, words": each names it."""
    if heading in _NOT_TOPICS:
        return []
    words = re.findall(r"[a-z][a-z-]*", heading.lower())
    return [w for w in words if w not in _SMALL_WORDS]


def topics() -> list[str]:
    """What ``help WORD`` lists: each statement word, and a prose section's first word.

    A prose section answers to any of its heading's words (``help comments``,
    ``help variables``); only the first is listed, so the list stays short.
    """
    words: list[str] = []
    for heading, _ in sections(language_page()):
        for word in _heading_words(heading) or _prose_words(heading)[:1]:
            if word not in words:
                words.append(word)
    return words


def statement_help(word: str) -> str | None:
    """The reference sections for ``word`` (a statement, `targets`, `variables`), or None.

    A statement's section is summed up (grammar, first paragraph, tables, first
    example); a prose section (targets, built-in variables) is shown whole, tables too.
    """
    word = word.split("/")[0].lower()
    shown = []
    for heading, body in sections(language_page()):
        if word in _heading_words(heading):
            shown.append(_summary(heading, body))
        elif not _heading_words(heading) and word in _prose_words(heading):
            shown.append(_whole(heading, body))
    return "\n\n".join(shown) if shown else None


def _paragraphs(body: str) -> list[str]:
    """The body's blocks: paragraphs, lists, tables and fenced examples, in order."""
    blocks: list[str] = []
    for block in re.split(r"(```.*?```)", body, flags=re.DOTALL):
        if block.startswith("```"):
            blocks.append(block)
        else:
            blocks += [p.strip("\n") for p in block.split("\n\n") if p.strip()]
    return blocks


def _block(block: str) -> list[str]:
    """One block as the terminal shows it, indented under its heading."""
    if block.startswith("```"):
        lines = block.strip("`").split("\n")[1:]
        return ["  example:", *(f"    {line}" for line in lines if line.strip())]
    if block.startswith("|"):
        return [f"  {line}" for line in _table(block)]
    return [f"  {line}" for line in block.splitlines()]


def _table(block: str) -> list[str]:
    """A Markdown table as aligned columns (its ``---`` row left out)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if not re.fullmatch(r"[|\s:-]+", line)
    ]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]


def _whole(heading: str, body: str) -> str:
    """A prose section, every block of it."""
    out = [heading]
    for block in _paragraphs(body):
        out += ["", *_block(block)]
    return "\n".join(out)


def _summary(heading: str, body: str) -> str:
    """The grammar line, the first paragraph, any table and the first example of one section."""
    grammar = " and ".join(re.findall(r"`([^`]+)`", heading)) or heading
    blocks = _paragraphs(body)
    prose = next((b for b in blocks if not b.startswith(("```", "|", "-", "#"))), None)
    tables = [b for b in blocks if b.startswith("|")]
    example = next((b for b in blocks if b.startswith("```prg")), None)
    out = [grammar]
    for block in [prose, *tables, example]:
        if block is not None:
            out += ["", *_block(block)]
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
