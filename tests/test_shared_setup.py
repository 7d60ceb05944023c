"""Test modules share set-up through tests/support and conftest fixtures, never by
importing another test module.

A test module imported by another runs its module-level code twice under two names
(pytest's and the importer's), drags its fixtures into a file that does not show them,
and ties the two files' tiers together: moving or renaming one breaks the other. Shared
set-up lives in ``tests/support/`` (``from support.X import …``), shared fixtures in
the folder's ``conftest.py``. The benchmarks in ``bench/`` follow the same rule.

Read from the source with :mod:`ast`, like tests/test_architecture.py: imports inside
functions and ``importlib.import_module("…")`` calls with a literal name count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the folders whose modules must not import a test module
FOLDERS = ("tests", "bench")


def _is_test_module(dotted: str) -> bool:
    """Whether a dotted name is (or is inside) a test module: ``test_x``, ``vm.test_x``, conftest."""
    return any(part.startswith("test_") or part == "conftest" for part in dotted.split("."))


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for everything a module imports, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield node.lineno, base
            for alias in node.names:  # ``from vm import test_x`` names the module here
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name
        elif (
            isinstance(node, ast.Call)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def imports_of_test_modules(root: Path) -> list[tuple[str, int, str]]:
    """(file, line, name) for each import of a test module by a module under FOLDERS."""
    found: list[tuple[str, int, str]] = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "data" in path.relative_to(root).parts:
                continue  # fixture files (driver folders), not test code
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            first: dict[int, str] = {}  # one finding per import statement: what it imports from
            for line, name in _imported(tree):
                if name.split(".")[0] != "pragmash" and _is_test_module(name):
                    first.setdefault(line, name)
            found += [
                (str(path.relative_to(root)), line, name) for line, name in sorted(first.items())
            ]
    return found


def test_no_test_module_imports_another() -> None:
    assert imports_of_test_modules(ROOT) == [], (
        "move what is shared into tests/support/ (helpers) or a conftest.py (fixtures)"
    )


def test_the_check_catches_each_way_of_importing_a_test_module(tmp_path: Path) -> None:
    (tmp_path / "tests" / "vm").mkdir(parents=True)
    (tmp_path / "tests" / "data").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "tests" / "vm" / "test_a.py").write_text(
        "from support.vmsite import write_site\n"  # shared set-up: fine
        "from test_b import write_vc\n"
        "def f():\n    import vm.test_c\n"
        "from vm import test_d\n"
    )
    (tmp_path / "tests" / "data" / "test_fixture.py").write_text("import test_e\n")
    (tmp_path / "bench" / "bench_x.py").write_text(
        "import importlib\nimportlib.import_module('test_f')\nfrom conftest import env\n"
    )
    assert imports_of_test_modules(tmp_path) == [
        ("tests/vm/test_a.py", 2, "test_b"),
        ("tests/vm/test_a.py", 4, "vm.test_c"),
        ("tests/vm/test_a.py", 5, "vm.test_d"),
        ("bench/bench_x.py", 2, "test_f"),
        ("bench/bench_x.py", 3, "conftest"),
    ]
