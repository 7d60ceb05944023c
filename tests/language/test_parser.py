"""The parser's API: statements, spans, includes and errors (golden files cover the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pragmash.errors import RecipeError, Span, UserError
from pragmash.language import ast
from pragmash.language.parser import (
    _lark,
    parse_file,
    parse_recipe,
    parse_statement,
)
from pragmash.language.vocabulary import STATEMENT_WORDS

CARD = "allocate 4; fix all via virt-v2v; boot frontend; wait 300; boot compute"


def _text_at(source: str, span: Span) -> str:
    """The source text a single-line span covers."""
    assert span.line == span.end_line
    line = source.split("\n")[span.line - 1]
    return line[span.column - 1 : span.end_column - 1]


def test_the_card_line_parses_as_written() -> None:
    program = parse_recipe(CARD, "card.prg")
    kinds = [type(s) for s in program.statements]
    assert kinds == [ast.Allocate, ast.Fix, ast.Boot, ast.WaitClock, ast.Boot]
    allocate, fix, boot_fe, wait, boot_c = program.statements
    assert isinstance(allocate, ast.Allocate) and allocate.count is not None
    assert allocate.count.literal == "4"
    assert isinstance(fix, ast.Fix) and fix.method is not None
    assert [t.kind for t in fix.targets] == ["all"] and fix.method.literal == "virt-v2v"
    assert isinstance(boot_fe, ast.Boot) and [str(t) for t in boot_fe.targets] == ["frontend"]
    assert isinstance(wait, ast.WaitClock) and wait.duration is not None
    assert wait.duration.literal == "300"
    assert isinstance(boot_c, ast.Boot) and [str(t) for t in boot_c.targets] == ["compute"]
    assert [s.text for s in program.statements] == CARD.split("; ")
    assert program.file == "card.prg" and program.source == CARD


def test_every_span_covers_its_own_text() -> None:
    source = (
        'set x = "a b"\n'
        "  wait compute[1:3], calit2-compute-0 up timeout ${t}  # c\n"
        "vc_driver/pre_boot $x end\n"
        "echo pre${x}post\n"
    )
    program = parse_recipe(source, "spans.prg")
    assert [_text_at(source, s.span) for s in program.statements] == [
        s.text for s in program.statements
    ]
    wait = program.statements[1]
    assert isinstance(wait, ast.WaitState) and wait.timeout is not None
    assert [_text_at(source, t.span) for t in wait.targets] == ["compute[1:3]", "calit2-compute-0"]
    assert wait.targets[0] == ast.Target(
        "compute", wait.targets[0].span, index=1, stop=3, is_slice=True
    )
    assert wait.state == "up"
    assert _text_at(source, wait.timeout.variables[0].span) == "${t}"
    call = program.statements[2]
    assert isinstance(call, ast.DistroCall) and call.written_as == "vc_driver/pre_boot"
    assert call.stage == "pre_boot" and call.kind == "driver"
    assert [_text_at(source, t.span) for t in call.targets] == ["$x", "end"]
    assert call.targets[0].kind == "word" and call.targets[1].name == "end"
    echo = program.statements[3]
    assert isinstance(echo, ast.Echo)
    (word,) = echo.words
    assert word.parts[0] == "pre" and word.parts[2] == "post"
    assert _text_at(source, word.variables[0].span) == "${x}"


def test_variables_inside_quotes_have_exact_spans() -> None:
    source = 'echo "say \\"$who\\" costs \\$5 ${n}"\n'
    (echo,) = parse_recipe(source, "q.prg").statements
    assert isinstance(echo, ast.Echo)
    (word,) = echo.words
    assert word.quoted
    assert [p if isinstance(p, str) else p.name for p in word.parts] == [
        'say "',
        "who",
        '" costs $5 ',
        "n",
    ]
    assert [_text_at(source, v.span) for v in word.variables] == ["$who", "${n}"]


def test_wait_forms_are_told_apart() -> None:
    statements = parse_statement(
        "wait 300; wait 90s; wait $t; wait frontend up; wait compute[0] compute[1] running"
    )
    assert [type(s) for s in statements] == [ast.WaitClock] * 3 + [ast.WaitState] * 2
    last = statements[-1]
    assert isinstance(last, ast.WaitState)
    assert [str(t) for t in last.targets] == ["compute[0]", "compute[1]"]
    assert last.state == "running" and last.timeout is None


def test_keywords_are_plain_words_in_arguments() -> None:
    (echo, run) = parse_statement("echo fix all via boot; run wait allocate include")
    assert isinstance(echo, ast.Echo) and isinstance(run, ast.Run)
    assert [w.literal for w in echo.words] == ["fix", "all", "via", "boot"]
    assert [w.literal for w in run.argv] == ["wait", "allocate", "include"]


def test_parse_statement_names_the_repl() -> None:
    (statement,) = parse_statement("boot frontend")
    assert statement.span == Span("<repl>", 1, 1, 1, 14)
    assert parse_statement("  # nothing but a comment") == ()


def test_crlf_gives_the_same_statements_as_lf() -> None:
    lf = "allocate 2\nboot all # x\n\necho done\n"
    crlf = lf.replace("\n", "\r\n")
    assert parse_recipe(crlf, "r.prg").statements == parse_recipe(lf, "r.prg").statements


def test_a_byte_order_mark_is_ignored() -> None:
    (statement,) = parse_recipe("\ufeffboot all\n", "bom.prg").statements
    assert statement.span.column == 1 and statement.text == "boot all"


def test_the_parser_is_built_once() -> None:
    assert _lark() is _lark()


def test_include_resolves_beside_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "part.prg").write_text("echo part\n")
    main = tmp_path / "main.prg"
    main.write_text('echo before\ninclude "lib/part.prg"\necho after\n')
    program = parse_file(main)
    include = program.statements[1]
    assert isinstance(include, ast.Include)
    assert include.path == "lib/part.prg"
    assert Path(include.resolved) == tmp_path / "lib" / "part.prg"
    (inner,) = include.body
    assert isinstance(inner, ast.Echo)
    assert inner.span == Span(include.resolved, 1, 1, 1, 10)


def test_include_search_path_then_bundled_recipes(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "site.prg").write_text("set site = here\n")
    main = tmp_path / "recipes" / "main.prg"
    main.parent.mkdir()
    main.write_text('include "site.prg"\ninclude "rocks6.prg"\n')
    site, bundled = parse_file(main, search_path=[shared]).statements
    assert isinstance(site, ast.Include) and Path(site.resolved) == shared / "site.prg"
    assert isinstance(bundled, ast.Include)
    assert bundled.resolved.endswith("rocks6.prg")
    assert any(isinstance(s, ast.Allocate) for s in bundled.body)


def test_include_prefers_the_including_folder(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.prg").write_text("echo other\n")
    (tmp_path / "x.prg").write_text("echo local\n")
    main = tmp_path / "main.prg"
    main.write_text('include "x.prg"\n')
    (include,) = parse_file(main, search_path=[other]).statements
    assert isinstance(include, ast.Include) and Path(include.resolved) == tmp_path / "x.prg"


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    main = tmp_path / "loop.prg"
    main.write_text('echo once\ninclude "loop.prg"\n')
    with pytest.raises(RecipeError) as info:
        parse_file(main)
    assert info.value.message == f"include cycle: {main} -> {main}"
    assert (info.value.span.line, info.value.span.column) == (2, 9)


def test_missing_include_names_where_it_looked(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    main = tmp_path / "main.prg"
    main.write_text('\n  include "gone.prg"\n')
    with pytest.raises(RecipeError) as info:
        parse_file(main, search_path=[extra])
    error = info.value
    assert error.span == Span(str(main), 2, 11, 2, 21)
    assert str(extra) in error.message and "gone.prg" in error.message
    assert error.source_line == '  include "gone.prg"'


def test_an_unreadable_recipe_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read the recipe"):
        parse_file(tmp_path / "absent.prg")


BROKEN = [
    "bot frontend",
    "fix all",
    "fix all\n",
    "fix\n",
    "boot\n",
    "boot compute[\n",
    "boot compute[1:2\n",
    "boot frontend 3\n",
    "wait\n",
    "wait frontend\n",
    "wait frontend up timeout\n",
    "set\n",
    "set x\n",
    "set x =\n",
    "param x = a b\n",
    "include\n",
    "run\n",
    "echo a\\b\n",
    'echo "open\n',
    "allocate 1 2\n",
    "ve_driver/\n",
    "echo ${\n",
    "echo $\n",
    "; ;\n[x]\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_syntax_errors_speak_recipe_words(text: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, "x.prg")
    error = info.value
    assert error.span.file == "x.prg"
    for terminal in ("_NL", "_SEMI", "$END", "RSQB", "LSQB", "NAME", "BARE", "CLOCK", "VARNAME"):
        assert terminal not in error.message
    lines = text.split("\n")
    assert error.source_line == lines[error.span.line - 1]
    rendered = error.render().splitlines()
    assert rendered[0].startswith(f"x.prg:{error.span.line}:{error.span.column}: ")
    assert rendered[2].index("^") - 4 == error.span.column - 1


def test_unknown_statement_suggests_the_nearest() -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe("\nallocat 4\n", "x.prg")
    assert info.value.message.startswith("unknown statement 'allocat'; expected one of allocate")
    assert info.value.message.endswith("did you mean 'allocate'?")
    assert (info.value.span.line, info.value.span.column) == (2, 1)


def test_the_end_of_the_recipe_is_reported_as_such() -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe("allocate 4\nwait frontend up timeout", "x.prg")
    assert info.value.message.startswith("the recipe ended in the middle of a statement: expected")
    assert (info.value.span.line, info.value.span.column) == (2, 25)


def test_statement_words_cover_every_statement_kind() -> None:
    kinds = {w.rstrip("/") for w in STATEMENT_WORDS} - {"ve_driver", "vc_driver"}
    assert kinds | {"driver"} == set(ast.STATEMENT_KINDS)


def test_the_caret_keeps_the_lines_tabs() -> None:
    """With a tab before the error the caret lines up under any tab width."""
    with pytest.raises(RecipeError) as info:
        parse_recipe("\tallocate 2 3 ;;\n", "x.prg")
    rendered = info.value.render().splitlines()
    source, caret = rendered[1][4:], rendered[2][4:]
    assert source.startswith("\t") and caret.startswith("\t")
    col = info.value.span.column
    assert len(caret) == col and caret[:-1].expandtabs(8) == " " * len(
        source[: col - 1].expandtabs(8)
    )
