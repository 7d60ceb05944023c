"""Stage names are written once (pragmash/stages.py), and what each stage is called stays.

A step's error is filed under its stage (the journal, ``status``, the REPL's ``why``);
the names are part of what users and scripts read, so their text is pinned here, and
no product module may spell one out instead of using the constant.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pragmash import stages

ROOT = Path(__file__).resolve().parent.parent
DRIVER_STAGES = {
    value
    for name, value in vars(stages).items()
    if name.isupper() and value.startswith(("ve_driver/", "vc_driver/"))
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that are docstrings (they may name a stage in prose)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def spelled_out(path: Path) -> list[str]:
    """Where ``path`` writes a stage's name as a string (or an f-string's start) itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if any(text == s or text.startswith((f"{s}:", f"{s} ")) for s in DRIVER_STAGES):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    return found


def test_no_module_spells_out_a_stage_name() -> None:
    files = [*sorted((ROOT / "pragmash").rglob("*.py")), *sorted((ROOT / "drivers").rglob("*.py"))]
    found = [hit for path in files if path.name != "stages.py" for hit in spelled_out(path)]
    assert found == [], "use the constant of pragmash/stages.py:\n" + "\n".join(found)


def test_the_stage_names_users_read_are_unchanged() -> None:
    assert (stages.ALLOCATE, stages.STAGE, stages.FIX, stages.BOOT, stages.WAIT) == (
        "ve_driver/allocate",
        "ve_driver/stage",
        "ve_driver/fix",
        "ve_driver/boot",
        "ve_driver/wait",
    )
    assert (stages.PRE_FIX, stages.POST_FIX, stages.PRE_BOOT) == (
        "vc_driver/pre_fix",
        "vc_driver/post_fix",
        "vc_driver/pre_boot",
    )
    assert len(DRIVER_STAGES) == 18  # every constant a distinct stage
