"""Run the external disk tools (qemu-img, guestfish, virt-v2v …) the same careful way.

Every tool gets an argument list (never a shell), a closed stdin so nothing can sit
waiting on a prompt, one merged output stream kept in a log and handed line by line
to the caller, and a timeout that kills the whole process group (libguestfs starts
a qemu appliance that must not outlive a killed tool). A failure becomes a
:class:`StepError` that carries the tool's own last words.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pragmash.errors import StepError
from pragmash.textsafe import printable

logger = logging.getLogger("pragmash.tools")

TAIL_LINES = 20

# Tools that start a libguestfs appliance (a small VM: seconds under TCG each).
APPLIANCE_TOOLS = frozenset({"guestfish", "virt-copy-in", "virt-customize", "virt-v2v"})

_runs: Counter[str] = Counter()
_runs_lock = threading.Lock()


def tool_runs() -> Counter[str]:
    """How many times each tool was started by this process (a copy).

    The cost of a cluster is counted in appliance launches and conversions, not in
    seconds that vary with the machine: benchmarks and tests read these counts.
    """
    with _runs_lock:
        return Counter(_runs)


def appliance_launches(runs: Counter[str]) -> int:
    """How many of ``runs`` started a libguestfs appliance (virt-v2v included)."""
    return sum(n for tool, n in runs.items() if tool in APPLIANCE_TOOLS)


# Which Debian package provides a tool, so a missing one is a one-line fix for the user.
DEBIAN_PACKAGES: dict[str, str] = {
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "guestfish": "guestfish (apt-get install libguestfs-tools)",
    "virt-copy-in": "guestfish (apt-get install libguestfs-tools)",
    "virt-customize": "guestfs-tools (apt-get install libguestfs-tools)",
    "virt-v2v": "virt-v2v (also needs nbdkit and libnbd-bin)",
    "nbdcopy": "libnbd-bin",
    "nbdkit": "nbdkit",
    "mke2fs": "e2fsprogs",
    "sfdisk": "fdisk",
    "busybox": "busybox-static",
    "cp": "coreutils",
}


@dataclass(frozen=True)
class ToolResult:
    """How a tool ended: its exit status, its last lines and where the full log is."""

    returncode: int
    tail: list[str]
    log_path: Path | None


def accel_words(kvm_usable: bool) -> str:
    """How a step says which acceleration its appliance ran with."""
    return "KVM" if kvm_usable else "TCG (KVM not usable here)"


def guestfs_env(kvm_usable: bool) -> dict[str, str]:
    """libguestfs settings: the direct backend (no libvirtd needed) and TCG unless KVM works.

    On hosts where /dev/kvm exists but nested KVM hangs, libguestfs would pick KVM and
    stall; forcing TCG is slower but finishes.
    """
    env = {"LIBGUESTFS_BACKEND": "direct"}
    if not kvm_usable:
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    return env


def missing_tool_error(tool: str, stage: str) -> StepError:
    """The error for a tool that is not installed, naming the package that provides it."""
    package = DEBIAN_PACKAGES.get(tool, "the package that provides it")
    return StepError(
        f"{tool} is not installed (Debian package: {package})",
        stage=stage,
        hint=f"install it with: apt-get install {package.split(' ')[0]}",
    )


def last_meaningful_line(lines: list[str]) -> str:
    """The line that best says why a tool failed: its last error line, else its last line.

    Tools such as virt-v2v follow their error with paragraphs of advice; the line
    that names the error is what belongs in a one-line message.
    """
    stripped = [line.strip() for line in lines if line.strip()]
    for line in reversed(stripped):
        lowered = line.lower()
        if "error" in lowered or "failed" in lowered or "no such" in lowered:
            return line
    return stripped[-1] if stripped else "(no output)"


def _pump(
    stream: IO[bytes],
    tail: deque[str],
    log: IO[str] | None,
    on_line: Callable[[str], None] | None,
) -> None:
    """Copy the tool's output to the log, the tail and the caller, one line at a time.

    Progress bars redraw with carriage returns; each redraw counts as a line.
    """
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        for part in text.split("\r"):
            if not part.strip():
                continue
            if log is not None:  # the log keeps the tool's own bytes
                log.write(part + "\n")
                log.flush()
            shown = printable(part)
            tail.append(shown)
            if on_line is not None:
                on_line(shown)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the tool and everything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_tool(
    argv: list[str],
    *,
    timeout: float,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    stage: str,
    cwd: Path | None = None,
) -> ToolResult:
    """Run one tool to completion; raise StepError on a non-zero exit, timeout or absence.

    ``env`` holds variables added to this process's environment (not a replacement
    for it). The log is appended to, so one log can hold a whole stage's tools.
    ``cwd`` is its working folder (a site's driver scripts keep state there).
    """
    tool = os.path.basename(argv[0])
    if shutil.which(argv[0]) is None:
        raise missing_tool_error(tool, stage)
    with _runs_lock:
        _runs[tool] += 1
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    logger.info("run %s%s", shlex.join(argv), f" (in {cwd})" if cwd else "")
    log: IO[str] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
    try:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise missing_tool_error(tool, stage) from exc
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, tail, log, on_line), daemon=True)
        reader.start()
        timed_out = False
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            returncode = proc.wait()
        reader.join(timeout=10)
        if reader.is_alive():
            # A leftover child still holds the pipe open: end the group so the reader stops.
            _kill_group(proc)
            reader.join(timeout=10)
        proc.stdout.close()
    finally:
        if log is not None:
            log.close()
    lines = list(tail)
    logger.info(
        "%s %s after %.2f s",
        tool,
        "timed out" if timed_out else f"exited {returncode}",
        time.monotonic() - started,
    )
    if timed_out:
        raise StepError(
            f"{tool} timed out after {timeout:g} s and was killed: {last_meaningful_line(lines)}",
            stage=stage,
            output_tail=lines,
            hint=f"full output in {log_path}" if log_path else None,
        )
    if returncode != 0:
        raise StepError(
            f"{tool} failed (exit {returncode}): {last_meaningful_line(lines)}",
            stage=stage,
            output_tail=lines,
            hint=f"full output in {log_path}" if log_path else None,
        )
    return ToolResult(returncode=returncode, tail=lines, log_path=log_path)
