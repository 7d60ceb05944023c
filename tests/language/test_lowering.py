"""Driver calls are lowered once, as they are parsed, to the statements they mean."""

from __future__ import annotations

import pytest

from pragmash.driver_api import VC_COMMANDS, VE_COMMANDS
from pragmash.errors import RecipeError
from pragmash.language import ast
from pragmash.language.checker import CheckContext, check_program
from pragmash.language.parser import parse_recipe
from pragmash.language.targets import resolve_targets
from pragmash.language.vocabulary import DEFAULT_FIX_METHOD

MEANS: dict[str, type[ast.Statement]] = {
    "allocate": ast.Allocate,
    "fix": ast.Fix,
    "boot": ast.Boot,
    "state": ast.EngineCall,
    "shutdown": ast.EngineCall,
    "destroy": ast.EngineCall,
    "pre_fix": ast.DistroCall,
    "post_fix": ast.DistroCall,
    "pre_boot": ast.DistroCall,
}

CALLS = [("ve_driver", c, op) for c, op in VE_COMMANDS.items()] + [
    ("vc_driver", c, op) for c, op in VC_COMMANDS.items()
]


def _one(text: str) -> ast.Statement:
    (stmt,) = parse_recipe(text, "low.prg").statements
    return stmt


@pytest.mark.parametrize(("driver", "command", "op"), CALLS)
def test_every_driver_command_is_an_ordinary_statement(driver: str, command: str, op: str) -> None:
    text = f"{driver}/{command} frontend" if op != "allocate" else f"{driver}/{command} 2"
    stmt = _one(text + "\n")
    assert type(stmt) is MEANS[op]
    assert stmt.text == text and stmt.span.line == 1 and stmt.span.end_column == len(text) + 1
    assert stmt.written_as == f"{driver}/{command}"
    assert stmt.kind == "driver"  # `break driver` still stops at it
    if isinstance(stmt, ast.EngineCall):
        assert stmt.op == op
    if isinstance(stmt, ast.DistroCall):
        assert stmt.stage == op


def test_fix_takes_its_method_last_and_has_the_seeds_default() -> None:
    fix = _one("ve_driver/fix_driver frontend compute[0] virt-customize\n")
    assert isinstance(fix, ast.Fix) and fix.method is not None
    assert [str(t) for t in fix.targets] == ["frontend", "compute[0]"]
    assert fix.method.literal == "virt-customize"
    lone = _one("ve_driver/fix all\n")
    assert isinstance(lone, ast.Fix) and lone.method is not None
    assert [str(t) for t in lone.targets] == ["all"] and lone.method.literal == DEFAULT_FIX_METHOD


def test_an_argument_with_a_variable_is_read_when_its_value_is_known() -> None:
    boot = _one("ve_driver/boot $who compute[1]\n")
    assert isinstance(boot, ast.Boot)
    assert [t.kind for t in boot.targets] == ["word", "compute"]
    values = {"who": "calit2-compute-0"}

    def text(word: ast.Word) -> str | None:
        return "".join(p if isinstance(p, str) else values.get(p.name, "") for p in word.parts)

    resolved = resolve_targets(boot.targets, text)
    assert [(t.kind, t.name) for t in resolved] == [("node", "calit2-compute-0"), ("compute", None)]
    assert resolve_targets(boot.targets, lambda w: None) == boot.targets[1:]  # not known yet


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ve_driver/destroy\n", "low.prg:1:11: 've_driver/destroy' needs the nodes it works on"),
        ("ve_driver/allocate 1 2\n", "low.prg:1:22: 've_driver/allocate' takes one number"),
    ],
)
def test_a_driver_call_that_means_nothing_is_a_parse_error(text: str, says: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, "low.prg")
    assert says in info.value.render()


def _context() -> CheckContext:
    return CheckContext(
        variables={"vcname": "calit2"},
        frontend="calit2-frontend",
        compute_name=lambda i: f"calit2-compute-{i}",
        computes_for=lambda cpus: cpus,
        extra_vc_commands=("motd",),
    )


def test_any_other_name_is_a_driver_folders_script_the_checker_knows_or_not() -> None:
    program = parse_recipe("vc_driver/motd $vcname hello\nve_driver/bot frontend\n", "low.prg")
    script, unknown = program.statements
    assert isinstance(unknown, ast.ScriptCall) and unknown.command == "bot"
    assert isinstance(script, ast.ScriptCall) and script.kind == "driver"
    assert (script.driver, script.command, len(script.args)) == ("vc_driver", "motd", 2)
    (problem,) = check_program(program, _context())
    assert problem.render().startswith("low.prg:2:11: unknown command 've_driver/bot'")
    assert "did you mean 'boot'?" in problem.message


def test_the_checker_holds_a_driver_fix_to_the_fix_methods() -> None:
    """Before lowering, ``ve_driver/fix all bogus`` passed the checks and failed at run time."""
    program = parse_recipe("allocate 2\nve_driver/fix all bogus\n", "low.prg")
    (problem,) = check_program(program, _context())
    assert problem.message.startswith("unknown fix method 'bogus'")
    assert (problem.span.line, problem.span.column) == (2, 19)


def test_the_checker_reads_driver_targets_through_known_variables() -> None:
    program = parse_recipe(
        "allocate 2\nset n = compute[5]\nve_driver/state $n\nvc_driver/pre_boot $later\n",
        "low.prg",
    )
    problems = [p.message for p in check_program(program, _context())]
    assert problems[0].startswith("compute[5] does not exist")
    assert problems[1].startswith("unknown variable '$later'")
    assert len(problems) == 2


def test_allocate_without_a_count_reads_num_compute_and_says_when_it_is_not_set() -> None:
    program = parse_recipe("allocate\nparam num_compute = 2\nallocate\nboot compute[1]\n", "a.prg")
    ctx = _context()
    (problem,) = check_program(program, ctx)
    assert problem.render().startswith("a.prg:1:1: unknown variable '$num_compute'")
