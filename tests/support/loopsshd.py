"""An sshd of our own on loopback addresses, for the access tests (``ssh``, ``ssh-config``,
``inventory``).

It plays a VC's nodes: it listens on each address given (all in 127.0.0.0/8, which
Linux routes to ``lo`` whole) on one free port, with its own host key, and accepts
one client key (``client_key``, made here; ``client_key.pub`` beside it, as a user's
``--key FILE.pub`` would be). Everything is in a temporary folder; the daemon is
stopped by its pid. Its log (``LogLevel DEBUG1``) shows what a client asked for:
a ``direct-tcpip`` channel is how an ``ssh -J`` jump reaches the next address.
Needs root (sshd's privilege separation) and ``/usr/sbin/sshd``, as
tests/support/secondhost.py does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SSHD = "/usr/sbin/sshd"


def missing() -> str | None:
    """Why an sshd of ours cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "an sshd of our own needs root (privilege separation)"
    for tool in (SSHD, "ssh", "ssh-keygen"):
        if shutil.which(tool) is None and not Path(tool).exists():
            return f"{tool} is not installed (scripts/setup installs openssh-server)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackSshd:
    """``with LoopbackSshd(["127.0.0.1", "127.1.1.254"]) as sshd: …`` (see the module)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.root = Path(tempfile.mkdtemp(prefix="pragmash-sshd-", dir="/tmp"))
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def client_key(self) -> Path:
        return self.root / "client_key"

    @property
    def log(self) -> str:
        return (self.root / "sshd.log").read_text(errors="replace")

    def start(self) -> LoopbackSshd:
        for key in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / key)],
                check=True,
                capture_output=True,
            )
        shutil.copy(self.root / "client_key.pub", self.root / "authorized_keys")
        listen = "".join(f"ListenAddress {a}\n" for a in self.addresses)
        (self.root / "sshd_config").write_text(
            f"{listen}Port {self.port}\nHostKey {self.root / 'host_key'}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "AllowTcpForwarding yes\nLogLevel DEBUG1\n"
            f"PidFile {self.root / 'sshd.pid'}\n",
            encoding="utf-8",
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
        self._proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(self.root / "sshd_config"), "-E", str(self.root / "sshd.log")],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                for address in self.addresses:
                    socket.create_connection((address, self.port), timeout=1).close()
                return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self.log
                    self.stop()
                    raise RuntimeError(f"sshd did not listen: {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LoopbackSshd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
