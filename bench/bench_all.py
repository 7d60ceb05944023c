"""Every figure of the performance targets, as ratios with the target beside each.

One command prints one table (see the README's "Benchmarks"):

    .venv/bin/python bench/bench_all.py [--quick] [--baseline REV] [--only SECTION]...

Rows, each measured in this one run so the ratios compare like with like:

- **CPU**: seconds of CPU (this process, all threads) for ``run`` (allocate, boot
  frontend, boot compute, wait compute running), ``status`` and ``clean`` of a VC of
  N computes, on 50 libvirt test-driver hosts (``test:///PATH.xml``) and on one.
  Ratios: N=4096 / N=1024 on 50 hosts (linear is 4x), and 50 hosts / 1 host at one N.
- **SQL**: statements and transactions per command, counted by a SQLite trace callback
  on every connection the command opens (``BEGIN``/``COMMIT`` are not statements;
  ``BEGIN IMMEDIATE`` is a write transaction).
- **libvirt**: calls per node per step, counted by a wrapper around every method of
  the libvirt binding's classes, from recipes that differ by one step.
- **overhead**: bench_boot.py's pragmash / direct libvirt, in this process.
- **start-up**: CPU seconds of ``pragmash --help``, ``check``, ``list`` and ``status``
  in fresh processes, and whether each imported prompt_toolkit, the http client,
  libvirt or lark (``-X importtime``): with pragmash's bytecode compiled once (as an
  installed package has it) and compiled from source in every process
  (``PYTHONDONTWRITEBYTECODE=1``). With ``--baseline REV`` the same commands run on that
  commit's code side by side.

A status or clean runs in its own command, as a user would: libvirt's test driver
keeps a file host's domains only for the connection that made them, so those two find
the domains absent (the same on 1 and 50 hosts; the figures are pragmash's own work).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import io
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_boot
import bench_placement

from pragmash.ui.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
RECIPE_STEPS = ("allocate $num_compute", "boot frontend", "boot compute", "wait compute running")
HOSTS = 50


# -- counting -------------------------------------------------------------------------


@dataclass
class Counts:
    """What one command did: SQL statements, transactions, connections, libvirt calls."""

    statements: int = 0
    transactions: int = 0
    writes: int = 0
    connections: int = 0
    libvirt: collections.Counter[str] = field(default_factory=collections.Counter)

    def calls(self) -> int:
        return sum(self.libvirt.values())


_COUNTS: list[Counts] = []


def _trace(statement: str) -> None:
    if not _COUNTS:
        return
    head = statement.lstrip().upper()
    counts = _COUNTS[-1]
    if head.startswith("BEGIN"):
        counts.transactions += 1
        counts.writes += head.startswith("BEGIN IMMEDIATE")
    elif not head.startswith(("COMMIT", "ROLLBACK", "END")):
        counts.statements += 1


_real_connect = sqlite3.connect


def _counting_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn: sqlite3.Connection = _real_connect(*args, **kwargs)
    if _COUNTS:
        _COUNTS[-1].connections += 1
        conn.set_trace_callback(_trace)
    return conn


def _wrap_libvirt() -> None:
    """Every public method of the binding's classes (and ``open``) counts its calls."""

    def counted(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _COUNTS:
                _COUNTS[-1].libvirt[name] += 1
            return call(*args, **kwargs)

        return wrapper

    for cls in (
        libvirt.virConnect,
        libvirt.virDomain,
        libvirt.virNetwork,
        libvirt.virStoragePool,
        libvirt.virStorageVol,
    ):
        for attr, value in list(vars(cls).items()):
            if callable(value) and not attr.startswith("_"):
                setattr(cls, attr, counted(f"{cls.__name__}.{attr}", value))
    for attr in ("open", "openReadOnly", "openAuth"):
        setattr(libvirt, attr, counted(attr, getattr(libvirt, attr)))


@contextlib.contextmanager
def counting() -> Iterator[Counts]:
    counts = Counts()
    _COUNTS.append(counts)
    try:
        yield counts
    finally:
        _COUNTS.pop()


# -- commands -------------------------------------------------------------------------


def cli(args: list[str]) -> float:
    """CPU seconds of one ``pragmash`` command run in this process (exit 0 asserted)."""
    out, err = io.StringIO(), io.StringIO()
    start = time.process_time()
    code = main(args, out=out, err=err)
    spent = time.process_time() - start
    assert code == 0, f"{args}: exit {code}\n{out.getvalue()[-2000:]}{err.getvalue()[-2000:]}"
    return spent


@dataclass
class Site:
    """A bench site: its config, one recipe per number of steps, a fresh state per run."""

    path: Path
    hosts: int

    def recipe(self, steps: int) -> Path:
        path = self.path.parent / f"steps{steps}.prg"
        path.write_text("\n".join(RECIPE_STEPS[:steps]) + "\n", "utf-8")
        return path

    def fresh_state(self) -> None:
        state = self.path.parent / "state"
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(self.path.parent / "tmp", ignore_errors=True)
        os.environ["PRAGMASH_STATE_DIR"] = str(state)

    def run(self, n: int, steps: int = len(RECIPE_STEPS)) -> float:
        self.fresh_state()
        return cli(
            [
                str(self.recipe(steps)),
                "--vcname",
                "calit2",
                "--num_compute",
                str(n),
                "--site",
                str(self.path),
            ]
        )

    def command(self, *words: str) -> float:
        return cli([*words, "--site", str(self.path)])


def make_sites(root: Path, largest: int) -> dict[int, Site]:
    """50 hosts and 1 host, each with room for ``largest`` computes (1 CPU, 1 GiB each)."""
    sites = {}
    for hosts in (HOSTS, 1):
        cpus = largest // hosts + 8
        path = bench_placement.make_site(
            root / f"hosts{hosts}", hosts, cpus=cpus, mib=(cpus + 8) << 10
        )
        sites[hosts] = Site(path, hosts)
    return sites


# -- the table ------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    value: str
    target: str
    ok: bool | None = None

    def line(self) -> str:
        verdict = {True: "ok", False: "MISSED", None: ""}[self.ok]
        return f"{self.what:<78} {self.value:>8}  {self.target:<18} {verdict}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def cpu_rows(sites: dict[int, Site], small: int, large: int) -> list[Row]:
    spent: dict[tuple[str, int, int], float] = {}
    for hosts, site in sites.items():
        for n in (small, large):
            spent["run", hosts, n] = site.run(n)
            spent["status", hosts, n] = site.command("status", "calit2")
            spent["clean", hosts, n] = site.command("clean", "calit2")
    rows = []
    for cmd in ("run", "status", "clean"):
        a, b = spent[cmd, HOSTS, large], spent[cmd, HOSTS, small]
        rows.append(
            Row(
                f"cpu {cmd}: N={large} / N={small}, {HOSTS} hosts ({a:.2f}s / {b:.2f}s)",
                f"{ratio(a, b):.2f}x",
                f"<= {large / small * 1.1:.1f}x",
                ratio(a, b) <= large / small * 1.1,
            )
        )
        for n in (small, large):
            a, b = spent[cmd, HOSTS, n], spent[cmd, 1, n]
            rows.append(
                Row(
                    f"cpu {cmd}: {HOSTS} hosts / 1 host, N={n} ({a:.2f}s / {b:.2f}s)",
                    f"{ratio(a, b):.2f}x",
                    "<= 1.2x",
                    ratio(a, b) <= 1.2,
                )
            )
    return rows


def sql_rows(site: Site, sizes: tuple[int, ...]) -> list[Row]:
    rows = []
    for n in sizes:
        site.fresh_state()
        with counting() as run:
            cli(
                [
                    str(site.recipe(len(RECIPE_STEPS))),
                    "--vcname",
                    "calit2",
                    "--num_compute",
                    str(n),
                    "--site",
                    str(site.path),
                ]
            )
        with counting() as status:
            site.command("status", "calit2")
        with counting() as listing:
            site.command("list")
        with counting() as clean:
            site.command("clean", "calit2")
        nodes = n + 1
        steps = len(RECIPE_STEPS)
        rows += [
            Row(
                f"sql run N={n}, {site.hosts} hosts: statements per node ({run.statements})",
                f"{run.statements / nodes:.2f}",
                "<= 4",
                run.statements / nodes <= 4,
            ),
            Row(
                f"sql run N={n}: write transactions / (steps + 1) ({run.writes} / {steps + 1})",
                f"{ratio(run.writes, steps + 1):.2f}",
                "<= 1",
                run.writes <= steps + 1,
            ),
            Row(
                f"sql run N={n}: transactions, connections",
                f"{run.transactions}, {run.connections}",
                "(set-up once)",
                None,
            ),
        ]
        for name, c in (("status", status), ("list", listing), ("clean", clean)):
            rows.append(
                Row(
                    f"sql {name} N={n}: statements per node ({c.statements}; "
                    f"{c.transactions} txn, {c.connections} conn)",
                    f"{c.statements / nodes:.2f}",
                    "O(1): flat in N",
                    None,
                )
            )
    return rows


def libvirt_rows(site: Site, n: int) -> list[Row]:
    """libvirt calls of the boot step per node, and what it costs once per host.

    The boot step is measured at N and N/2 computes: the difference over N/2 nodes is
    what one more node costs (the target: define and start, 2), the rest is fixed work
    on each host the VC uses (its private network checked or made, capabilities).
    """
    counted: dict[tuple[int, int], Counts] = {}
    for size, steps in ((n, 2), (n, 3), (n, 4), (n // 2, 2), (n // 2, 3)):
        site.fresh_state()
        with counting() as c:
            site.run(size, steps)
        counted[size, steps] = c
    with counting() as status:
        site.command("status", "calit2")
    with counting() as clean:
        site.command("clean", "calit2")
    boot = counted[n, 3].libvirt - counted[n, 2].libvirt
    half = counted[n // 2, 3].libvirt - counted[n // 2, 2].libvirt
    per_node = (sum(boot.values()) - sum(half.values())) / (n - n // 2)
    per_host = (sum(boot.values()) - per_node * n) / site.hosts
    wait = counted[n, 4].calls() - counted[n, 3].calls()
    grown = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in (boot - half).most_common(3))
    same = collections.Counter({k: v for k, v in boot.items() if half[k] == v})
    fixed = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in same.most_common(4))
    return [
        Row(
            f"libvirt boot compute, N={n // 2}->{n}, {site.hosts} hosts: per node ({grown})",
            f"{per_node:.2f}",
            "<= 2",
            per_node <= 2,
        ),
        Row(
            f"libvirt boot compute: per host, once ({fixed}, ...)",
            f"{per_host:.1f}",
            "O(1) per host",
            None,
        ),
        Row(
            "libvirt wait compute running (1 round): per node",
            f"{wait / n:.2f}",
            "<= 1",
            wait / n <= 1,
        ),
        Row("libvirt status: per node", f"{status.calls() / (n + 1):.2f}", "O(1)", None),
        Row("libvirt clean: per node", f"{clean.calls() / (n + 1):.2f}", "O(1)", None),
    ]


def overhead_rows(sizes: tuple[int, ...]) -> list[Row]:
    targets = {1: 10.0, 256: 1.5, 1024: 1.25}
    conn = libvirt.open("test:///default")  # keeps the shared test driver alive
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for n in sizes:
            ours, theirs = [], []
            for _ in range(3):
                bench_boot.clear(conn, "calit2-")
                ours.append(bench_boot.through_pragmash(n, workdir, max(sizes)))
                bench_boot.clear(conn, "direct-")
                theirs.append(bench_boot.directly(conn, n))
            a, b = statistics.median(ours), statistics.median(theirs)
            target = targets.get(n)
            rows.append(
                Row(
                    f"overhead boot N={n}: pragmash / direct libvirt ({a:.3f}s / {b:.3f}s)",
                    f"{ratio(a, b):.2f}x",
                    f"<= {target}x" if target else "",
                    None if target is None else ratio(a, b) <= target,
                )
            )
        bench_boot.clear(conn, "calit2-")
        bench_boot.clear(conn, "direct-")
    conn.close()
    return rows


# -- start-up -------------------------------------------------------------------------

WATCHED = {
    "prompt_toolkit": "prompt_toolkit",
    "http.client": "http",
    "libvirtmod": "libvirt",
    "lark": "lark",
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def startup(code_dir: Path, args: list[str], env: dict[str, str]) -> tuple[float, set[str]]:
    """Median CPU seconds of ``python -m pragmash ARGS`` from ``code_dir`` (CPU, not wall:
    the figure must not depend on what else the machine runs); what it imported."""
    cmd = [sys.executable, "-X", "importtime", "-m", "pragmash", *args]
    env = {**env, "PYTHONPATH": str(code_dir)}
    times = []
    imported: set[str] = set()
    for _ in range(5):
        start = _children_cpu()
        done = subprocess.run(cmd, cwd=code_dir, env=env, capture_output=True, text=True)
        times.append(_children_cpu() - start)
        assert done.returncode == 0, f"{code_dir}: pragmash {args}: {done.stderr[-2000:]}"
        names = set(re.findall(r"\|\s+(\S+)\s*$", done.stderr, re.M))
        imported = {label for mod, label in WATCHED.items() if mod in names}
    return statistics.median(times), imported


#: How Python finds pragmash's code: compiled once, as an installed package has it (pip
#: compiles at install time), and compiled from source in every process (what a
#: checkout run with PYTHONDONTWRITEBYTECODE=1, as this machine's shells are, pays).
BYTECODE = {"compiled": True, "from source": False}


def startup_rows(baseline: str | None) -> list[Row]:
    commands = {
        "--help": ["--help"],
        "check": ["check", str(ROOT / "recipes" / "rocks6.prg")],
        "list": ["list"],
        "status": ["status", "calit2"],
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {
            **os.environ,
            "PRAGMASH_STATE_DIR": str(Path(tmp) / "state"),
            "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
        }
        base_env.pop("PRAGMASH_SITE", None)
        base_env.pop("PYTHONPYCACHEPREFIX", None)
        old_dir: Path | None = None
        if baseline:
            old_dir = Path(tmp) / "baseline"
            old_dir.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", baseline, "pragmash", "drivers", "grammar"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old_dir)], input=archive, check=True)
        # a VC for status to find in the ledger (its domains live and die with that process)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pragmash",
                str(ROOT / "recipes" / "rocks6.prg"),
                "--vcname",
                "calit2",
            ],
            cwd=ROOT,
            env=base_env,
            capture_output=True,
        )
        for mode, compiled in BYTECODE.items():
            env = dict(base_env)
            if compiled:  # written once to a folder of this bench's, read by every run after
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            else:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            for label, args in commands.items():
                for code in (ROOT, old_dir):
                    if code is not None:  # a first run fills the parser's and Python's caches
                        subprocess.run(
                            [sys.executable, "-m", "pragmash", *args],
                            cwd=code,
                            env={**env, "PYTHONPATH": str(code)},
                            capture_output=True,
                        )
                now, imported = startup(ROOT, args, env)
                what = ", ".join(sorted(imported)) or "none of them"
                if old_dir is None:
                    rows.append(
                        Row(
                            f"start-up {label} ({mode}): seconds (imports {what})",
                            f"{now:.3f}s",
                            "half the baseline's",
                            None,
                        )
                    )
                    continue
                then, old_imported = startup(old_dir, args, env)
                rows.append(
                    Row(
                        f"start-up {label} ({mode}): now / {baseline} ({now:.3f}s / {then:.3f}s)",
                        f"{ratio(now, then):.2f}x",
                        "<= 0.5x",
                        ratio(now, then) <= 0.5,
                    )
                )
                rows.append(
                    Row(
                        f"  imports now: {what}; then: "
                        f"{', '.join(sorted(old_imported)) or 'none of them'}",
                        "",
                        "",
                        None,
                    )
                )
    return rows


# -- main -----------------------------------------------------------------------------


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=256/1024 instead of 1024/4096")
    parser.add_argument("--baseline", help="a git revision to compare start-up with")
    parser.add_argument(
        "--only",
        action="append",
        choices=["cpu", "overhead", "counts", "startup"],
        help="run only this section (repeatable; default: all)",
    )
    options = parser.parse_args()
    small, large = (256, 1024) if options.quick else (1024, 4096)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        sites = make_sites(Path(tmp), large)

        def counted() -> list[Row]:  # the counters go in only after the timed sections
            sqlite3.connect = _counting_connect  # type: ignore[assignment]
            _wrap_libvirt()
            return sql_rows(sites[HOSTS], (small, large)) + libvirt_rows(sites[HOSTS], small)

        sections: dict[str, Callable[[], list[Row]]] = {
            "cpu": lambda: cpu_rows(sites, small, large),
            "overhead": lambda: overhead_rows((1, 256, 1024) if not options.quick else (1, 256)),
            "counts": counted,
            "startup": lambda: startup_rows(options.baseline),
        }
        for name, section in sections.items():
            if options.only and name not in options.only:
                continue
            got = section()
            for row in got:
                print(row.line(), flush=True)
            rows += got
    missed = [r for r in rows if r.ok is False]
    print(f"\n{sum(r.ok is True for r in rows)} targets met, {len(missed)} missed")


if __name__ == "__main__":
    main_bench()
