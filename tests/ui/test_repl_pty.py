"""The real ``pragmash repl`` process in a pseudo-terminal: it starts, completes a word, leaves.

Everything else about the REPL is tested through a pipe; this one proves the
terminal path works (prompt_toolkit on a real tty, Tab, Ctrl-D) and that leaving
closes the run cleanly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

from pragmash.engine.run.session import open_site  # noqa: E402
from pragmash.store.journal import last_run  # noqa: E402
from pragmash.store.ledger import Ledger  # noqa: E402

pytestmark = pytest.mark.libvirt

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_repl_in_a_terminal_completes_and_exits_on_ctrl_d(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120", LINES="40")
    pragmash = Path(sys.executable).with_name("pragmash")
    child = pexpect.spawn(
        str(pragmash),
        ["repl", str(RECIPES / "rocks6.prg"), "--vcname", "calit2"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    try:
        child.expect_exact("(pragmash)")
        child.send("whe\t")  # Tab completes the command; "whe" alone would be an error
        child.send("\r")
        child.expect_exact("step 1 of 13")
        child.expect_exact("(pragmash)")
        child.send("\x04")  # Ctrl-D leaves
        child.expect_exact("no domain of calit2 is running")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    record = last_run(Ledger(open_site(None)), "calit2")
    assert record is not None and record.outcome == "interrupted"
    history = open_site(None).state_dir / "repl_history"
    assert "where" in history.read_text(encoding="utf-8")
