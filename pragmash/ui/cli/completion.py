"""Shell completion: ``pragmash completion bash|zsh`` prints a script, the script asks back.

The scripts are a few lines each: on <Tab> they run the ``pragmash`` being typed
(``.venv/bin/pragmash`` works too) as ``pragmash __complete INDEX WORDS…``
and offer what it prints, one candidate a line (files where it prints nothing). So
commands, options, VC names, node names and recipe parameters come from the same table
and parsers the commands use, and never drift from them. (argcomplete would need one
argparse tree for the whole CLI; pragmash's run form takes a recipe path where a
subcommand would go, so a small protocol of our own is simpler.)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import TextIO

from pragmash.engine.commands.known_names import held_vcs, node_names, recipe_params
from pragmash.errors import EXIT_OK, PragmashError
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.cli.globals import split_global_options
from pragmash.ui.cli.table import BY_NAME, COMMANDS
from pragmash.vc.config.site import load_site

GLOBAL_OPTIONS = ("--site", "--log-level", "--verbose", "--version", "--help")
RUN_OPTIONS = (
    "--vcname",
    "--num_compute",
    "--base_path",
    "--set",
    "--dry-run",
    "--allow-run",
    "--key",
    "--mem",
    "--break",
    "--step",
    "--debug-on-failure",
)

BASH = """\
# pragmash completion for bash (from `pragmash completion bash`)
_pragmash() {
  local IFS=$'\\n' cur="${COMP_WORDS[COMP_CWORD]}"
  local words
  words=$("${COMP_WORDS[0]}" __complete "$COMP_CWORD" "${COMP_WORDS[@]:1}" 2>/dev/null)
  if [ -n "$words" ]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _pragmash pragmash
"""

ZSH = """\
#compdef pragmash
# pragmash completion for zsh (from `pragmash completion zsh`)
_pragmash() {
  local -a words_
  words_=("${(@f)$(${words[1]} __complete $((CURRENT - 1)) "${(@)words[2,-1]}" 2>/dev/null)}")
  if [[ -n "${words_[1]}" ]]; then
    compadd -a words_
  else
    _files
  fi
}
compdef _pragmash pragmash
"""


def cmd_completion(args: list[str], out: TextIO, err: TextIO) -> int:
    """Print the completion script for a shell."""
    p = ArgumentParser(
        prog="pragmash completion",
        description="Print the shell completion script: `source <(pragmash completion bash)`, "
        "or put it where the shell reads completions (scripts/setup installs both).",
    )
    add_site_option(p, "unused; accepted like every command's")
    p.add_argument("shell", choices=["bash", "zsh"])
    ns = p.parse_args(args)
    out.write(BASH if ns.shell == "bash" else ZSH)
    return EXIT_OK


def _options_of(command: str) -> list[str]:
    """A command's options, read from its own --help (its parser is the one truth)."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit, PragmashError):
        BY_NAME[command].handler()(["--help"], io.StringIO(), io.StringIO())
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", text.getvalue())))


def candidates(index: int, words: list[str]) -> list[str]:
    """What may stand at ``words[index - 1]`` (``index`` counts from the command name)."""
    before = words[: max(index - 1, 0)]
    current = words[index - 1] if 0 < index <= len(words) else ""
    previous = before[-1] if before else ""
    if previous == "--log-level":
        return ["debug", "info", "warning", "error"]
    if previous in ("--site", "--key", "--base_path"):
        return []  # files: the shell completes them
    try:
        rest, options = split_global_options([w for w in before if w])
    except PragmashError:
        return []
    if not rest:
        if current.startswith("-"):
            return [*GLOBAL_OPTIONS, *RUN_OPTIONS]
        return [c.name for c in COMMANDS]
    command = BY_NAME.get(rest[0])
    if current.startswith("-"):
        return [*GLOBAL_OPTIONS, *(_options_of(rest[0]) if command else RUN_OPTIONS)]
    try:
        site = load_site(Path(options.site) if options.site else None, os.environ)
    except PragmashError:
        return []
    if command is None:  # the run form: RECIPE --set NAME=…
        if previous == "--set":
            return [f"{name}=" for name in recipe_params(Path(rest[0]))]
        return []
    positional = [w for w in rest[1:] if not w.startswith("-")]
    if command.takes_vc and not positional:
        return held_vcs(site)
    if command.name in ("console", "ssh") and len(positional) == 1:
        return node_names(site, positional[0])
    if command.name == "cache" and not positional:
        return ["list", "prune"]
    if command.name == "completion" and not positional:
        return ["bash", "zsh"]
    return []


def cmd_complete(args: list[str], out: TextIO, err: TextIO) -> int:
    """``pragmash __complete INDEX WORDS…``: the candidates, one a line (for the scripts)."""
    if not args or not args[0].isdigit():
        return EXIT_OK
    for word in candidates(int(args[0]), args[1:]):
        out.write(word + "\n")
    return EXIT_OK
