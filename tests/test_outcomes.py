"""Outcomes and domain states are written once, and what each is called stays.

A run's and a step's outcome (pragmash/outcomes.py) is kept in the ledger and read back
by ``status``, ``history``, ``resume`` and ``scale``; a node's domain state
(pragmash/domain_states.py) is what ``status`` and the REPL show and what ``stop`` keeps
in the journal. Ledgers written by earlier versions must still read right, so the text
is pinned here; and no product module may spell one out instead of using the constant.
"""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

from pragmash import domain_states, outcomes

ROOT = Path(__file__).resolve().parent.parent


def _constants(module: object) -> dict[str, str]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str)
    }


OUTCOMES = set(_constants(outcomes).values())
STATES = set(_constants(domain_states).values())
WORDS = OUTCOMES | STATES
#: A quoted word inside SQL (``outcome='running'``): a parameter with the constant instead.
IN_SQL = re.compile("'(" + "|".join(sorted(map(re.escape, WORDS))) + ")'")
SQL = ("INSERT ", "UPDATE ", "SELECT ", "DELETE ")
#: The same letters with another meaning, where the constant would mislead.
OTHER_MEANINGS = {
    ("pragmash/images/tools.py", "failed"),  # a word looked for in a tool's error text
    ("pragmash/engine/run/interpreter.py", "paused"),  # the interpreter's, not a domain's
    ("pragmash/language/vocabulary.py", "paused"),  # words a recipe's `wait` is written with
    ("pragmash/language/vocabulary.py", "running"),
    ("pragmash/ui/repl/debugger.py", "interrupted"),  # what the REPL says of a typed line
    ("pragmash/ui/repl/helptext.py", "interrupted"),  # the key of a help topic
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that are docstrings (they may name an outcome in prose)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def spelled_out(path: Path, root: Path = ROOT) -> list[str]:
    """Where ``path`` writes an outcome or a domain state as a string of its own, or
    quoted inside SQL."""
    where = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if (text in WORDS and (where, text) not in OTHER_MEANINGS) or (
                text.lstrip().startswith(SQL) and IN_SQL.search(text)
            ):
                found.append(f"{where}:{node.lineno}: {text!r}")
    return found


def test_no_module_spells_out_an_outcome_or_a_domain_state() -> None:
    own = {"outcomes.py", "domain_states.py"}
    files = [*sorted((ROOT / "pragmash").rglob("*.py")), *sorted((ROOT / "drivers").rglob("*.py"))]
    found = [hit for path in files if path.name not in own for hit in spelled_out(path)]
    assert found == [], (
        "use the constants of pragmash/outcomes.py or pragmash/domain_states.py:\n"
        + "\n".join(found)
    )


def test_the_check_finds_a_word_and_sql_that_spell_one_out(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(
        '"""Prose may say done."""\n'
        'X = "done"\n'
        "SQL = \"UPDATE runs SET outcome='interrupted'\"\n"
        'Y = "shut off"\n'
        'Z = "done and dusted"\n'
        "W = \"a message: 'failed' in prose\"\n",
        encoding="utf-8",
    )
    assert [hit.split(": ", 1)[0] for hit in spelled_out(bad, tmp_path)] == [
        "probe.py:2",
        "probe.py:3",
        "probe.py:4",
    ]


def test_the_outcomes_ledgers_hold_are_unchanged() -> None:
    assert _constants(outcomes) == {
        "RUNNING": "running",
        "FAILED": "failed",
        "INTERRUPTED": "interrupted",
        "DONE": "done",
        "SKIPPED": "skipped",
        "FINISHED": "finished",
        "CLEANED": "cleaned",
    }


def test_the_domain_states_users_read_are_unchanged() -> None:
    assert _constants(domain_states) == {
        "NO_STATE": "no state",
        "RUNNING": "running",
        "IDLE": "idle",
        "PAUSED": "paused",
        "IN_SHUTDOWN": "in shutdown",
        "SHUT_OFF": "shut off",
        "CRASHED": "crashed",
        "PMSUSPENDED": "pmsuspended",
        "ABSENT": "absent",
        "UNKNOWN": "unknown",
    }


def test_the_outcome_types_hold_exactly_their_constants() -> None:
    assert typing.get_args(outcomes.DoneOrSkipped) == (outcomes.DONE, outcomes.SKIPPED)
    assert typing.get_args(outcomes.Stopped) == (outcomes.FAILED, outcomes.INTERRUPTED)
    assert typing.get_args(outcomes.Ended) == (
        outcomes.FINISHED,
        outcomes.FAILED,
        outcomes.INTERRUPTED,
    )
    assert typing.get_args(outcomes.RunEnd) == (
        outcomes.FINISHED,
        outcomes.FAILED,
        outcomes.INTERRUPTED,
        outcomes.CLEANED,
    )
