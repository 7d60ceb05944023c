"""A node's serial console as a byte stream, through libvirt (what ``virsh console`` uses).

pragmash gives every domain a pty serial port whose output is also logged to a
file (:func:`pragmash.images.libvirt_xml.domain.render_domain`); libvirt's console stream
attaches to that pty on the domain's host, local or remote (``qemu+ssh://``), so no
terminal on the host is needed. The stream is non-blocking: the front end polls it
between reads of the keyboard, and one thread does both.

A non-blocking stream of libvirt's remote client only holds what the guest printed
once something reads the connection's socket: without an event loop that happens
only as a side effect of a call, so the guest's output would appear only after a
key was pressed. So, as ``virsh console`` does, the console runs libvirt's default
event loop (in a daemon thread, once per process; it must never stop, since
libvirt then keeps connections alive through it) and opens a connection of its
own after registering it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from pragmash import stages
from pragmash.drivers.lazy_import import lazy_module
from pragmash.drivers.libvirt.words import missing_test_file
from pragmash.errors import StepError, UserError

if TYPE_CHECKING:
    import libvirt
else:
    libvirt = lazy_module("libvirt")

CHUNK = 4096


class LibvirtConsole:
    """An open console: :meth:`read` what the guest printed, :meth:`write` keystrokes."""

    def __init__(self, conn: libvirt.virConnect, dom: libvirt.virDomain, name: str) -> None:
        self.name = name
        self._conn = conn
        self._stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        try:
            # FORCE: take the console over from a stale session (a killed pragmash or virsh)
            dom.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot open the serial console of {name}: {exc.get_error_message()}",
                stage=stages.CONSOLE,
            ) from exc
        self._closed = False

    def read(self) -> bytes | None:
        """What the guest printed since the last read: b"" for nothing yet, None once closed."""
        if self._closed:
            return None
        try:
            data = self._stream.recv(CHUNK)
        except libvirt.libvirtError:
            self._closed = True
            return None
        if data == -2:  # nothing to read now
            return b""
        if not data:
            self._closed = True
            return None
        return bytes(data)

    def write(self, data: bytes) -> None:
        """Send keystrokes; a console the guest or libvirt closed is said so."""
        sent = 0
        while sent < len(data) and not self._closed:
            try:
                n = self._stream.send(data[sent:])
            except libvirt.libvirtError as exc:
                self._closed = True
                raise StepError(
                    f"the console of {self.name} closed: {exc.get_error_message()}",
                    stage=stages.CONSOLE,
                ) from exc
            if n == -2:
                continue  # the stream is full: try again
            sent += n

    def close(self) -> None:
        """Let go of the console and of the connection opened for it (the guest runs on)."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(libvirt.libvirtError):  # already gone with the domain
                self._stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()


class _EventLoop:
    """libvirt's default event loop, registered and run once per process."""

    _lock = threading.Lock()
    _running = False

    @classmethod
    def ensure(cls) -> None:
        """Register the loop and start its thread, unless done already."""
        with cls._lock:
            if cls._running:
                return
            libvirt.virEventRegisterDefaultImpl()
            threading.Thread(target=cls._run, name="libvirt-events", daemon=True).start()
            cls._running = True

    @staticmethod
    def _run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()


def open_console(uri: str, name: str) -> LibvirtConsole:
    """The console of the running domain ``name`` on ``uri``; missing or stopped: a UserError.

    The console gets a connection of its own, opened once the event loop runs (see
    the module's docstring); :meth:`LibvirtConsole.close` closes it.
    """
    _EventLoop.ensure()
    missing = missing_test_file(uri)
    if missing is not None:
        raise StepError(f"cannot connect to libvirt at {uri}: {missing}", stage=stages.CONSOLE)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise StepError(
            f"cannot connect to libvirt at {uri}: {exc.get_error_message()}", stage=stages.CONSOLE
        ) from exc
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        conn.close()
        raise UserError(f"{name}: no such domain on {uri}") from None
    if not dom.isActive():
        conn.close()
        raise UserError(
            f"{name} is not running on {uri}: a console needs a running domain",
            hint=f"boot it first (e.g. `pragmash repl --attach VC`, then `boot {name}`)",
        )
    try:
        return LibvirtConsole(conn, dom, name)
    except StepError:
        conn.close()
        raise
