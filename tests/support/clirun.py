"""The pragmash CLI run in the test's own process, and reading a run's step lines.

One way for every test that calls ``main`` in-process: what it prints goes to buffers
the test reads, not to the terminal pytest captures.
"""

from __future__ import annotations

import io
import subprocess
import sys

from pragmash.ui.cli.main import main


def cli(*argv: str) -> tuple[int, str, str]:
    """``pragmash ARGV`` in this process: its exit code, standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def cli_merged(*argv: str) -> tuple[int, str]:
    """``pragmash ARGV`` in this process: its exit code and all it printed (out, then err)."""
    code, out, err = cli(*argv)
    return code, out + err


def step_line(output: str, statement: str) -> str:
    """The last ``ok``/``FAIL`` line a run printed for ``statement``."""
    lines = [ln for ln in output.splitlines() if ln.startswith(("ok ", "FAIL")) and statement in ln]
    assert lines, f"no step {statement!r} in:\n{output}"
    return lines[-1]


def pragmash_process(*argv: str) -> str:
    """``pragmash ARGV`` as a process of its own: its standard output, exit 0 asserted."""
    proc = subprocess.run(
        [sys.executable, "-m", "pragmash.ui.cli.main", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
