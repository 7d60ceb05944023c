"""Everyday safety (issue 27, items 11 to 15): the small defects a hostile round found.

Each test failed before the fix it names: a wrong exit status, a traceback, a silent
loss, or a command that destroyed without asking.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest
from support.repldriver import RECIPE
from support.runenv import BOOT_ALL, RunEnv

from pragmash.errors import UserError
from pragmash.vc.formats.names import validate_name

pytestmark = pytest.mark.libvirt

PRAGMASH = Path(sys.executable).with_name("pragmash")


def test_clean_of_a_vc_no_one_has_is_no_such_vc(env: RunEnv) -> None:
    """Item 11: ``clean nosuch`` says there is no such VC (exit 2), not "nosuch is clean"."""
    result = env.cli("clean", "nosuch")
    assert result.rc == 2, result.out
    assert "nosuch is clean" not in result.out
    assert "no such VC" in result.err


def test_clean_asks_at_a_terminal_naming_what_goes(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """Item 11: at a terminal, clean names the nodes it would destroy and asks; "n" keeps
    everything; ``--yes`` does not ask; without a terminal nothing asks (scripts)."""
    assert env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2").rc == 0
    leader, follower = pty.openpty()
    try:
        os.write(leader, b"n\n")
        done = subprocess.run(
            [str(PRAGMASH), "clean", "calit2", "--site", str(env.site_path)],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=env.root,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert "calit2-frontend" in done.stdout + done.stderr
    assert "[y/N]" in done.stdout + done.stderr
    assert done.returncode == 2, done.stderr
    assert env.allocation() is not None  # nothing was released
    assert env.cli("clean", "calit2", "--yes").rc == 0
    assert env.allocation() is None


def test_status_of_an_absent_node_does_not_point_at_deleting_the_vc(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """Item 11: a node gone by hand: status says what brings it back, not just "clean"."""
    assert env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2").rc == 0
    dom = testconn.lookupByName("calit2-compute-1")
    dom.destroy()
    dom.undefine()
    line = next(
        li for li in env.cli("status", "calit2").out.splitlines() if "calit2-compute-1" in li
    )
    assert "pragmash start calit2" in line
    assert "repairs" not in line


def test_a_closed_pipe_ends_output_quietly(tmp_path: Path) -> None:
    """Item 13: ``pragmash … | head -1``: no BrokenPipeError traceback, no "a bug" exit 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before pragmash writes a line
    try:
        done = subprocess.run(
            [str(PRAGMASH), "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode not in (0, 1)


def test_an_invalid_byte_in_piped_repl_input_loses_only_its_line(tmp_path: Path) -> None:
    """Item 14: under a strict UTF-8 locale, one bad byte does not drop every command."""
    recipe = tmp_path / "cluster.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    done = subprocess.run(
        [str(PRAGMASH), "repl", str(recipe), "--vcname", "calit2"],
        input=b"where\nst\xffep\nwhere\nquit\n",
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"},
    )
    prompts = [line for line in done.stdout.decode().splitlines() if "(pragmash)" in line]
    assert prompts[0] == "(pragmash) where"
    assert prompts[-1] == "(pragmash) quit"
    assert len(prompts) == 4


def test_a_vc_name_with_a_trailing_newline_is_refused() -> None:
    """Item 15: ``^…$`` with match let ``calit2\\n`` through."""
    with pytest.raises(UserError):
        validate_name("VC name", "calit2\n")


@pytest.mark.parametrize("timeout", ["nan", "inf", "-5", "0"])
def test_scale_timeout_must_be_a_positive_number(env: RunEnv, timeout: str) -> None:
    """Item 15: ``scale --timeout`` took nan, inf and -5."""
    result = env.cli("scale", "calit2", "+1", "--timeout", timeout)
    assert result.rc == 2
    assert "--timeout" in result.err
