"""libvirt's domain state and reason codes in the words users read (``virsh list``'s).

Tables made on first use: they read libvirt's constants, and importing the engine
driver must not load libvirt (see :mod:`.lazy_import`).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from pragmash import domain_states
from pragmash.drivers.lazy_import import lazy_module

if TYPE_CHECKING:
    import libvirt
else:
    libvirt = lazy_module("libvirt")


@functools.cache
def shutoff_reasons() -> dict[int, str]:
    """Why a domain is shut off or crashed, in words (libvirt's reason codes)."""
    return {
        libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "the guest shut down (powered itself off)",
        libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "the domain was destroyed (forced off)",
        libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "the guest crashed",
        libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: "the domain was migrated away",
        libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "the domain was saved to a file",
        libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "the emulator failed to start or died",
        libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: "a snapshot was restored",
    }


@functools.cache
def state_words() -> dict[int, str]:
    """libvirt's state numbers in virsh's words, so users see what `virsh list` shows."""
    return {
        libvirt.VIR_DOMAIN_NOSTATE: domain_states.NO_STATE,
        libvirt.VIR_DOMAIN_RUNNING: domain_states.RUNNING,
        libvirt.VIR_DOMAIN_BLOCKED: domain_states.IDLE,
        libvirt.VIR_DOMAIN_PAUSED: domain_states.PAUSED,
        libvirt.VIR_DOMAIN_SHUTDOWN: domain_states.IN_SHUTDOWN,
        libvirt.VIR_DOMAIN_SHUTOFF: domain_states.SHUT_OFF,
        libvirt.VIR_DOMAIN_CRASHED: domain_states.CRASHED,
        libvirt.VIR_DOMAIN_PMSUSPENDED: domain_states.PMSUSPENDED,
    }


def missing_test_file(uri: str) -> str | None:
    """Why libvirt's test driver cannot open ``uri`` (``test:///PATH``, a host described by
    a file), said before libvirt is asked: asked, libvirt's XML parser writes an
    "I/O warning" of its own to stderr, past pragmash's messages. None when it can try."""
    if not uri.startswith("test:///") or uri == "test:///default":
        return None
    path = uri.removeprefix("test://").split("?", 1)[0]
    if os.path.isfile(path):
        return None
    return (
        f"the test driver's host file {path} is {'a folder' if os.path.isdir(path) else 'missing'}"
    )
