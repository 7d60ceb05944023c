"""``man pragmash``: the manual page, made from the same table and help text as ``--help``.

``python -m pragmash.ui.cli.manpage`` prints it; docs/pragmash.1 is its output, shipped
in the wheel and installed by scripts/setup, and a test keeps the two identical.
"""

from __future__ import annotations

import re
import sys

from pragmash import __version__
from pragmash.ui.cli.main import EXIT_CODES, MAIN_HELP
from pragmash.ui.cli.table import COMMANDS


def _roff(text: str) -> str:
    """Plain text made safe for roff: backslashes doubled, leading dots and quotes escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def _section(title: str) -> str:
    """The block of MAIN_HELP under ``title:`` (up to the next blank line)."""
    match = re.search(rf"^{title}:\n(.*?)(?:\n\n|\Z)", MAIN_HELP, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def _options(block: str) -> str:
    """An option list of --help (``  --x ARG   words``, continued lines) as roff .TP items."""
    items: list[str] = []
    for line in block.splitlines():
        match = re.match(r"  (\S.*?)(?:\s{2,}(.*))?$", line)
        if match and not line.startswith("   "):
            items.append(f".TP\n\\fB{_roff(match.group(1))}\\fR\n{_roff(match.group(2) or '')}")
        elif items:
            items[-1] += "\n" + _roff(line.strip())
    return "\n".join(items)


def man_page() -> str:
    """The whole page, in roff (man(7) macros)."""
    parts = [
        f'.TH PRAGMASH 1 "" "pragmash {__version__}" "pragmash manual"',
        ".SH NAME",
        "pragmash \\- boot PRAGMA virtual clusters by running recipes",
        ".SH SYNOPSIS",
        ".nf",
        "\\fBpragmash\\fR \\fIRECIPE\\fR \\-\\-vcname \\fINAME\\fR [run options]",
        *(f"\\fBpragmash {c.name}\\fR {_roff(c.synopsis)}" for c in COMMANDS),
        ".fi",
        ".SH DESCRIPTION",
        "pragmash boots a PRAGMA virtual cluster (a frontend and N computes) on a site's",
        "libvirt hosts by running a recipe, a short script such as",
        ".PP",
        ".RS",
        "allocate $num_compute; fix all via virt\\-v2v; boot frontend; wait 300; boot compute",
        ".RE",
        ".PP",
        "Each step is journaled; a failed step keeps everything and \\fBpragmash resume\\fR",
        "continues. The recipe language, drivers and site configuration are described in",
        "the manual in docs/ (index.md lists its pages: getting\\-started.md, language.md,",
        "site\\-reference.md, operations.md, repl.md, migrating.md …), built into a browsable",
        "site by \\fBmkdocs build\\fR from the source tree.",
        ".SH RUN OPTIONS",
        _options(_section("run options")),
        ".SH OPTIONS OF EVERY COMMAND",
        _options(_section("options of every command")),
        ".SH COMMANDS",
    ]
    for command in COMMANDS:
        parts += [
            ".TP",
            f"\\fB{command.name}\\fR {_roff(command.synopsis)}",
            _roff(" ".join(command.summary.split())),
        ]
    parts += [
        ".SH EXIT STATUS",
        ".nf",
        _roff(EXIT_CODES.split("\n", 1)[1].rstrip()),
        ".fi",
        ".SH FILES",
        ".TP",
        "\\fI/etc/pragmash/site.toml\\fR, \\fI~/.config/pragmash/site.toml\\fR",
        "the site config when neither \\-\\-site nor $PRAGMASH_SITE names one",
        ".SH SEE ALSO",
        "virsh(1), virt\\-v2v(1), guestfish(1)",
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(man_page())
