"""SQL statements and libvirt calls per node stay bounded (counted, never timed).

A run, ``status`` and ``clean`` on a site of three libvirt test-driver hosts, at two
sizes: what grows between them is the cost per node. Statements are counted by a
SQLite trace callback on every connection a command opens, libvirt calls by a
wrapper around the binding's domain and connection methods. ``bench/bench_all.py``
prints the same figures for 4096 nodes on 50 hosts.
"""

from __future__ import annotations

import collections
import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from support.multihost import Host, write_hosts_site

from pragmash.ui.cli import main as cli

RECIPE = "allocate $num_compute\nboot frontend\nboot compute\nwait compute running\n"
SMALL, LARGE = 4, 20


class Counter:
    """SQL statements (not BEGIN/COMMIT), write transactions and libvirt calls."""

    def __init__(self) -> None:
        self.sql = 0
        self.writes = 0
        self.calls: collections.Counter[str] = collections.Counter()

    def trace(self, statement: str) -> None:
        head = statement.lstrip().upper()
        if head.startswith("BEGIN IMMEDIATE"):
            self.writes += 1
        elif not head.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.sql += 1


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    counts = Counter()
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        conn.set_trace_callback(counts.trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)

    def counted(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts.calls[name] += 1
            return call(*args, **kwargs)

        return wrapper

    for cls in (libvirt.virConnect, libvirt.virDomain):
        for attr, value in list(vars(cls).items()):
            if callable(value) and not attr.startswith("_"):
                monkeypatch.setattr(cls, attr, counted(f"{cls.__name__}.{attr}", value))
    yield counts


def _command(site: Path, counts: Counter, *args: str) -> tuple[int, int, int]:
    """(statements, write transactions, libvirt calls) of one command (exit 0 asserted)."""
    sql, writes, calls = counts.sql, counts.writes, sum(counts.calls.values())
    out, err = io.StringIO(), io.StringIO()
    assert cli.main([*args, "--site", str(site)], out=out, err=err) == 0, (
        out.getvalue() + err.getvalue()
    )
    return counts.sql - sql, counts.writes - writes, sum(counts.calls.values()) - calls


def _commands(tmp_path: Path, counts: Counter, computes: int) -> dict[str, tuple[int, int, int]]:
    site = write_hosts_site(tmp_path / str(computes), [Host(f"h{i}", 16) for i in range(3)])
    recipe = site.parent / "boot.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    run = ("run", [str(recipe), "--vcname", "calit2", "--num_compute", str(computes)])
    done = {name: _command(site, counts, *args) for name, args in [run]}
    for name in ("status", "clean"):
        done[name] = _command(site, counts, name, "calit2")
    return done


def test_sql_and_libvirt_calls_per_node_are_bounded(tmp_path: Path, counter: Counter) -> None:
    small = _commands(tmp_path, counter, SMALL)
    large = _commands(tmp_path, counter, LARGE)
    nodes = LARGE - SMALL  # what the larger VC has more of

    def per_node(command: str, what: int) -> float:
        return (large[command][what] - small[command][what]) / nodes

    # a run: at most 4 statements per node, and no write transaction per node
    assert per_node("run", 0) <= 4, (small["run"], large["run"])
    # write transactions: one per step boundary, on a new ledger (made with every table
    # before it is linked into place) as on one in use. The opening (lock, run, the
    # lock's record of it, the first step's start and, that step being `allocate`, its
    # leases) is one; each step's end and the next one's start are one; the last
    # step's end, the run's end and the lock's release are one.
    steps = RECIPE.count("\n")
    assert small["run"][1] == large["run"][1] == steps + 1, (small, large)
    # status and clean: O(1) statements per node (the allocation read once, not per node)
    for command in ("status", "clean"):
        assert per_node(command, 0) <= 1, (command, small[command], large[command])
        assert large[command][1] <= small[command][1], command
    # libvirt: boot is define + start for a new domain (its UUID is pragmash's, in the
    # XML); one wait round asks each node's state once; status one look-up and state
    assert per_node("run", 2) <= 2 + 1, (small["run"], large["run"], counter.calls)
    # status and clean read each host's domains' states in one call (getAllDomainStats):
    # no call per node for a domain that is absent (these commands' connections see
    # none: the test driver keeps a file host's domains only for the run's connection)
    assert per_node("status", 2) == 0, (small["status"], large["status"], counter.calls)
    assert per_node("clean", 2) == 0, (small["clean"], large["clean"])


def test_a_run_that_does_not_begin_with_allocate_writes_the_leases_on_their_own(
    tmp_path: Path, counter: Counter
) -> None:
    """Only a first ``allocate`` is carried by the opening: later, its leases are a
    write of their own, as before (one more than the step boundaries)."""
    site = write_hosts_site(tmp_path / "site", [Host("h0", 16)])
    recipe = site.parent / "boot.prg"
    recipe.write_text("echo starting\n" + RECIPE, encoding="utf-8")
    args = [str(recipe), "--vcname", "calit2", "--num_compute", "2"]
    _sql, writes, _calls = _command(site, counter, *args)
    assert writes == RECIPE.count("\n") + 1 + 2
