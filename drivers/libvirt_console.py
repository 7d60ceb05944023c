"""A node's serial console as a byte stream, through libvirt (what ``virsh console`` uses).

pragmash gives every domain a pty serial port whose output is also logged to a
file (:func:`pragmash.images.domain.render_domain`); libvirt's console stream
attaches to that pty on the domain's host, local or remote (``qemu+ssh://``), so no
terminal on the host is needed. The stream is non-blocking: the front end polls it
between reads of the keyboard, and one thread does both.
"""

from __future__ import annotations

import contextlib

import libvirt

from pragmash.errors import StepError, UserError

STAGE = "ve_driver/console"
CHUNK = 4096


class LibvirtConsole:
    """An open console: :meth:`read` what the guest printed, :meth:`write` keystrokes."""

    def __init__(self, conn: libvirt.virConnect, dom: libvirt.virDomain, name: str) -> None:
        self.name = name
        self._stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        try:
            # FORCE: take the console over from a stale session (a killed pragmash or virsh)
            dom.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot open the serial console of {name}: {exc.get_error_message()}",
                stage=STAGE,
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
                    f"the console of {self.name} closed: {exc.get_error_message()}", stage=STAGE
                ) from exc
            if n == -2:
                continue  # the stream is full: try again
            sent += n

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(libvirt.libvirtError):  # already gone with the domain
            self._stream.abort()


def open_console(conn: libvirt.virConnect, name: str, uri: str) -> LibvirtConsole:
    """The console of the running domain ``name``; a missing or stopped one is a UserError."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        raise UserError(f"{name}: no such domain on {uri}") from None
    if not dom.isActive():
        raise UserError(
            f"{name} is not running on {uri}: a console needs a running domain",
            hint=f"boot it first (e.g. `pragmash repl --attach VC`, then `boot {name}`)",
        )
    return LibvirtConsole(conn, dom, name)
