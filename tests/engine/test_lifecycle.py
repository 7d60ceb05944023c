"""Lifecycle commands on test:///default: list, status, shutdown, clean (stop/start: test_power).

Also home of the small harness the run tests share (``RunEnv``): a site config and a
copy of the demo repository under tmp_path, the CLI called in-process or as a
subprocess, and the ledger read the way ``status`` reads it. test:///default keeps
its domains per process, so in-process tests hold one connection open (the state
lives as long as a connection does) and start from a VC with no domains.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

import pragmash
from pragmash.engine.commands import lifecycle
from pragmash.store.allocation import Allocation, current_allocation
from pragmash.store.journal import RunRecord, StepRecord, last_run, steps_of
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.vc.config.site import SiteConfig, load_site

pytestmark = pytest.mark.libvirt

DEMO_REPO = Path(pragmash.__file__).parent / "demo" / "repository"

SITE_TOML = """\
[engine]
uri = "{uri}"

[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
vlans = [100, 110]
public = [
  {{ ip = "192.0.2.10", fqdn = "vc-a.example.org" }},
  {{ ip = "192.0.2.11", fqdn = "vc-b.example.org" }},
]
bridges = {{ "eth0.2" = "default", "eth1" = "default" }}

[resources]
cpus = 16
reserve = 2

[paths]
state = "state"
temp = "tmp"
image_cache = "cache"
repository = "repo"
{extra}"""


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


@dataclass
class RunEnv:
    """A site of our own on test:///default, with a writable copy of the demo repository."""

    root: Path

    @property
    def site_path(self) -> Path:
        return self.root / "site.toml"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def site(self) -> SiteConfig:
        return load_site(self.site_path)

    def ledger(self) -> Ledger:
        return Ledger(self.site())

    def recipe(self, text: str, name: str = "test.prg") -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def cli(self, *args: str) -> Result:
        """The CLI in this process (domains land in this process's test:///default)."""
        out, err = io.StringIO(), io.StringIO()
        rc = cli.main([*args, "--site", str(self.site_path)], out=out, err=err)
        return Result(rc, out.getvalue(), err.getvalue())

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """The CLI as its own process, so it can be killed or interrupted."""
        return subprocess.Popen(
            [sys.executable, "-m", "pragmash.ui.cli.main", *args, "--site", str(self.site_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.root,
        )

    def allocation(self, vcname: str = "calit2") -> Allocation | None:
        return current_allocation(self.ledger(), vcname)

    def last_run(self, vcname: str = "calit2") -> RunRecord | None:
        return last_run(self.ledger(), vcname)

    def steps(self, vcname: str = "calit2") -> list[StepRecord]:
        run = self.last_run(vcname)
        assert run is not None
        return steps_of(self.ledger(), run.id)

    def wait_for_step(
        self, proc: subprocess.Popen[str], idx: int, outcome: str = "running"
    ) -> None:
        """Poll the journal (as another process would) until step ``idx`` shows ``outcome``."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"run ended early ({proc.returncode}): {proc.communicate()}")
            if self.ledger_exists():
                run = self.last_run()
                if run is not None:
                    steps = {s.idx: s for s in steps_of(self.ledger(), run.id)}
                    if idx in steps and steps[idx].outcome == outcome:
                        return
            time.sleep(0.05)
        proc.kill()
        raise AssertionError(f"step {idx} never showed {outcome!r}: {proc.communicate()}")

    def ledger_exists(self) -> bool:
        return self.site().ledger_path.exists()


def make_env(root: Path, uri: str = "test:///default", extra: str = "") -> RunEnv:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DEMO_REPO, root / "repo", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "site.toml").write_text(SITE_TOML.format(uri=uri, extra=extra), encoding="utf-8")
    return RunEnv(root)


def vc_domains(conn: libvirt.virConnect, vcname: str = "calit2") -> dict[str, libvirt.virDomain]:
    return {d.name(): d for d in conn.listAllDomains(0) if d.name().startswith(f"{vcname}-")}


def domain_macs(dom: libvirt.virDomain) -> list[str]:
    from lxml import etree

    root = etree.fromstring(dom.XMLDesc(0).encode())
    return [m.get("address", "") for m in root.iterfind("devices/interface/mac")]


@pytest.fixture
def env(tmp_path: Path) -> RunEnv:
    return make_env(tmp_path / "site")


SLEEPY = """\
allocate 2
boot frontend
run timeout 60 sh -c "while ! test -e {flag}; do sleep 0.1; done"
boot compute
boot all
ve_driver/state all
"""


def sleepy_recipe(env: RunEnv) -> tuple[Path, Path]:
    """A recipe whose step 2 waits until ``flag`` exists (for kill / Ctrl-C / lock tests).

    ``timeout 60`` bounds the waiting shell should a test leave it behind.
    """
    flag = env.root / "flag"
    return env.recipe(SLEEPY.format(flag=flag)), flag


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


# -- the tests ------------------------------------------------------------------------

BOOT_ALL = "allocate 2\nboot frontend\nboot compute\n"


def test_list_and_status_after_a_run(env: RunEnv, testconn: libvirt.virConnect) -> None:
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0

    listing = env.cli("list")
    assert listing.rc == 0
    assert "calit2" in listing.out and "vc-a.example.org" in listing.out
    assert "finished" in listing.out

    rows = json.loads(env.cli("list", "--json").out)
    assert rows == [
        {
            "vcname": "calit2",
            "state": "allocated",
            "nodes": 3,
            "fqdn": "vc-a.example.org",
            "last_run": 1,
            "last_outcome": "finished",
            "private_network": {
                "mode": "isolated",
                "name": "calit2-private",
                "bridge": "pragma100",
                "vlan": 100,
                "exists": True,
                "active": True,
                "state": "active",
                "missing": False,
            },
            "running": 3,
        }
    ]

    status = env.cli("status", "calit2")
    assert status.rc == 0, status.err
    assert "vc-a.example.org (192.0.2.10), VLAN 100" in status.out
    assert "run 1 (finished)" in status.out
    assert "<- ledger says" not in status.out  # engine and ledger agree
    assert "private network calit2-private (isolated, bridge pragma100, VLAN 100): active\n" in (
        status.out
    )

    data = json.loads(env.cli("status", "calit2", "--json").out)
    held = env.allocation()
    assert held is not None
    assert data["vcname"] == "calit2" and data["allocated"] is True
    assert data["public_fqdn"] == "vc-a.example.org" and data["vlan"] == held.vlan
    assert [n["name"] for n in data["nodes"]] == [n.name for n in held.nodes]
    for node, lease in zip(data["nodes"], held.nodes, strict=True):
        assert node["engine_state"] == "running" and node["mismatch"] is False
        assert node["macs"] == list(lease.macs) and node["cpus"] == lease.cpus
        assert node["private_ip"] == lease.private_ip
    assert [s["outcome"] for s in data["run"]["steps"]] == ["done", "done", "done"]
    assert data["run"]["steps"][1]["at"].endswith("test.prg:2:1")
    assert data["lock"] is None


def test_lifecycle_operations_work_without_a_front_end(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """The engine layer answers list/status and cleans; the CLI only formats the same data."""
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    site = env.site()
    assert [row.to_json() for row in lifecycle.list_vcs(site)] == json.loads(
        env.cli("list", "--json").out
    )
    status = lifecycle.vc_status(site, "calit2")
    assert status.to_json() == json.loads(env.cli("status", "calit2", "--json").out)
    assert {n.engine_state for n in status.nodes} == {"running"}

    notes: list[str] = []
    lifecycle.clean_vc(site, "calit2", note=notes.append)
    assert "destroyed calit2-frontend (was running)" in notes
    assert "released calit2's leases" in notes
    assert env.allocation() is None
    assert lifecycle.list_vcs(site) == []  # a cleaned VC is listed only when asked for
    assert [row.state for row in lifecycle.list_vcs(site, every=True)] == ["released"]


def test_list_repository_json(env: RunEnv) -> None:
    rows = json.loads(env.cli("list", "repository", "--json").out)
    assert [r["vcname"] for r in rows] == ["calit2", "tiny"]
    assert rows[0]["vc_in"] == str(env.repo / "calit2" / "vc-in.xml")
    human = env.cli("list", "repository")
    assert human.rc == 0 and f"repository {env.repo}" in human.out


def test_list_with_nothing(env: RunEnv) -> None:
    assert json.loads(env.cli("list", "--json").out) == []
    assert "no VCs" in env.cli("list").out


def test_status_of_unknown_vc_is_a_user_error(env: RunEnv) -> None:
    result = env.cli("status", "calit2")
    assert result.rc == 2
    assert "calit2: no such VC in the ledger" in result.err


def test_status_shows_engine_truth_and_clean_repairs(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    # someone destroys a domain by hand: the ledger still says it runs
    dom = testconn.lookupByName("calit2-compute-1")
    dom.destroy()
    dom.undefine()

    data = json.loads(env.cli("status", "calit2", "--json").out)
    by_name = {n["name"]: n for n in data["nodes"]}
    assert by_name["calit2-compute-1"]["engine_state"] == "absent"
    assert by_name["calit2-compute-1"]["ledger_says"] == "running"
    assert by_name["calit2-compute-1"]["mismatch"] is True
    assert by_name["calit2-frontend"]["mismatch"] is False
    human = env.cli("status", "calit2").out
    line = next(li for li in human.splitlines() if "calit2-compute-1" in li)
    assert "absent" in line and "<- ledger says running" in line
    assert "pragmash start calit2" in line  # brings the node back (issue 27)

    temp = env.site().temp_dir / "calit2"
    assert temp.exists()
    cleaned = env.cli("clean", "calit2")
    assert cleaned.rc == 0, cleaned.err
    assert "destroyed calit2-frontend (was running)" in cleaned.out
    assert "calit2-compute-1" not in cleaned.out  # already gone: nothing to destroy
    assert "released calit2's leases" in cleaned.out
    assert vc_domains(testconn) == {}
    assert not temp.exists()
    assert env.allocation() is None
    run = env.last_run()
    assert run is not None and run.outcome == "finished"  # a finished run keeps its outcome

    again = env.cli("clean", "calit2")  # safe to repeat
    assert again.rc == 0
    assert again.out == "calit2 is clean\n"
    rows = json.loads(env.cli("list", "--all", "--json").out)
    assert rows[0]["state"] == "released" and rows[0]["nodes"] == 0


def test_clean_removes_stray_domains_the_ledger_forgot(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    # the ledger lost the leases but the domains still run: clean finds them by name
    from pragmash.store.allocation import release

    assert release(env.ledger(), "calit2")
    cleaned = env.cli("clean", "calit2")
    assert cleaned.rc == 0
    assert "destroyed calit2-compute-0 (was running)" in cleaned.out
    assert vc_domains(testconn) == {}


def test_clean_marks_a_failed_run_cleaned(env: RunEnv, testconn: libvirt.virConnect) -> None:
    recipe = env.recipe("allocate 2\nboot frontend\nrun false\n")
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    assert env.cli("clean", "calit2").rc == 0
    run = env.last_run()
    assert run is not None and run.outcome == "cleaned"
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 2
    assert "cleaned" in resumed.err


def test_shutdown_stops_every_node(env: RunEnv, testconn: libvirt.virConnect) -> None:
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    result = env.cli("shutdown", "calit2", "--timeout", "10")
    assert result.rc == 0, result.err
    assert "stopped calit2-frontend, calit2-compute-0, calit2-compute-1" in result.out
    for dom in vc_domains(testconn).values():
        assert not dom.isActive()
    again = env.cli("shutdown", "calit2", "--timeout", "10")
    assert again.rc == 0 and "already off: calit2-frontend (shut off)" in again.out
    assert env.allocation() is not None  # shutdown keeps the leases
