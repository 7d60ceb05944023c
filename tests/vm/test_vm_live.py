"""Tier 3 (slow): ``--key``, ``--mem`` and ``pragmash console`` on real QEMU guests.

The guests know nothing of pragmash: the stock Debian 12 test disk of
scripts/build-distro-image (getty on ttyS0, qemu-guest-agent). Its cloud kernel has
the virtio drivers, so the VC boots it with ``fix all via none``: no virt-v2v
conversion. One VC, a frontend and a compute, boots once for the whole module with
``--key`` and ``--mem 640:384``, ``up`` held to the guest agent. The tests then ask
the guests themselves, through their agents (libvirt's ``qemuAgentCommand``:
guest-file-open/read/close, guest-exec), what reached them, and drive
``pragmash console`` and the REPL's ``console`` in a pseudo-terminal as a user would.

The recipe's last step waits for a line the stock guest never prints, so the run
fails there, as a run being debugged does: ``pragmash repl --attach`` opens it.
Guests send no traffic: user-mode interfaces whose links Debian never brings up.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from support.clirun import cli, cli_merged, step_line
from support.debianvc import write_debian_vc
from support.distroimage import distro_image_path
from support.guestagent import AGENT_SECONDS, agent, guest_file
from support.keys import KEY
from support.vmsite import remove_vmtest_domains, write_site

from pragmash.errors import EXIT_OK, EXIT_STEP_FAILED

pexpect = pytest.importorskip("pexpect")

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# Read at import: conftest points XDG_CACHE_HOME at a per-test folder while tests run.
IMAGE = distro_image_path()
VC = "vmlive"
FRONTEND, COMPUTE = f"{VC}-frontend", f"{VC}-compute-0"
MEM = {FRONTEND: 640, COMPUTE: 384}
RECIPE = """\
allocate 1
fix all via none
boot all
wait all up timeout 15m
# the site's own readiness line: a stock guest never prints it, so the run fails here
wait frontend console "cluster ready" timeout 5s
"""


@dataclass(frozen=True)
class Live:
    """The booted VC: the run's output, its site config, the folder it lives in."""

    output: str
    site: Path
    root: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if not IMAGE.is_file():
        pytest.fail(f"no Debian test image at {IMAGE}: run scripts/build-distro-image first")
    root = tmp_path_factory.mktemp("vm-live")
    repo = root / "repo"
    write_debian_vc(repo, VC, IMAGE)
    site = write_site(root, repo, up={VC: ["agent"]})
    key = root / "id_ed25519.pub"
    key.write_text(KEY + "\n")
    recipe = root / "live.prg"
    recipe.write_text(RECIPE)
    env = pytest.MonkeyPatch()
    conn = libvirt.open("qemu:///system")
    try:
        env.delenv("PRAGMASH_STATE_DIR", raising=False)  # the site's own state folder
        started = time.monotonic()
        code, output = cli_merged(
            str(recipe), "--vcname", VC, "--site", str(site), "--key", str(key), "--mem", "640:384"
        )
        print(output)
        print(f"booted and failed as meant after {time.monotonic() - started:.0f} s")
        assert code == EXIT_STEP_FAILED, output
        assert step_line(output, "wait all up").startswith("ok"), output
        assert step_line(output, 'wait frontend console "cluster ready"').startswith("FAIL")
        yield Live(output, site, root)
        code, cleaned = cli_merged("clean", VC, "--site", str(site))
        assert code == EXIT_OK, cleaned
    finally:
        env.undo()
        remove_vmtest_domains(conn, VC)
        conn.close()


# -- the guest agent --------------------------------------------------------------------


def guest_exec(dom: libvirt.virDomain, path: str, *args: str) -> str:
    """Run a program in the guest; its standard output (exit 0 asserted)."""
    pid = agent(dom, "guest-exec", {"path": path, "arg": list(args), "capture-output": True})
    deadline = time.monotonic() + AGENT_SECONDS
    while True:
        status = agent(dom, "guest-exec-status", {"pid": pid["pid"]})
        if status["exited"]:
            break
        assert time.monotonic() < deadline, f"{path} {args} did not end in the guest"
        time.sleep(0.2)
    assert status["exitcode"] == 0, status
    return base64.b64decode(status.get("out-data", "")).decode()


