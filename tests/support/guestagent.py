"""Looking inside a real guest through its QEMU guest agent, as the vm tests check what it did.

The test's own reading, apart from pragmash's (engine/guests/agent.py): a test that
checked pragmash's work through pragmash's code would prove nothing about it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import libvirt
import libvirt_qemu

AGENT_SECONDS = 60


def agent(dom: libvirt.virDomain, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """One guest-agent command; its ``return`` value."""
    request: dict[str, Any] = {"execute": command}
    if arguments:
        request["arguments"] = arguments
    reply = libvirt_qemu.qemuAgentCommand(dom, json.dumps(request), AGENT_SECONDS, 0)
    return json.loads(reply)["return"]


def guest_run(
    dom: libvirt.virDomain, *argv: str, timeout: float = 900.0, poll: float = 2.0
) -> tuple[int, str]:
    """``argv`` run in the guest by its agent (no shell); its exit code and output (out, then err)."""
    started = agent(
        dom, "guest-exec", {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = agent(dom, "guest-exec-status", {"pid": started["pid"]})
        if status.get("exited"):
            out = base64.b64decode(str(status.get("out-data", ""))).decode(errors="replace")
            err = base64.b64decode(str(status.get("err-data", ""))).decode(errors="replace")
            return int(str(status.get("exitcode", -1))), out + err
        time.sleep(poll)
    raise AssertionError(f"{dom.name()}: {argv} still running after {timeout:g} s")


def guest_file(dom: libvirt.virDomain, path: str) -> str:
    """A file's text, read inside the guest (/proc files too: their size says 0)."""
    handle = agent(dom, "guest-file-open", {"path": path, "mode": "r"})
    chunks: list[bytes] = []
    try:
        while True:
            part = agent(dom, "guest-file-read", {"handle": handle, "count": 65536})
            chunks.append(base64.b64decode(part["buf-b64"]))
            if part["eof"] or not part["count"]:
                break
    finally:
        agent(dom, "guest-file-close", {"handle": handle})
    return b"".join(chunks).decode()


def addresses_by_mac(dom: libvirt.virDomain) -> dict[str, list[str]]:
    """Each interface's MAC and its IPv4 addresses, as the guest itself reports them."""
    found: dict[str, list[str]] = {}
    replies: Any = agent(dom, "guest-network-get-interfaces")
    for iface in replies:
        mac = iface.get("hardware-address", "")
        ips = [
            f"{a['ip-address']}/{a['prefix']}"
            for a in iface.get("ip-addresses", [])
            if a.get("ip-address-type") == "ipv4"
        ]
        if mac and mac != "00:00:00:00:00:00":
            found[mac] = ips
    return found
