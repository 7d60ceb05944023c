"""An interactive serial console in the terminal: keys to the guest, its output to the screen.

Ctrl-] leaves, as in ``virsh console`` and telnet. At a terminal the keyboard is put
in raw mode (every key goes to the guest, Ctrl-C included) and restored on the way
out, however the session ends. The guest's output is shown as it is: this is the
guest's own terminal, escape sequences and all.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import tty
from collections.abc import Callable, Iterator
from typing import TextIO

from pragmash.engine.hosts.console import ConsoleStream

ESCAPE = b"\x1d"  # Ctrl-]
POLL_SECONDS = 0.05


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    """Raw keyboard while attached; the terminal's settings come back in any case."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach(console: ConsoleStream, in_fd: int, show: Callable[[bytes], None]) -> str:
    """Relay until Ctrl-] (returns "escape"), the end of input ("eof") or the console's ("closed")."""
    with _raw(in_fd):
        try:
            while True:
                ready, _, _ = select.select([in_fd], [], [], POLL_SECONDS)
                if ready:
                    keys = os.read(in_fd, 1024)
                    if not keys:
                        return "eof"
                    before, escape, _ = keys.partition(ESCAPE)
                    if before:
                        console.write(before)
                    if escape:
                        return "escape"
                while True:
                    data = console.read()
                    if data is None:
                        return "closed"
                    if not data:
                        break
                    show(data)
        finally:
            console.close()


def shower(out: TextIO) -> Callable[[bytes], None]:
    """Write the guest's bytes to ``out``: its binary buffer where it has one, else decoded."""
    buffer = getattr(out, "buffer", None)

    def show(data: bytes) -> None:
        if buffer is not None:
            out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode("utf-8", errors="replace"))
            out.flush()

    return show