@pytest.fixture
def conn(live: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[libvirt.virConnect]:
    """qemu:///system; and pragmash reads the site's own ledger, as the fixture's run did."""
    monkeypatch.delenv("PRAGMASH_STATE_DIR", raising=False)
    c = libvirt.open("qemu:///system")
    yield c
    c.close()


# -- --key and --mem --------------------------------------------------------------------


def test_the_key_is_in_roots_authorized_keys_on_every_node(conn: libvirt.virConnect) -> None:
    for name in (FRONTEND, COMPUTE):
        dom = conn.lookupByName(name)
        keys = guest_file(dom, "/root/.ssh/authorized_keys").splitlines()
        assert KEY in keys, (name, keys)
        # as sshd's StrictModes wants them, or it ignores the file
        modes = guest_exec(
            dom, "/usr/bin/stat", "-c", "%a %U %n", "/root/.ssh", "/root/.ssh/authorized_keys"
        )
        assert modes.splitlines() == ["700 root /root/.ssh", "600 root /root/.ssh/authorized_keys"]
        assert f"<key>{KEY}</key>" in guest_file(dom, "/root/vc-out.xml")


def test_the_memory_given_is_what_the_domains_have_and_the_guests_see(
    live: Live, conn: libvirt.virConnect
) -> None:
    for name, mib in MEM.items():
        dom = conn.lookupByName(name)
        assert dom.maxMemory() == mib * 1024
        meminfo = guest_file(dom, "/proc/meminfo")
        match = re.search(r"^MemTotal:\s+(\d+) kB$", meminfo, re.MULTILINE)
        assert match, meminfo
        seen = int(match.group(1)) / 1024
        print(f"{name}: --mem {mib} MiB, the guest's MemTotal {seen:.0f} MiB")
        # the kernel keeps some for itself: what is left is most of it, never more
        assert 0.8 * mib < seen <= mib
    code, out, _ = cli("status", VC, "--site", str(live.site), "--json")
    assert code == EXIT_OK
    nodes = json.loads(out)["nodes"]
    assert {n["name"]: n["memory_mib"] for n in nodes} == MEM


# -- the console --------------------------------------------------------------------------


def spawn(*argv: str) -> Any:
    """``pragmash ARGV`` in a pseudo-terminal, with the site's own state folder."""
    env = {k: v for k, v in os.environ.items() if k != "PRAGMASH_STATE_DIR"}
    env.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120", LINES="40")
    pragmash = Path(sys.executable).with_name("pragmash")
    child = pexpect.spawn(
        str(pragmash), list(argv), env=env, encoding="utf-8", timeout=120, dimensions=(40, 120)
    )
    child.logfile_read = io.StringIO()  # what the terminal showed, printed at the end
    return child


def show_terminal(child: Any) -> None:
    """What the user saw (``pytest -s`` shows it), keys they typed not echoed by the guest."""
    print(child.logfile_read.getvalue().replace("\r\n", "\n"))


def say_on_console(dom: libvirt.virDomain) -> str:
    """The guest writes a line of its own on its serial port; the line."""
    line = f"hello-{uuid.uuid4().hex[:12]}"
    guest_exec(dom, "/bin/sh", "-c", f"echo {line} > /dev/ttyS0")
    return line


def test_console_shows_the_guest_takes_keys_and_ctrl_bracket_leaves(
    live: Live, conn: libvirt.virConnect
) -> None:
    dom = conn.lookupByName(FRONTEND)
    child = spawn("console", VC, "frontend", "--site", str(live.site))
    try:
        child.expect_exact(f"connected to the serial console of {FRONTEND}; Ctrl-] leaves")
        # what the guest prints shows up with no key pressed
        child.expect_exact(say_on_console(dom))
        child.send("\r")  # getty prints its prompt again
        child.expect_exact("debian12 login:")
        child.send("\x03")  # Ctrl-C goes to the guest, not to pragmash
        child.send("\r")
        child.expect_exact("debian12 login:")
        child.send("\x1d")  # Ctrl-]
        child.expect_exact(f"left the console of {FRONTEND}")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        show_terminal(child)
    assert child.exitstatus == 0, child.before
    assert dom.isActive()
    assert agent(dom, "guest-ping") == {}  # the guest runs on


def test_the_repls_console_command_on_a_failed_run(live: Live, conn: libvirt.virConnect) -> None:
    dom = conn.lookupByName(COMPUTE)
    child = spawn("repl", "--attach", VC, "--site", str(live.site))
    try:
        child.expect_exact("(pragmash)")
        child.send("console compute[0]\r")
        child.expect_exact(f"connected to the serial console of {COMPUTE}; Ctrl-] comes back")
        child.expect_exact(say_on_console(dom))
        child.send("\r")
        child.expect_exact("debian12 login:")
        child.send("\x1d")
        child.expect_exact(f"back from the console of {COMPUTE}")
        child.expect_exact("(pragmash)")
        child.send("where\r")  # the REPL goes on where it was
        child.expect_exact('wait frontend console "cluster ready" timeout 5s')
        child.expect_exact("(pragmash)")
        child.send("quit\r")
        child.expect_exact(f"still running: {FRONTEND}, {COMPUTE}")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        show_terminal(child)
    # the REPL's status is its run's: still failed at its last step, as it was attached
    assert child.exitstatus == EXIT_STEP_FAILED, child.before
    assert dom.isActive()
