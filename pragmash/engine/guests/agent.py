"""The QEMU guest agent's protocol: run a program inside a guest, put a file into it.

The engine passes one JSON command at a time (:class:`~pragmash.driver_api.GuestAgents`,
libvirt's ``qemuAgentCommand``); what those commands are is here, once, for every
engine that can pass them:

- a program: ``guest-exec`` (a path and its arguments, no shell; the agent searches
  ``PATH``) with its output captured, then ``guest-exec-status`` polled until it has
  exited; its output comes back base64-encoded. A program that outlives its time
  limit is killed with ``kill -KILL`` through the agent, as the agent itself has no
  way to end what it started.
- a file: ``guest-file-open`` (mode ``w``), ``guest-file-write`` in chunks of base64,
  ``guest-file-close``. It is written beside its place and renamed into it (``mv -f``
  through ``guest-exec``), so a reader in the guest sees the old file or the new one,
  never half of it; an agent that refuses ``guest-exec`` gets the file written in place.

An agent that does not answer raises :class:`~pragmash.errors.AgentUnreachable` (the
caller goes over ssh); one that answers with an error, a StepError.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pragmash import stages
from pragmash.driver_api import GuestAgents
from pragmash.errors import AgentUnreachable, StepError
from pragmash.textsafe import printable

#: Seconds libvirt waits for the agent's answer to each command.
CALL_TIMEOUT = 10
#: The first pause between two ``guest-exec-status`` calls; it doubles up to POLL_MAX.
POLL_FIRST = 0.05
POLL_MAX = 1.0
#: Bytes per ``guest-file-write`` (base64 makes them a third larger: well within what
#: the agent accepts in one command).
WRITE_CHUNK = 48 * 1024
#: How long the rename of a written file may take.
RENAME_TIMEOUT = 30.0


@dataclass(frozen=True)
class GuestRun:
    """A program that ended inside a guest: its exit status and what it wrote."""

    exit_code: int
    stdout: str
    stderr: str
    signal: int | None = None  # the signal that ended it, where one did
    truncated: bool = False  # the agent kept only the start of a long output

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Clock:
    """How the polling waits and reads time, and whether the step was stopped (Ctrl-C)."""

    sleep: Callable[[float], None]
    now: Callable[[], float]
    cancelled: Callable[[], bool] = lambda: False


def call(agent: GuestAgents, name: str, execute: str, arguments: dict[str, Any]) -> Any:
    """One agent command; its ``return`` value."""
    command = json.dumps({"execute": execute, "arguments": arguments})
    reply = agent.agent_command(name, command, CALL_TIMEOUT)
    try:
        return json.loads(reply)["return"]
    except (ValueError, KeyError, TypeError):
        raise StepError(
            f"{name}: the guest agent's answer to {execute} is not the agent protocol's: "
            f"{printable(reply[:200])!r}",
            stage=stages.GUEST_AGENT,
        ) from None


def _decoded(status: dict[str, Any], key: str) -> str:
    data = status.get(key)
    if not isinstance(data, str):
        return ""
    try:
        return base64.b64decode(data).decode("utf-8", errors="replace")
    except ValueError:
        return ""


def agent_exec(
    agent: GuestAgents, name: str, argv: Sequence[str], timeout: float, clock: Clock
) -> GuestRun:
    """``argv`` run inside ``name`` to its end (see the module docstring)."""
    started = call(
        agent,
        name,
        "guest-exec",
        {"path": argv[0], "arg": list(argv[1:]), "capture-output": True},
    )
    try:
        pid = int(started["pid"])
    except (KeyError, TypeError, ValueError):
        raise StepError(
            f"{name}: the guest agent started {argv[0]} but named no process",
            stage=stages.GUEST_AGENT,
        ) from None
    begin = clock.now()
    pause = POLL_FIRST
    while True:
        status = call(agent, name, "guest-exec-status", {"pid": pid})
        if status.get("exited"):
            signal = status.get("signal")
            code = status.get("exitcode")
            return GuestRun(
                exit_code=int(code) if code is not None else 128 + int(signal or 0),
                stdout=_decoded(status, "out-data"),
                stderr=_decoded(status, "err-data"),
                signal=int(signal) if signal is not None else None,
                truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
            )
        elapsed = clock.now() - begin
        if clock.cancelled() or elapsed >= timeout:
            _kill(agent, name, pid)
            if clock.cancelled():
                raise StepError(f"{name}: {argv[0]} stopped (interrupted)", stage=stages.EXEC)
            raise StepError(
                f"{name}: {argv[0]} did not end within {timeout:g} s: killed (pid {pid} in "
                "the guest)",
                stage=stages.EXEC,
            )
        clock.sleep(min(pause, max(0.0, timeout - elapsed)))
        pause = min(pause * 2, POLL_MAX)


def _kill(agent: GuestAgents, name: str, pid: int) -> None:
    """Best effort: the agent cannot end a program itself, ``kill`` inside the guest can."""
    with contextlib.suppress(StepError):
        call(agent, name, "guest-exec", {"path": "kill", "arg": ["-KILL", str(pid)]})


def _write(agent: GuestAgents, name: str, path: str, data: bytes) -> None:
    handle = call(agent, name, "guest-file-open", {"path": path, "mode": "w"})
    try:
        for at in range(0, len(data), WRITE_CHUNK) if data else ():
            chunk = data[at : at + WRITE_CHUNK]
            written = call(
                agent,
                name,
                "guest-file-write",
                {"handle": handle, "buf-b64": base64.b64encode(chunk).decode("ascii")},
            )
            if int(written.get("count", -1)) != len(chunk):
                raise StepError(
                    f"{name}: the guest agent wrote {written.get('count')} of {len(chunk)} "
                    f"bytes to {path}",
                    stage=stages.GUEST_AGENT,
                )
    finally:
        with contextlib.suppress(StepError):
            call(agent, name, "guest-file-close", {"handle": handle})


def agent_write_file(agent: GuestAgents, name: str, path: str, data: bytes, clock: Clock) -> str:
    """Put ``data`` at ``path`` inside ``name``; how, in words (see the module docstring)."""
    aside = f"{path}.pragmash-new"
    _write(agent, name, aside, data)
    try:
        renamed = agent_exec(agent, name, ["mv", "-f", aside, path], RENAME_TIMEOUT, clock)
    except AgentUnreachable:
        raise
    except StepError:
        renamed = None
    if renamed is not None and renamed.exit_code == 0:
        return f"{path} written through the guest agent"
    _write(agent, name, path, data)
    return f"{path} written in place through the guest agent (it could not rename)"
