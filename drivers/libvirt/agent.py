"""One QEMU guest agent command through libvirt (``virsh qemu-agent-command``).

:class:`~pragmash.drivers.libvirt.engine.LibvirtEngine` looks the domain up and hands
it here. libvirt's errors are sorted in two: the agent did not answer (no agent
channel in the domain, no agent started in the guest yet, a domain not running, an
engine without agents such as the test driver), which is
:class:`~pragmash.errors.AgentUnreachable` so the caller can go over ssh instead; and
an agent that answered with an error (a command it refuses, a program it cannot
start), which is a StepError carrying the agent's own words.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from pragmash import stages
from pragmash.drivers.lazy_import import lazy_module, loaded
from pragmash.errors import AgentUnreachable, StepError

if TYPE_CHECKING:
    import libvirt
    import libvirt_qemu
else:
    libvirt = lazy_module("libvirt")
    libvirt_qemu = lazy_module("libvirt_qemu")


@functools.cache
def _unreachable_codes() -> frozenset[int]:
    """libvirt's error codes that mean "no agent answered" (read on first use)."""
    return frozenset(
        {
            libvirt.VIR_ERR_AGENT_UNRESPONSIVE,  # not connected, not started, timed out
            libvirt.VIR_ERR_AGENT_UNSYNCED,
            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,  # "QEMU guest agent is not configured"
            libvirt.VIR_ERR_OPERATION_INVALID,  # the domain is not running
            libvirt.VIR_ERR_NO_SUPPORT,  # an engine without agents (test:///default)
            libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
            libvirt.VIR_ERR_NO_DOMAIN,
        }
    )


def _command_name(command: str) -> str:
    try:
        return str(json.loads(command).get("execute", "?"))
    except (ValueError, AttributeError):
        return "?"


def agent_command(dom: libvirt.virDomain | None, name: str, command: str, timeout: int) -> str:
    """The agent's reply to ``command`` (JSON text); see the module docstring for errors."""
    if dom is None:
        raise AgentUnreachable(f"{name}: no domain of that name is defined")
    try:
        reply = loaded(libvirt_qemu).qemuAgentCommand(dom, command, timeout, 0)
    except libvirt.libvirtError as exc:
        message = exc.get_error_message() or str(exc)
        if exc.get_error_code() in _unreachable_codes():
            raise AgentUnreachable(
                f"{name}: the QEMU guest agent does not answer: {message}"
            ) from exc
        raise StepError(
            f"{name}: the QEMU guest agent refused {_command_name(command)}: {message}",
            stage=stages.GUEST_AGENT,
        ) from exc
    if reply is None:
        raise AgentUnreachable(f"{name}: the QEMU guest agent gave no answer")
    return str(reply)
