"""Whether a run's recipe files changed since the run started.

``resume`` continues at a step *index*: the journal says steps 0 to 4 are done, so
it starts at 5. That is only right while the recipe is the one the run started
with; a line inserted at the top shifts every step, and resume would redo finished
boots and skip the new lines. So a run records a digest of every recipe file it
read (the recipe and each include), and resume compares them and says what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pragmash.language import ast
from pragmash.language.program import flatten
from pragmash.store.journal import StepRecord


def recipe_sources(program: ast.Program) -> dict[str, str]:
    """Every file the program was read from, resolved, with its SHA-256."""
    files = [program.file]
    files += [
        s.statement.resolved
        for s in flatten(program.statements)
        if isinstance(s.statement, ast.Include)
    ]
    return {str(Path(f).resolve()): _digest(Path(f)) for f in files}


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def recipe_changes(
    recorded: dict[str, str], program: ast.Program, steps: Sequence[StepRecord]
) -> list[str]:
    """What differs between the files a run recorded and ``program`` as read now.

    Empty when nothing changed, or when the run predates digests (nothing to compare).
    The first journaled step that no longer matches the recipe at its index is named,
    so the user sees what resume would get wrong.
    """
    if not recorded:
        return []
    now = recipe_sources(program)
    changes = []
    for path, digest in recorded.items():
        if path not in now:
            gone = not Path(path).is_file()
            changes.append(f"{path} is {'gone' if gone else 'no longer included'}")
        elif now[path] != digest:
            changes.append(f"{path} was edited")
    changes += [f"{path} is newly included" for path in now if path not in recorded]
    if not changes:
        return []
    flat = flatten(program.statements)
    for step in steps:
        if not step.text:  # a step skipped at the REPL without being started
            continue
        current = flat[step.idx].statement if step.idx < len(flat) else None
        if current is None:
            changes.append(
                f"step {step.idx + 1} ({step.outcome}) was '{step.text}' at line {step.line}; "
                f"the recipe now has only {len(flat)} steps"
            )
            break
        if (current.text, current.span.line) != (step.text, step.line):
            changes.append(
                f"step {step.idx + 1} ({step.outcome}) was '{step.text}' at line {step.line}; "
                f"it is now '{current.text}' at line {current.span.line}"
            )
            break
    return changes
