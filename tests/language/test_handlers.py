"""``on grow|shrink STATEMENT``: a recipe says what a scale does to the running cluster.

Parsed and checked as a scale would run it; kept (not run) by the recipe's own run;
run by ``pragmash scale`` after its refresh, as steps of the scale's run (journaled,
resumed); skipped with the reason where the site's policy refuses commands. On the
demo engine (real libvirt, test:///default); inside a real guest: test_vm_guests.py.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.runenv import RunEnv, make_env

from pragmash.errors import RecipeError
from pragmash.language import ast
from pragmash.language.parser import parse_recipe

pytestmark = pytest.mark.libvirt

RECIPE = """\
param greeting = hello
allocate 1
boot all
on grow echo "$greeting: $num_nodes nodes"
on grow exec compute[5] "rocks sync config" timeout 10m
on shrink echo "down to $num_nodes nodes"
"""


@pytest.fixture
def env(tmp_path: Path, testconn: libvirt.virConnect) -> RunEnv:
    return make_env(tmp_path / "site")


def test_a_handler_is_an_event_and_one_statement() -> None:
    (stmt,) = parse_recipe(
        'on grow exec frontend "rocks sync config" timeout 2m', "r.prg"
    ).statements
    assert isinstance(stmt, ast.Handler) and stmt.kind == "on" and stmt.event == "grow"
    assert isinstance(stmt.body, ast.Exec) and stmt.body.text.startswith("exec frontend")
    for bad, said in [
        ("on resize echo x", "'on' takes a scale event, grow or shrink, not 'resize'"),
        ("on grow boot all", "expected the statement 'on grow' runs in a scale: exec, run"),
        ("on shrink", "expected the statement 'on shrink' runs in a scale"),
    ]:
        with pytest.raises(RecipeError, match=said):
            parse_recipe(bad, "r.prg")


def test_the_recipe_keeps_its_handlers_and_a_scale_runs_them(env: RunEnv) -> None:
    recipe = env.recipe(RECIPE)
    checked = env.cli("check", str(recipe))  # compute[5] may exist after a scale; exec is
    assert checked.rc == 0, checked.err  # not refused here: a scale skips it (below)
    planned = env.cli(str(recipe), "--vcname", "calit2", "--dry-run")
    assert "    kept for `pragmash scale calit2 +N`, run after its refresh:\n" in planned.out
    assert "        echo: hello: $num_nodes nodes\n" in planned.out
    assert "        skipped by a scale: 'exec' is refused" in planned.out
    ran = env.cli(str(recipe), "--vcname", "calit2")
    assert ran.rc == 0, ran.err
    assert "kept for `pragmash scale calit2 +N`" in ran.out and "hello:" not in ran.out

    grown = env.cli("scale", "calit2", "+1")
    assert grown.rc == 0, grown.err
    assert "    hello: 3 nodes\n" in grown.out  # after the scale: its variables, its nodes
    assert [(s.text, s.outcome) for s in env.steps()][-3:] == [
        ("refresh all", "skipped"),
        ('on grow echo "$greeting: $num_nodes nodes"', "done"),
        ('on grow exec compute[5] "rocks sync config" timeout 10m', "skipped"),
    ]
    skipped = env.steps()[-1]
    assert skipped.message is not None and "'exec' is refused" in skipped.message
    assert (skipped.file, skipped.line) == (str(recipe), 5)  # journaled where it is written

    shrunk = env.cli("scale", "calit2", "-1")
    assert shrunk.rc == 0, shrunk.err
    assert "    down to 2 nodes\n" in shrunk.out
    assert [s.text for s in env.steps()][-1] == 'on shrink echo "down to $num_nodes nodes"'


def test_a_failed_handler_fails_the_scale_and_resume_runs_it_again(
    env: RunEnv, tmp_path: Path
) -> None:
    flag = tmp_path / "failed-once"
    recipe = env.recipe(
        f'allocate 1\nboot all\non grow run sh -c "test -e {flag} || {{ touch {flag}; exit 1; }}"\n'
    )
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 0
    failed = env.cli("scale", "calit2", "+1")
    assert failed.rc == 3, failed.err
    assert "sh exited with status 1" in failed.err
    assert [s.outcome for s in env.steps()][-2:] == ["skipped", "failed"]
    again = env.cli("resume", "calit2")
    assert again.rc == 0, again.err
    assert [s.outcome for s in env.steps()][-2:] == ["skipped", "done"]
    held = env.allocation()
    assert held is not None and len(held.computes) == 2  # taken once
