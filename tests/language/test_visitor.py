"""One visitor over statements: every statement class is dispatched to its own method."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pragmash.errors import Span
from pragmash.language import ast
from pragmash.language.ast import StatementVisitor

RECIPE_STATEMENTS = [
    cls
    for _, cls in inspect.getmembers(ast, inspect.isclass)
    if issubclass(cls, ast.Statement) and cls not in (ast.Statement, ast.OnNodes, ast.MadeStep)
]


def _says(name: str) -> Any:
    return lambda self, stmt, arg: name


# a visitor whose every method answers with its own name
_Names: Any = type(
    "_Names", (StatementVisitor,), {m: _says(m) for m in StatementVisitor.__abstractmethods__}
)


@pytest.mark.parametrize("cls", RECIPE_STATEMENTS, ids=lambda c: c.__name__)
def test_each_statement_has_its_own_visitor_method(cls: type[ast.Statement]) -> None:
    stmt = cls(Span("t.prg", 1, 1, 1, 2), "x")
    name = _Names().visit(stmt, None)
    assert name in StatementVisitor.__abstractmethods__
    assert name.removeprefix("visit_").replace("_", "") == cls.__name__.lower()


def test_every_visitor_method_has_its_statement() -> None:
    assert len(StatementVisitor.__abstractmethods__) == len(RECIPE_STATEMENTS)


def test_a_made_step_is_never_visited() -> None:
    step = ast.MadeStep(Span("scale", 1, 1, 1, 2), "lease compute[1:2]")
    with pytest.raises(TypeError, match="no recipe statement"):
        _Names().visit(step, None)
