"""A second libvirt host on this one machine, for the multi-host tests (issue 15).

A site with several hypervisors is played by a second libvirtd (with its own
virtlogd) that shares nothing with the first but the kernel:

* its own **mount namespace** (``unshare --mount``): a fresh tmpfs over
  ``/var/lib/libvirt`` (so its storage pools, images and QEMU state are invisible to
  the head node), over ``/var/cache/libvirt``, ``/var/log/libvirt`` and over ``/tmp``
  (so nothing the head node stages there is visible to its guests: a disk that
  reaches them must come through libvirt's storage API), a copy of ``/etc/libvirt``
  (its own persistent domains, networks and pools) and a folder of ours bound over
  ``/run/libvirt``, whose ``libvirt-sock`` is the one door into it;
* its own **network namespace** (``ip netns``): only loopback, so its guests reach
  nothing off the machine; :func:`trunk` joins a bridge in it to one in the first
  host's namespace, standing in for a site's VLAN trunk;
* reached like a real remote host, over ``qemu+ssh://root@127.0.0.1:PORT/system``,
  through an sshd of ours on loopback (key only, its own host key, authorized_keys
  and known_hosts in a temporary folder), with ``socket=`` naming the daemon's socket
  and ``proxy=netcat`` so the far side's ``nc -U`` joins exactly that socket (the
  ``virt-ssh-helper`` path is not relied on to honour ``socket=``).

Everything is stopped by pid (the domains destroyed first, so no QEMU outlives its
daemon), the namespace deleted and the folder removed. Needs root, libvirtd,
``/usr/sbin/sshd`` (openssh-server) and ``nc`` (netcat-openbsd): scripts/setup
installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import libvirt

SSHD = "/usr/sbin/sshd"
NEEDED = ("libvirtd", "virtlogd", "unshare", "ip", "ssh", "ssh-keygen", "nc", SSHD)
POOL_DIR = "/var/lib/libvirt/images/pragmash"  # inside the second host's own tmpfs

# Run inside the new mount and network namespace: $1 is our folder. The binds come
# before the tmpfs over /tmp, which hides the folder itself from the host's guests.
_START = r"""
set -eu
d=$1
mount --make-rprivate /
mount --bind "$d/run" /run/libvirt
mount --bind "$d/etc" /etc/libvirt
for dir in /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /tmp; do
  mount -t tmpfs -o size=1g,mode=0755 pragmash-host2 "$dir"
