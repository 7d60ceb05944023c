"""The small harness the run tests share: ``RunEnv``, a site config and a copy of the
demo repository under a test's folder, the CLI called in-process or as a subprocess,
and the ledger read the way ``status`` reads it.

test:///default keeps its domains per process, so in-process tests hold one
connection open (the state lives as long as a connection does) and start from a VC
with no domains. The ``env`` fixture (tests/conftest.py) makes one per test.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import libvirt

import pragmash
from pragmash.store.allocation import Allocation, current_allocation
from pragmash.store.journal import RunRecord, StepRecord, last_run, steps_of
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.vc.config.site import SiteConfig, load_site
from support.procs import kill_all

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


class SleepyRun(NamedTuple):
    proc: subprocess.Popen[str]
    flag: Path
    recipe: Path


@contextmanager
def sleepy_run(env: RunEnv) -> Iterator[SleepyRun]:
    """The sleepy recipe run as its own process, held at step 2 (``running``) till ``flag`` exists.

    On leaving, the process is killed (SIGKILL) if it still runs, and any waiting shell
    it left behind with it: the test ends with nothing of its own running.
    """
    recipe, flag = sleepy_recipe(env)
    proc = env.spawn(str(recipe), "--vcname", "calit2", "--allow-run")
    try:
        env.wait_for_step(proc, 2, "running")
        yield SleepyRun(proc, flag, recipe)
    finally:
        stop(proc)
        kill_all(str(flag))


BOOT_ALL = "allocate 2\nboot frontend\nboot compute\n"
