"""Control characters from users never reach the terminal raw.

A recipe is plain text: ESC, NUL, an OSC title sequence or a lone carriage return
is refused where it is, with the line shown escaped. A ``--set`` value may not hold
them either; and whatever still carries one (a path typed on the command line, a
message journaled by an older pragmash) is shown escaped by the front ends.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import libvirt
import pytest
from support.runenv import RunEnv

from pragmash.errors import RecipeError
from pragmash.language.parser import parse_recipe
from pragmash.ui.cli import main as cli
from pragmash.ui.render import PrintableStream
from pragmash.vc.repository.vcdb import load_repository

ESC = "\x1b"


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(list(args), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160]


@pytest.mark.parametrize(
    ("text", "code", "col"),
    [
        (f'echo "{ESC}[2J cleared"\n', "U+001B", 7),
        ("echo a\x00b\n", "U+0000", 7),
        (f"echo {ESC}]0;pwned\x07\n", "U+001B", 6),
        ("echo over\rwritten\n", "U+000D", 10),
        ("echo c1\x9bx\n", "U+009B", 8),
    ],
)
def test_recipe_with_a_control_character_is_refused_where_it_is(
    text: str, code: str, col: int
) -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe("allocate 1\n" + text, "r.prg")
    assert err.value.span.line == 2 and err.value.span.column == col
    assert f"control character {code} in the recipe" in err.value.message
    rendered = err.value.render()
    assert _raw_controls(rendered) == []
    assert "\\x" in rendered.splitlines()[1]  # the line is shown, escaped
    assert rendered.splitlines()[2].index("^") == 4 + len(
        rendered.splitlines()[1][4:].split("\\x")[0]
    )


def test_crlf_line_ends_and_tabs_are_plain_text() -> None:
    program = parse_recipe("allocate 1\r\n\techo hello\r\n", "r.prg")
    assert len(program.statements) == 2


def test_check_command_shows_the_refusal_escaped(tmp_path: Path) -> None:
    recipe = tmp_path / "evil.prg"
    recipe.write_text(f"allocate 1\necho {ESC}]0;owned{ESC}\\\\ done\n", encoding="utf-8")
    rc, out, err = _cli("check", str(recipe))
    assert rc == 2
    assert err.splitlines()[0] == (
        f"error: {recipe}:2:6: control character U+001B in the recipe: a recipe is plain text; "
        "remove it"
    )
    assert ESC not in out + err and "\\x1b]0;owned" in err


def test_set_value_with_a_control_character_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "r.prg"
    recipe.write_text("param greeting = hi\necho $greeting\n", encoding="utf-8")
    rc, _, err = _cli(str(recipe), "--vcname", "calit2", "--set", f"greeting={ESC}[31mred")
    assert rc == 2
    assert err.splitlines()[0] == (
        "error: --set greeting: the value holds a control character ('\\x1b[31mred'); "
        "values are plain text"
    )
    assert ESC not in err


def test_any_text_the_cli_prints_is_escaped(tmp_path: Path) -> None:
    """A path typed on the command line comes back in an error: escaped, not obeyed."""
    recipe = tmp_path / "r.prg"
    recipe.write_text("allocate 1\n", encoding="utf-8")
    rc, _, err = _cli(
        str(recipe), "--vcname", "calit2", "--base_path", str(tmp_path / f"x{ESC}]0;t\x07")
    )
    assert rc == 2
    assert _raw_controls(err) == [] and "x\\x1b]0;t\\x07" in err


def test_printable_stream_keeps_lines_and_tabs_and_escapes_the_rest() -> None:
    raw = io.StringIO()
    stream = PrintableStream(raw)
    stream.write(f"a\tb\n{ESC}[2Jc\r\n")
    assert raw.getvalue() == "a\tb\n\\x1b[2Jc\\x0d\n"
    assert stream.unescaped is raw


@pytest.mark.libvirt
def test_status_shows_a_journaled_message_escaped(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """A journal written by an older pragmash may hold raw control characters."""
    recipe = env.recipe("allocate 1\necho hi\n")
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    with sqlite3.connect(env.site().ledger_path) as conn:
        conn.execute("UPDATE steps SET text=?, message=? WHERE idx=1", (f"echo {ESC}[2J", "\x07"))
    status = env.cli("status", "calit2")
    assert status.rc == 0
    assert _raw_controls(status.out) == [] and "echo \\x1b[2J" in status.out


def test_byte_order_mark_is_accepted_in_vcdb_as_in_recipes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "vc-in.xml").write_text("<vc/>\n", encoding="utf-8")
    (repo / "vcdb.txt").write_text("\ufeffcalit2,vc-in.xml\n", encoding="utf-8")
    assert sorted(load_repository(repo).entries) == ["calit2"]
    assert parse_recipe("\ufeffallocate 1\n", "r.prg").statements
