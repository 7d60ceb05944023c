"""The step table keeps its columns when an include path or a statement is long."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pragmash.engine.run.events import StepFailed, StepFinished
from pragmash.errors import StepError
from pragmash.language.parser import parse_file
from pragmash.language.program import flatten
from pragmash.ui.step_printer import MAX_TEXT_WIDTH, MAX_WHERE_WIDTH, StepPrinter


def _table(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    deep = tmp_path / "a-rather-long-folder-name" / "and-another-one-below-it"
    deep.mkdir(parents=True)
    (deep / "boot-the-frontend-first.prg").write_text(
        "boot frontend\nwait frontend up timeout $frontend_timeout\n"
    )
    main = tmp_path / "main.prg"
    main.write_text(body)
    monkeypatch.chdir(tmp_path)
    steps = flatten(parse_file(main).statements)
    out = io.StringIO()
    printer = StepPrinter(out, out, live=False, colour=False)
    printer.size_to(steps)
    for step in steps[:-1]:
        printer(StepFinished(step.index, step.statement, "done", 0.5, "said"))
    printer(StepFailed(steps[-1].index, steps[-1].statement, StepError("x", stage="s"), 1.0))
    return out.getvalue().splitlines()


def test_every_row_has_its_duration_in_the_same_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _table(
        tmp_path,
        "param frontend_timeout = 10m\nallocate 1\n"
        'include "a-rather-long-folder-name/and-another-one-below-it/boot-the-frontend-first.prg"\n'
        'echo "a statement that is much longer than the widest column may be, so it is cut"\n'
        "boot compute\n",
        monkeypatch,
    )
    assert len(rows) == 7  # the include is a step of its own
    columns = {row.index("0.50s") if "0.50s" in row else row.index("1.00s") for row in rows}
    assert len(columns) == 1, "\n".join(rows)
    # the long include path keeps its end (file, line, column), the start gives way
    assert rows[4].startswith("ok   …") and "boot-the-frontend-first.prg:2:1 " in rows[4]
    assert len(rows[4].split(" wait ")[0]) == len("ok   ") + MAX_WHERE_WIDTH
    # a statement too long for its column is cut at the end, with an ellipsis
    assert '"a statement that is much longer' in rows[5] and "…" in rows[5]
    assert "so it is cut" not in rows[5]
    assert len(rows[5].split("…")[0].split(" main.prg:4:1 ")[1].strip()) == MAX_TEXT_WIDTH - 1


def test_short_recipes_keep_the_narrow_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _table(tmp_path, "allocate 1\nboot frontend\n", monkeypatch)
    assert rows[0] == " ".join(
        ["ok  ", f"{'main.prg:1:1':<24}", f"{'allocate 1':<36}", "  0.50s  said"]
    )
