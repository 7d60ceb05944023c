"""``pragmash console`` on the demo site, and the relay loop itself (keys in, guest out, Ctrl-]).

The real thing, a shell on a real guest's serial console, is tested on QEMU in
tests/vm/test_vm_live.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli

from pragmash.errors import EXIT_OK, EXIT_USER
from pragmash.ui.console import ESCAPE, attach

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")


class FakeConsole:
    """A guest that echoes what it is sent, upper-cased, one read later."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.pending = b"login: "
        self.closed = False

    def read(self) -> bytes | None:
        data, self.pending = self.pending, b""
        return data

    def write(self, data: bytes) -> None:
        self.sent.append(data)
        self.pending += data.upper()

    def close(self) -> None:
        self.closed = True


def test_keys_go_in_output_comes_out_and_ctrl_bracket_leaves() -> None:
    console = FakeConsole()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"root\r")
    shown: list[bytes] = []

    def later() -> None:
        """The escape comes in a later read, after the guest answered."""
        time.sleep(0.3)
        os.write(write_fd, b"ls" + ESCAPE + b"never sent")

    threading.Thread(target=later).start()
    how = attach(console, read_fd, shown.append)
    os.close(read_fd)
    os.close(write_fd)
    assert how == "escape"
    assert console.sent == [b"root\r", b"ls"]  # nothing after Ctrl-] reaches the guest
    assert b"".join(shown).startswith(b"login: ROOT\r")
    assert console.closed


def test_end_of_input_leaves_too() -> None:
    console = FakeConsole()
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    assert attach(console, read_fd, lambda _data: None) == "eof"
    os.close(read_fd)
    assert console.closed


@pytest.mark.libvirt
def test_the_simulated_engine_says_plainly_there_is_no_console(
    testconn: libvirt.virConnect,
) -> None:
    assert cli(ROCKS6, "--vcname", "calit2", "--set", "fix_method=none")[0] == EXIT_OK
    code, _, err = cli("console", "calit2", "frontend")
    assert code == EXIT_USER
    assert "calit2-frontend: there is no console to attach to: the engine is simulated" in err
    code, _, err = cli("console", "calit2", "compute[7]")
    assert code == EXIT_USER
    assert "'compute[7]' is not a node of calit2" in err


def test_console_of_an_unknown_vc() -> None:
    code, _, err = cli("console", "nosuch", "frontend")
    assert code == EXIT_USER
    assert "nosuch: no such VC in the ledger" in err
