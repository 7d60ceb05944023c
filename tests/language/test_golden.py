"""Golden files for the recipe language.

``tests/recipes/good/*.prg`` must parse to the statements dumped in ``*.expected``;
``tests/recipes/bad/*.prg`` must fail with exactly the rendered error in ``*.expected``.
Files in sub-folders are helpers (included files), not cases. To rewrite the expected
files after a deliberate change, run with ``PRAGMASH_REGEN_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from pragmash.errors import RecipeError, Span
from pragmash.language import ast
from pragmash.language.parser import parse_file

RECIPES = Path(__file__).parents[1] / "recipes"
GOOD = sorted(p.name for p in (RECIPES / "good").glob("*.prg"))
BAD = sorted(p.name for p in (RECIPES / "bad").glob("*.prg"))
REGEN = os.environ.get("PRAGMASH_REGEN_GOLDEN") == "1"


def _where(span: Span) -> str:
    return f"{span.line}:{span.column}-{span.end_line}:{span.end_column}"


def _value(value: object) -> str:
    """A stable, compact spelling of one field, positions included."""
    if isinstance(value, ast.Word):
        parts: list[str] = []
        for part in value.parts:
            if isinstance(part, ast.VarRef):
                parts.append(f"${{{part.name}}}@{part.span.column}")
            else:
                parts.append(repr(part))
        quoted = "q" if value.quoted else ""
        return f"{quoted}word({' '.join(parts)})@{_where(value.span)}"
    if isinstance(value, ast.Target):
        return f"{value}@{_where(value.span)}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Span):
        return _where(value)
    return repr(value)


def dump(statements: tuple[ast.Statement, ...], indent: str = "") -> list[str]:
    """One line per statement: kind, position, text and each field."""
    lines: list[str] = []
    for statement in statements:
        fields: list[str] = []
        body: tuple[ast.Statement, ...] = ()
        for field in dataclasses.fields(statement):
            if field.name in ("span", "text"):
                continue
            value = getattr(statement, field.name)
            if field.name == "written_as" and value is None:
                continue  # written as itself, not as a driver call: the usual case
            if field.name == "body":
                body = value
                continue
            fields.append(f"{field.name}={_value(value)}")
        name = type(statement).__name__
        where = f"{statement.span.file}:{_where(statement.span)}"
        lines.append(f"{indent}{name} {where} {statement.text!r} {' '.join(fields)}".rstrip())
        lines.extend(dump(body, indent + "    "))
    return lines


def _check(expected_file: Path, actual: str) -> None:
    if REGEN:
        expected_file.write_text(actual, encoding="utf-8", newline="\n")
    assert expected_file.exists(), f"no {expected_file.name}: run with PRAGMASH_REGEN_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", GOOD)
def test_good_recipe(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RECIPES)
    program = parse_file(Path("good") / name)
    _check(
        RECIPES / "good" / name.replace(".prg", ".expected"),
        "\n".join(dump(program.statements)) + "\n",
    )


@pytest.mark.parametrize("name", BAD)
def test_bad_recipe(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RECIPES)
    with pytest.raises(RecipeError) as info:
        parse_file(Path("bad") / name)
    _check(RECIPES / "bad" / name.replace(".prg", ".expected"), info.value.render() + "\n")


def test_enough_golden_cases() -> None:
    assert len(BAD) >= 12
    assert len(GOOD) >= 5
