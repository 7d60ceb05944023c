"""``check`` reports every problem in a recipe, each as ``file:line:col``, not just the first.

Syntax errors: the parser goes on at the next line (Lark's ``on_error``), so each bad
line is one error and the good lines between them are still built and checked.
Checker errors after a good parse are all collected.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from pragmash.errors import EXIT_USER, RecipeError, RecipeErrors, each_problem
from pragmash.language.parser import parse_file, parse_recipe
from pragmash.ui.cli.main import main

_WHERE = re.compile(r"^error: (\S+):(\d+):(\d+): ", re.MULTILINE)


def _problems(text: str, file: str = "r.prg") -> list[RecipeError]:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, file)
    return each_problem(info.value)


def _check(recipe: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", str(recipe)], out=out, err=err)
    return code, err.getvalue()


def test_three_syntax_errors_are_three_errors_at_their_lines() -> None:
    problems = _problems(
        "allocate 2\n"
        "boot\n"  # no targets
        "echo fine\n"
        "fix all via\n"  # no method
        "wait 5m\n"
        "set = 3\n"  # no name
        "boot frontend\n"
    )
    assert [(p.span.line, p.span.column) for p in problems] == [(2, 5), (4, 12), (6, 5)]
    assert problems[0].message.startswith("expected targets after 'boot'")
    assert problems[1].message.startswith("expected a fix method after 'via'")
    assert problems[2].message.startswith("expected a variable name after 'set'")


def test_the_builders_errors_come_with_the_syntax_errors_in_line_order() -> None:
    problems = _problems("wait 5x\nboot ,\nallocate two\n")
    assert [p.span.line for p in problems] == [1, 2, 3]
    assert "not '5x'" in problems[0].message
    assert "expected a number of CPUs after 'allocate'" in problems[2].message


def test_a_statement_cut_off_by_the_end_of_the_recipe_is_one_more_error() -> None:
    problems = _problems("boot ,\necho ok\nfix all")
    assert [p.span.line for p in problems] == [1, 3]
    assert problems[1].message.startswith("the recipe ended in the middle of a statement")


def test_each_error_after_a_semicolon_line_is_still_found() -> None:
    problems = _problems("echo a; boot\nwait frontend\necho b\n")
    assert [p.span.line for p in problems] == [1, 2]


def test_a_bad_statement_of_every_kind_costs_only_its_line() -> None:
    problems = _problems('exec frontend\nboot\nexec frontend "hostname" timout 5m\necho ok\n')
    assert [p.span.line for p in problems] == [1, 2, 3]
    assert problems[2].message == "unexpected 'timout' in 'exec'; did you mean 'timeout'?"


def test_one_error_is_raised_as_itself() -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe("echo a\nboot\n", "r.prg")
    assert not isinstance(info.value, RecipeErrors)
    assert str(info.value.span) == "r.prg:2:5"


def test_errors_in_an_included_file_are_each_named_there(tmp_path: Path) -> None:
    (tmp_path / "part.prg").write_text("boot\necho ok\nwait 5x\n")
    main_recipe = tmp_path / "main.prg"
    main_recipe.write_text('fix all via\ninclude "part.prg"\nboot ,\n')
    with pytest.raises(RecipeErrors) as info:
        parse_file(main_recipe)
    shown = [(Path(p.span.file).name, p.span.line) for p in info.value.problems]
    assert shown == [("main.prg", 1), ("part.prg", 1), ("part.prg", 3), ("main.prg", 3)]
    for problem in info.value.problems[1:3]:
        assert problem.hint == f"(included from {main_recipe}:2:1)"


def test_check_prints_three_syntax_errors_for_three(tmp_path: Path) -> None:
    recipe = tmp_path / "three.prg"
    recipe.write_text("allocate 1\nboot\nwait compute up timeout\nfix frontend via\n")
    code, err = _check(recipe)
    assert code == EXIT_USER
    assert [m.groups() for m in _WHERE.finditer(err)] == [
        (str(recipe), "2", "5"),
        (str(recipe), "3", "24"),
        (str(recipe), "4", "17"),
    ]
    assert err.rstrip().endswith("3 problems in the recipe")
    assert "Traceback" not in err


@pytest.mark.libvirt
def test_check_prints_three_checker_errors_for_three(tmp_path: Path) -> None:
    recipe = tmp_path / "three.prg"
    recipe.write_text(
        "allocate 2\nfix all via virt-v2vx\nboot compute[5]\necho $nosuch\nboot frontend\n"
    )
    code, err = _check(recipe)
    assert code == EXIT_USER
    assert [m.groups()[1:] for m in _WHERE.finditer(err)] == [("2", "13"), ("3", "6"), ("4", "6")]
    assert "did you mean 'virt-v2v'?" in err
    assert "compute[5] does not exist" in err
    assert "unknown variable '$nosuch'" in err
    assert err.rstrip().endswith("3 problems in the recipe")


@pytest.mark.parametrize(
    ("line", "word", "meant"),
    [
        ("wait compute up timout 5m", "timout", "timeout"),
        ("wait frontend up timeoutt 5m", "timeoutt", "timeout"),
        ('wait frontend consle "login:"', "consle", "console"),
        ("fix all vai virt-v2v", "vai", "via"),
    ],
)
def test_a_mistyped_keyword_inside_a_statement_gets_did_you_mean(
    line: str, word: str, meant: str
) -> None:
    (problem,) = _problems(f"allocate 1\n{line}\n")
    assert problem.message == f"unexpected '{word}' in '{line.split()[0]}'; did you mean '{meant}'?"
    assert (problem.span.line, problem.span.column) == (2, line.index(word) + 1)


def test_a_node_name_far_from_any_keyword_is_not_called_a_typo() -> None:
    (problem,) = _problems("wait compute up calit2-frontend 5m\n")
    assert "did you mean" not in problem.message
