"""The ``run`` statement's host command: argv straight to exec, never through a shell.

Recipe values end up in ``argv``; with no shell there is nothing for them to
inject into. Output goes to the step's reporter line by line and the last lines
travel with a failure, so the front end can show why the command failed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from pragmash.engine.interpreter import StepOutcome, StepReporter
from pragmash.errors import StepError

RUN_TIMEOUT = 600.0


def run_host_command(argv: Sequence[str], reporter: StepReporter) -> StepOutcome:
    """Run ``argv`` to its end; exit 0 is done, anything else a StepError with the tail."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise StepError(f"command not found: {argv[0]}", stage="run") from None
    for line in (proc.stdout + proc.stderr).splitlines():
        reporter.note(line)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).splitlines()[-20:]
        raise StepError(
            f"{argv[0]} exited with status {proc.returncode}", stage="run", output_tail=tail
        )
    return StepOutcome("done", f"{argv[0]} exited 0")