done
mkdir -p /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt/qemu
virtlogd -d --pid-file /run/libvirt/pragmash-virtlogd.pid
libvirtd -d --pid-file /run/libvirt/pragmash-libvirtd.pid
"""


def missing() -> str | None:
    """Why a second host cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "a second libvirt host needs root (namespaces, mounts, sshd)"
    for tool in NEEDED:
        if shutil.which(tool) is None and not Path(tool).exists():
            return f"{tool} is not installed (scripts/setup installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def _stop_pid(pid: int, what: str) -> None:
    """SIGTERM, then wait for it to go (SIGKILL after 10 s)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class SecondHost:
    """A second libvirtd in its own mount and network namespace, behind an sshd of ours."""

    def __init__(self, name: str = "host2") -> None:
        self.name = name
        self.netns = f"pragmash-{name}-{os.getpid()}"
        self.root = Path(tempfile.mkdtemp(prefix=f"pragmash-{name}-", dir="/tmp"))
        self.port = 0
        self._sshd: subprocess.Popen[bytes] | None = None
        self._netns_made = False
        self._pids: list[tuple[Path, str]] = [
            (self.root / "run" / "pragmash-libvirtd.pid", "libvirtd"),
            (self.root / "run" / "pragmash-virtlogd.pid", "virtlogd"),
        ]

    # -- addresses ------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        """The daemon's read-write socket, as the head node's side sees it."""
        return self.root / "run" / "libvirt-sock"

    @property
    def local_uri(self) -> str:
        """Straight to the socket: for the test's own checks, not what a site would say."""
        return f"qemu:///system?socket={self.socket}"

    @property
    def uri(self) -> str:
        """The URI a site config names: ssh to 127.0.0.1, then ``nc -U`` to the socket."""
        ssh = self.root / "ssh"
        return (
            f"qemu+ssh://root@127.0.0.1:{self.port}/system?socket={self.socket}"
            f"&keyfile={ssh / 'client_key'}&command={ssh / 'ssh'}&proxy=netcat"
        )

    # -- start ----------------------------------------------------------------------

    def start(self) -> SecondHost:
        try:
            self._start_libvirtd()
            self._start_sshd()
            self._wait_for_uri()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_libvirtd(self) -> None:
        (self.root / "run").mkdir()
        etc = self.root / "etc"
        etc.mkdir()
        for item in Path("/etc/libvirt").iterdir():  # the daemons' settings, none of the state
            if item.is_file():
                shutil.copy2(item, etc / item.name)
        if Path("/etc/libvirt/nwfilter").is_dir():
            shutil.copytree("/etc/libvirt/nwfilter", etc / "nwfilter")
        qemu_conf = etc / "qemu.conf"
        text = qemu_conf.read_text(encoding="utf-8") if qemu_conf.exists() else ""
        if 'user = "root"' not in text:
            qemu_conf.write_text(text + 'user = "root"\ngroup = "root"\n', encoding="utf-8")
        _run(["ip", "netns", "add", self.netns])
        self._netns_made = True
        _run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"])
        in_ns = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation"]
        _run([*in_ns, "private", "sh", "-c", _START, "host2-start", str(self.root)])

    def _start_sshd(self) -> None:
        ssh = self.root / "ssh"
        ssh.mkdir(mode=0o700)
        for key in ("host_key", "client_key"):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / key)])
        shutil.copy(ssh / "client_key.pub", ssh / "authorized_keys")
        self.port = _free_port()
        host_key = (ssh / "host_key.pub").read_text(encoding="utf-8").strip()
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key}\n", encoding="utf-8")
        (ssh / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {ssh / 'host_key'}\n"
            f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {ssh / 'sshd.pid'}\n",
            encoding="utf-8",
        )
        # libvirt runs `command -p PORT -l root -i keyfile … 127.0.0.1 sh -c …`: the
        # wrapper checks the host key against our known_hosts, never root's own
        wrapper = ssh / "ssh"
        wrapper.write_text(
            "#!/bin/sh\nexec ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "
            f'-o UserKnownHostsFile={ssh / "known_hosts"} "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
        self._sshd = subprocess.Popen(
            [SSHD, "-D", "-f", str(ssh / "sshd_config"), "-E", str(ssh / "sshd.log")],
            stdin=subprocess.DEVNULL,
        )

    def _wait_for_uri(self) -> None:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # tries before sshd listens
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                if time.monotonic() > deadline:
                    log = (self.root / "ssh" / "sshd.log").read_text(errors="replace")
                    raise RuntimeError(f"no answer at {self.uri}: {exc}\n{log}") from exc
                time.sleep(0.2)
                continue
            conn.close()
            return

    # -- stop -----------------------------------------------------------------------

    def stop(self) -> None:
        """Domains destroyed, daemons stopped by pid, namespace and folder gone."""
        if self.socket.exists():
            self._destroy_domains()
        for pidfile, what in self._pids:
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            _stop_pid(pid, what)
        if self._sshd is not None:
            self._sshd.terminate()
            try:
                self._sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._sshd.kill()
                self._sshd.wait()
            self._sshd = None
        if self._netns_made:
            subprocess.run(["ip", "netns", "delete", self.netns], check=False)
            self._netns_made = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _destroy_domains(self) -> None:
        try:
            conn = libvirt.open(self.local_uri)
        except libvirt.libvirtError:
            return
        try:
            for dom in conn.listAllDomains(0):
                if dom.isActive():
                    dom.destroy()
        finally:
            conn.close()

    def __enter__(self) -> SecondHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def trunk(bridge: str, netns_a: str, netns_b: str) -> None:
    """Bridge ``bridge`` in both namespaces, joined by a veth pair: a VLAN's trunk.

    Each end is made up with no address: the guests on either side share one
    Ethernet segment that exists only inside the two namespaces.
    """
    end_a, end_b = f"{bridge}a"[:15], f"{bridge}b"[:15]
    for netns in (netns_a, netns_b):
        _run(["ip", "-n", netns, "link", "add", bridge, "type", "bridge"])
        _run(["ip", "-n", netns, "link", "set", bridge, "up"])
    _run(
        ["ip", "-n", netns_a, "link", "add", end_a, "type", "veth", "peer", end_b, "netns", netns_b]
    )
    for netns, end in ((netns_a, end_a), (netns_b, end_b)):
        _run(["ip", "-n", netns, "link", "set", end, "master", bridge])
        _run(["ip", "-n", netns, "link", "set", end, "up"])


def untrunk(bridge: str, netns_a: str, netns_b: str) -> None:
    """Remove what :func:`trunk` made (deleting one end of a veth pair removes both)."""
    for netns in (netns_a, netns_b):
        subprocess.run(
            ["ip", "-n", netns, "link", "delete", f"{bridge}a"[:15]],
            check=False,
            capture_output=True,
        )
        subprocess.run(
            ["ip", "-n", netns, "link", "delete", bridge], check=False, capture_output=True
        )
