"""Shared test setup: every test gets its own state and cache folders.

pragmash keeps its ledger in the site's state folder and staged images in the
cache; pointing both at a per-test temporary folder keeps tests apart and keeps
them away from a developer's real ~/.local/state/pragmash.

The ``vm`` tier needs a libvirtd on qemu:///system and libguestfs. Where they are
missing the tier is skipped, except under ``PRAGMASH_REQUIRE_VM=1`` (CI), where a
skip would hide that the tier never ran, so it fails instead.

The ``slow`` tier (a full virt-v2v conversion of a real Debian guest, minutes under
TCG) runs with ``PRAGMASH_SLOW=1`` or ``PRAGMASH_REQUIRE_VM=1`` (CI: nothing is
skipped there) on the image scripts/build-distro-image makes; scripts/test builds it
once and caches it.

The ``guest_net`` tests (vm tests whose guests talk to each other) run only where
scripts/test started libvirtd inside a network namespace of its own and named it in
``$PRAGMASH_TEST_NETNS``: nothing a guest sends can then leave the machine. With a
libvirtd that was already running they are skipped (failed under REQUIRE_VM).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from support.netns import NETNS_VAR, running_netns
from support.repldriver import RECIPE as REPL_RECIPE
from support.runenv import RunEnv, make_env

# A test run started in the background of a non-interactive shell (`cmd &`, nohup, some
# CI runners) inherits SIGINT ignored, and Python then keeps it ignored: the Ctrl-C
# tests' SIGINT would do nothing and they would fail for a reason that is not
# pragmash's. Tests get the SIGINT a terminal gives (children then get the default too).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PRAGMASH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("PRAGMASH_SITE", raising=False)
    # neither a developer's own site config nor this machine's /etc/pragmash one
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("PRAGMASH_SYSTEM_SITE", str(tmp_path / "etc-pragmash-site.toml"))
    monkeypatch.setenv("LIBGUESTFS_BACKEND", "direct")
    monkeypatch.setenv("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    yield
    # a finished run's engine may sit in a reference cycle, its test:///default connection
    # (and so the driver's domains) kept open until the collector runs: close them now, so
    # the next test starts from an empty test driver whatever the collector's timing
    gc.collect()
    _forget_test_driver_networks()


def _forget_test_driver_networks() -> None:
    """VCs' private networks a test made on this process's test:///default.

    The test driver's state lives while any connection in the process is open, and
    engines keep theirs: without this, the next test's VC of the same name would find
    the last one's network (on another VLAN) and rightly refuse it.
    """
    conn = libvirt.open("test:///default")
    try:
        for net in conn.listAllNetworks(0):
            if net.name().endswith("-private"):
                if net.isActive():
                    net.destroy()
                net.undefine()
    finally:
        conn.close()


def _vm_tier_missing() -> str | None:
    """Why the vm tier cannot run here, or None when it can."""
    for tool in ("qemu-img", "guestfish", "virsh", "mke2fs", "sfdisk"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        proc = subprocess.run(
            ["virsh", "-c", "qemu:///system", "version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"virsh failed: {err}"
    if proc.returncode != 0:
        return "no libvirtd answers on qemu:///system (scripts/test starts one as root)"
    return None


SLOW_OPT_IN = "PRAGMASH_SLOW"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = os.environ.get("PRAGMASH_REQUIRE_VM") == "1"
    if os.environ.get(SLOW_OPT_IN) != "1" and not required:
        # minutes each (a full virt-v2v conversion): never part of the default run
        skip_slow = pytest.mark.skip(reason=f"slow tier: opt in with {SLOW_OPT_IN}=1")
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(skip_slow)
    vm_items = [item for item in items if item.get_closest_marker("vm")]
    if not vm_items:
        return
    net_items = [item for item in vm_items if item.get_closest_marker("guest_net")]
    if net_items and running_netns() is None:
        why_net = (
            f"guests that talk need libvirtd in a network namespace of the test run's own "
            f"(${NETNS_VAR}; scripts/test makes one when no libvirtd answers)"
        )
        if os.environ.get("PRAGMASH_REQUIRE_VM") == "1":
            config._pragmash_vm_missing = why_net  # type: ignore[attr-defined]
            net_mark = pytest.mark.usefixtures("_vm_tier_required")
        else:
            net_mark = pytest.mark.skip(reason=f"vm tier: {why_net}")
        for item in net_items:
            item.add_marker(net_mark)
    why = _vm_tier_missing()
    if why is None:
        for item in vm_items:
            item.add_marker(pytest.mark.usefixtures("_vm_networks_left_behind"))
        return
    if os.environ.get("PRAGMASH_REQUIRE_VM") == "1":
        mark = pytest.mark.usefixtures("_vm_tier_required")
        config._pragmash_vm_missing = why  # type: ignore[attr-defined]
    else:
        mark = pytest.mark.skip(reason=f"vm tier: {why}")
    for item in vm_items:
        item.add_marker(mark)


@pytest.fixture(scope="session")
def _vm_networks_left_behind() -> Iterator[None]:
    """VCs' private networks the vm tier made and a failed test did not clean, removed.

    libvirtd keeps a network's definition on disk, so one left behind outlives the
    daemon scripts/test starts, and the next run's VC on that VLAN rightly refuses a
    bridge name already taken. Only networks that appeared during this session go.
    """
    conn = libvirt.open("qemu:///system")
    before = {net.name() for net in conn.listAllNetworks(0)}
    yield
    try:
        for net in conn.listAllNetworks(0):
            if net.name() not in before and net.name().endswith("-private"):
                if net.isActive():
                    net.destroy()
                net.undefine()
    finally:
        conn.close()


@pytest.fixture
def _vm_tier_required(request: pytest.FixtureRequest) -> None:
    why = getattr(request.config, "_pragmash_vm_missing", "unknown")
    pytest.fail(f"PRAGMASH_REQUIRE_VM=1 but the vm tier cannot run: {why}")


@pytest.fixture
def testconn() -> Iterator[libvirt.virConnect]:
    """This process's test:///default, emptied of demo VC domains, kept alive for the test.

    test:///default keeps its state only while a connection is open in the process, and
    every connection shares it: the fixture holds one open and wipes calit2/tiny domains
    before and after.
    """
    conn = libvirt.open("test:///default")

    def wipe() -> None:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(("calit2-", "tiny-")):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()

    wipe()
    yield conn
    wipe()
    conn.close()


@pytest.fixture
def no_pager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long REPL output printed, not paged: for tests that are not about the pager."""
    monkeypatch.setenv("PAGER", "cat")


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    """Keys for a REPL under test: prompt_toolkit's pipe input and a dummy output."""
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """The REPL tests' frontend-and-computes recipe, written into the test's folder."""
    path = tmp_path / "cluster.prg"
    path.write_text(REPL_RECIPE, encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path) -> RunEnv:
    """A site and a copy of the demo repository under this test's folder (support/runenv)."""
    return make_env(tmp_path / "site")
