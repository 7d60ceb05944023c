"""Powering a defined libvirt domain off and on without forgetting it (``stop``, ``start``).

:class:`~pragmash.drivers.libvirt.engine.LibvirtEngine` looks the domain up and hands
it here; these are libvirt's ``shutdown`` (ACPI, not waited for), ``destroy`` (the
plug pulled; the definition, unlike the engine's own ``destroy``, kept) and
``create`` (start as defined: no definition is written again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pragmash import stages
from pragmash.drivers.lazy_import import lazy_module
from pragmash.errors import StepError

if TYPE_CHECKING:
    import libvirt
else:
    libvirt = lazy_module("libvirt")


def _message(exc: libvirt.libvirtError) -> str:
    return str(exc.get_error_message() or exc)


def _stopped_meanwhile(exc: libvirt.libvirtError) -> bool:
    """The domain stopped between our look and our call: nothing to do, not a failure."""
    return bool(exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID)


def request_shutdown(dom: libvirt.virDomain | None, name: str) -> bool:
    """Send an ACPI power-off and return; False when the domain is not running."""
    try:
        if dom is None or not dom.isActive():
            return False
        dom.shutdown()
    except libvirt.libvirtError as exc:
        if _stopped_meanwhile(exc):
            return False
        raise StepError(
            f"libvirt could not ask {name} to shut down: {_message(exc)}",
            stage=stages.SHUTDOWN,
        ) from exc
    return True


def power_off(dom: libvirt.virDomain | None, name: str) -> bool:
    """Pull the plug (``virsh destroy``); False when the domain was not running."""
    try:
        if dom is None or not dom.isActive():
            return False
        dom.destroy()
    except libvirt.libvirtError as exc:
        if _stopped_meanwhile(exc):
            return False
        raise StepError(
            f"libvirt could not power off {name}: {_message(exc)}", stage=stages.POWER_OFF
        ) from exc
    return True


def start(
    dom: libvirt.virDomain | None, name: str, uri: str, tail: Callable[[str], list[str]]
) -> bool:
    """Start the domain as defined (``virsh start``); a running one is left alone.

    False when no domain of that name is defined. ``tail`` gives the console's last
    lines for the error when QEMU refuses to start.
    """
    if dom is None:
        return False
    try:
        if not dom.isActive():
            dom.create()
    except libvirt.libvirtError as exc:
        raise StepError(
            f"libvirt could not start {name}: {_message(exc)}",
            stage=stages.START,
            output_tail=tail(name),
            hint=f"inspect it with: virsh -c {uri} dumpxml {name}",
        ) from exc
    return True
