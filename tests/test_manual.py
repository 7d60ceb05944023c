"""The manual (MkDocs, from docs/) builds in strict mode, and its site reference is the code's.

Strict mode fails on a broken link, a missing anchor or a page left out of the nav.
CI installs the ``docs`` extra (scripts/setup), so there the build must run; a
checkout without it skips the build only outside CI.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pragmash.vc.config.hosts import HOST_KEYS
from pragmash.vc.config.site import SITE_KEYS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "site-reference.md"


def _documented_keys() -> dict[str, list[str]]:
    """Section heading (``[engine]``, ``[[hosts]]``) -> the keys its table lists, in order."""
    keys: dict[str, list[str]] = {}
    section = None
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## `(\[\[?[a-z_]+\]\]?)`", line)
        if heading:
            section = heading.group(1)
            keys[section] = []
            continue
        row = re.match(r"\| `([a-z_]+)` \|", line)
        if row and section is not None:
            keys[section].append(row.group(1))
    return keys


def test_the_site_reference_lists_every_section_and_key_the_loader_knows() -> None:
    documented = _documented_keys()
    for section, keys in SITE_KEYS.items():
        assert f"[{section}]" in documented, f"docs/site-reference.md has no [{section}]"
        assert sorted(documented[f"[{section}]"]) == sorted(keys), section
    assert sorted(documented["[[hosts]]"]) == sorted(HOST_KEYS)
    # the sections read by their own modules are described too (keys of their own)
    assert documented.keys() == {f"[{s}]" for s in SITE_KEYS} | {"[[hosts]]", "[up]", "[delivery]"}


def test_the_demo_site_points_at_the_reference() -> None:
    demo = (ROOT / "pragmash" / "demo" / "site.toml").read_text(encoding="utf-8")
    assert "docs/site-reference.md" in demo


def test_the_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.startswith("    ")]
    assert commands == [
        "scripts/setup && .venv/bin/pragmash recipes/rocks6.prg --vcname calit2",
        "scripts/test",
    ]


def test_the_manual_builds_in_strict_mode(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must build the manual: scripts/setup installs the docs extra")
        pytest.skip("mkdocs (the docs extra) is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    front = (site / "index.html").read_text(encoding="utf-8")
    assert "This manual" in front and "site-reference/" in front
    for page in ("getting-started", "site-reference", "operations", "repl", "migrating"):
        assert (site / page / "index.html").is_file(), page


def _code_lines(text: str) -> list[str]:
    """The lines of a page's code: fenced blocks and blocks indented by four spaces."""
    lines: list[str] = []
    fenced = False
    previous_blank = True
    in_indented = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            lines.append(line.strip())
        elif line.startswith("    ") and (previous_blank or in_indented):
            in_indented = True
            lines.append(line.strip())
        else:
            in_indented = False
        previous_blank = not line.strip()
    return lines


def _commands_shown() -> dict[str, str]:
    """Each ``pragmash WORD`` the manual and the README show as a command, with its page."""
    shown: dict[str, str] = {}
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    for page in pages:
        for line in _code_lines(page.read_text(encoding="utf-8")):
            match = re.match(r"(?:\$ )?(?:\.venv/bin/)?pragmash ((?:-\S+ )*)([a-z][\w./-]*)", line)
            if match and not match.group(2).startswith(("-", "RECIPE")):
                shown.setdefault(match.group(2), page.name)
    return shown


def test_every_command_the_manual_shows_exists_and_answers_help() -> None:
    from pragmash.ui.cli.main import main
    from pragmash.ui.cli.table import COMMANDS

    names = {c.name for c in COMMANDS}
    shown = _commands_shown()
    assert {"check", "scale", "repl", "cache", "site", "hosts"} <= shown.keys()
    for word, page in sorted(shown.items()):
        if word.endswith(".prg"):  # a run: the recipe is the command
            continue
        assert word in names, f"{page} shows `pragmash {word}`, which is no command"
        with pytest.raises(SystemExit) as done:
            main([word, "--help"], out=io.StringIO(), err=io.StringIO())
        assert done.value.code == 0, word
