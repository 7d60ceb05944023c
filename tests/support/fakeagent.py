"""A QEMU guest agent in a test: answers the JSON commands qemu-ga answers, as qemu-ga does.

``guest-exec`` really runs the program (an argument list on this machine, no shell),
captures its output and hands it back base64-encoded through ``guest-exec-status``,
which says "not exited" ``pending`` times first (so a caller must poll), then waits
for the program's end; each guest's
``/root`` is a folder of the test's (``root/NODE``): paths under it in a program's
arguments and in ``guest-file-open`` are mapped there. ``answers=False`` plays an
agent that never answers (no channel, not started); ``exec_disabled`` an agent whose
``guest-exec`` the guest's policy turned off. Every command is kept in ``calls``.

Importable by tests: ``from fakeagent import FakeAgent, FakeEngine``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash import domain_states
from pragmash.errors import AgentUnreachable, StepError

GUEST_ROOT = "/root/"


@dataclass
class FakeAgent:
    root: Path
    answers: bool = True
    exec_disabled: bool = False
    pending: int = 2
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _procs: dict[int, tuple[subprocess.Popen[bytes], int]] = field(default_factory=dict)
    _files: dict[int, Any] = field(default_factory=dict)

    def _path(self, name: str, path: str) -> str:
        """A guest's /root/… as the folder ``root/NAME/`` (one per node) holds it."""
        if not path.startswith(GUEST_ROOT):
            return path
        return str(self.root / name / path[len(GUEST_ROOT) :])

    def agent_command(self, name: str, command: str, timeout: int) -> str:
        data = json.loads(command)
        execute, args = data["execute"], data.get("arguments", {})
        self.calls.append((name, execute, args))
        if not self.answers:
            raise AgentUnreachable(f"{name}: the QEMU guest agent does not answer: not connected")
        return json.dumps({"return": self._answer(name, execute, args)})

    def _answer(self, name: str, execute: str, args: dict[str, Any]) -> Any:
        if execute == "guest-exec":
            if self.exec_disabled:
                raise StepError(
                    f"{name}: the QEMU guest agent refused guest-exec: Command guest-exec "
                    "has been disabled",
                    stage="guest-agent",
                )
            argv = [self._path(name, a) for a in [args["path"], *args.get("arg", [])]]
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except FileNotFoundError:
                raise StepError(
                    f"{name}: the QEMU guest agent refused guest-exec: Failed to execute "
                    f"child process “{argv[0]}” (No such file or directory)",
                    stage="guest-agent",
                ) from None
            self._procs[proc.pid] = (proc, self.pending)
            return {"pid": proc.pid}
        if execute == "guest-exec-status":
            proc, left = self._procs[args["pid"]]
            if left > 0:
                self._procs[args["pid"]] = (proc, left - 1)
                return {"exited": False}
            out, err = proc.communicate()  # the program's end is the next answer
            answer: dict[str, Any] = {"exited": True}
            if proc.returncode < 0:
                answer["signal"] = -proc.returncode
            else:
                answer["exitcode"] = proc.returncode
            if out:  # qemu-ga leaves out what is empty
                answer["out-data"] = base64.b64encode(out).decode()
            if err:
                answer["err-data"] = base64.b64encode(err).decode()
            return answer
        if execute == "guest-file-open":
            handle = 1000 + len(self._files)
            path = self._path(name, args["path"])
            self._files[handle] = open(path, args.get("mode", "r") + "b")  # noqa: SIM115
            return handle
        if execute == "guest-file-write":
            data = base64.b64decode(args["buf-b64"])
            self._files[args["handle"]].write(data)
            return {"count": len(data), "eof": False}
        if execute == "guest-file-close":
            self._files.pop(args["handle"]).close()
            return {}
        raise StepError(f"{name}: the QEMU guest agent refused {execute}", stage="guest-agent")


@dataclass
class FakeEngine:
    """Just what reaching guests asks of an engine: node states and the agent."""

    agent: FakeAgent
    states: dict[str, str] = field(default_factory=dict)
    name: str = "fake"
    simulated: bool = False

    def state(self, name: str) -> str:
        return self.states.get(name, domain_states.RUNNING)

    def agent_command(self, name: str, command: str, timeout: int) -> str:
        return self.agent.agent_command(name, command, timeout)
