"""One guestfish session that first reads from the guest, then writes what depends on it.

Most injection knows every file up front and runs guestfish once with all commands on
its command line (:mod:`pragmash.images.inject`). Adding a key to root's
authorized_keys is different: the keys already there must be kept and ours not
added twice (a retried boot runs pre_boot again), so the file is read first and the
merged one written after — in the SAME appliance launch, which costs seconds under
TCG. guestfish reads commands on stdin and, in that mode, stops at the first failing
command with exit status 1; its ``echo`` tells us when the reading part is done.

Arguments are quoted for guestfish's own parser, never a shell's.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from pragmash import stages
from pragmash.errors import StepError
from pragmash.images.tools import TAIL_LINES, last_meaningful_line, missing_tool_error
from pragmash.textsafe import printable

_DONE = "__pragmash_read_done__"

Command = Sequence[str]


def quote(arg: str) -> str:
    """``arg`` as one guestfish word: double-quoted, with ``\\`` and ``"`` escaped."""
    if "\n" in arg or "\r" in arg:
        raise StepError(
            f"cannot pass {arg!r} to guestfish: it holds a line break", stage=stages.GUESTFISH
        )
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_of(command: Command) -> str:
    return " ".join([command[0], *(quote(a) for a in command[1:])]) + "\n"


def read_then_write(
    argv: list[str],
    first: Sequence[Command],
    then: Callable[[], Sequence[Command]],
    *,
    timeout: float,
    stage: str,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``first`` (prefix a command with ``-`` to let it fail), then ``then()``'s commands.

    ``then`` is called once ``first`` has finished in the guest, so it can use what
    ``first`` downloaded. ``on_line`` sees each output line as it comes (``echo``
    markers show progress). A failure, or ``timeout`` seconds in all, is a StepError
    with guestfish's last lines.
    """
    if shutil.which(argv[0]) is None:
        raise missing_tool_error(os.path.basename(argv[0]), stage)
    deadline = time.monotonic() + timeout
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lines: queue.Queue[str | None] = queue.Queue()
    log: IO[str] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
        log.write("$ " + " ".join(argv) + "  (commands on stdin)\n")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for raw in iter(stdout.readline, ""):
            line = raw.rstrip("\n")
            if on_line is not None and line != _DONE:
                on_line(printable(line))
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def send(commands: Sequence[Command]) -> None:
        for command in commands:
            text = line_of(command)
            if log is not None:
                log.write("> " + text)
            proc.stdin.write(text)  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    def fail(message: str) -> StepError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        shown = list(tail)
        return StepError(
            f"guestfish {message}: {last_meaningful_line(shown)}",
            stage=stage,
            output_tail=shown,
            hint=f"full output in {log_path}" if log_path else None,
        )

    try:
        try:
            send([*first, ["echo", _DONE]])
        except BrokenPipeError:
            raise fail("stopped before reading") from None
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise fail(f"timed out after {timeout:g} s and was killed") from None
            if line is None:
                raise fail(f"failed (exit {proc.wait()})")
            if line == _DONE:
                break
            tail.append(printable(line))
            if log is not None:
                log.write(line + "\n")
        try:
            send([*then(), ["exit"]])
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it stopped at a failing command: the exit status says so below
        try:
            returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise fail(f"timed out after {timeout:g} s and was killed") from None
        reader.join(timeout=10)
        while not lines.empty():
            rest = lines.get()
            if rest is not None:
                tail.append(printable(rest))
                if log is not None:
                    log.write(rest + "\n")
        if returncode != 0:
            raise fail(f"failed (exit {returncode})")
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log is not None:
            log.close()
