"""The network namespace scripts/test runs libvirtd in: where guests may talk to each other."""

from __future__ import annotations

import os
import subprocess

#: scripts/test names the namespace it made here.
NETNS_VAR = "PRAGMASH_TEST_NETNS"


def running_netns() -> str | None:
    """The network namespace scripts/test runs libvirtd in, when it exists."""
    name = os.environ.get(NETNS_VAR, "")
    if not name:
        return None
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout.split()
    return name if name in listed else None
