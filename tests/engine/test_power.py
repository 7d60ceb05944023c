"""``pragmash stop`` / ``start`` (and ``shutdown``), ``history`` and ``list`` on test:///default.

The stop and start runs are journaled and resumable; ``status`` reads what they did;
refusals change nothing. A guest that ignores ACPI is played by an engine whose
``request_shutdown`` sends nothing (the real QEMU guest is tests/vm/test_vm_power.py's).
"""

from __future__ import annotations

import json
from pathlib import Path

import libvirt
import pytest
from support.runenv import BOOT_ALL, RunEnv, make_env, vc_domains

from pragmash.drivers.libvirt.engine import LibvirtEngine
from pragmash.engine.run import opening
from pragmash.store.journal import steps_of

pytestmark = pytest.mark.libvirt


@pytest.fixture
def env(tmp_path: Path) -> RunEnv:
    return make_env(tmp_path / "site")


NODES = ["calit2-frontend", "calit2-compute-0", "calit2-compute-1"]


def booted(env: RunEnv) -> None:
    result = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert result.rc == 0, result.err


def states(conn: libvirt.virConnect) -> dict[str, bool]:
    return {name: dom.isActive() == 1 for name, dom in vc_domains(conn).items()}


def test_stop_then_start_keeps_every_domain_and_is_journaled(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    booted(env)
    uuids = {name: dom.UUIDString() for name, dom in vc_domains(testconn).items()}
    assert "3/3" in env.cli("list").out

    stopped = env.cli("stop", "calit2", "--timeout", "10")
    assert stopped.rc == 0, stopped.err
    assert "stopped calit2-frontend, calit2-compute-0, calit2-compute-1" in stopped.out
    assert stopped.out.endswith("calit2: every node is shut off\n")
    assert states(testconn) == dict.fromkeys(NODES, False)  # defined, off
    status = json.loads(env.cli("status", "calit2", "--json").out)
    assert {n["ledger_says"] for n in status["nodes"]} == {"shut off"}
    assert not any(n["mismatch"] for n in status["nodes"])  # the ledger knows of the stop
    assert status["run"]["kind"] == "stop"
    assert "0/3" in env.cli("list").out

    started = env.cli("start", "calit2")
    assert started.rc == 0, started.err
    assert "started calit2-frontend" in started.out
    assert "started calit2-compute-0, calit2-compute-1" in started.out
    assert "booted again" not in started.out  # nothing defined anew
    assert states(testconn) == dict.fromkeys(NODES, True)
    assert {n: d.UUIDString() for n, d in vc_domains(testconn).items()} == uuids
    texts = [s.text for s in env.steps()]
    assert texts == ["start frontend", "wait frontend up", "start compute", "wait compute up"]
    status = json.loads(env.cli("status", "calit2", "--json").out)
    assert {n["ledger_says"] for n in status["nodes"]} == {"running"}
    assert not any(n["mismatch"] for n in status["nodes"])

    again = env.cli("start", "calit2")  # running nodes are left alone
    assert again.rc == 0 and "already running: calit2-frontend" in again.out

    history = json.loads(env.cli("history", "calit2", "--json").out)
    assert [(h["kind"], h["outcome"]) for h in history] == [
        ("recipe", "finished"),
        ("stop", "finished"),
        ("start", "finished"),
        ("start", "finished"),
    ]
    for run in history:
        assert run["start"] and run["end"] and run["duration"] >= 0
    human = env.cli("history", "calit2").out
    assert " stop " in human and " start " in human and "test.prg" in human


def test_shutdown_is_stop(env: RunEnv, testconn: libvirt.virConnect) -> None:
    booted(env)
    result = env.cli("shutdown", "calit2", "--timeout", "10")
    assert result.rc == 0, result.err
    assert "every node is shut off" in result.out
    assert env.cli("history", "calit2", "--json").out.count('"kind": "stop"') == 1


def test_start_boots_a_node_whose_domain_is_gone(env: RunEnv, testconn: libvirt.virConnect) -> None:
    booted(env)
    assert env.cli("stop", "calit2").rc == 0
    testconn.lookupByName("calit2-compute-1").undefine()
    started = env.cli("start", "calit2")
    assert started.rc == 0, started.err
    assert "calit2-compute-1: its domain is not defined: booting it as `boot` does" in started.out
    assert "started calit2-compute-0" in started.out
    assert states(testconn) == dict.fromkeys(NODES, True)


def test_start_leaves_a_running_node_alone(env: RunEnv, testconn: libvirt.virConnect) -> None:
    booted(env)
    assert env.cli("stop", "calit2").rc == 0
    testconn.lookupByName("calit2-frontend").create()
    started = env.cli("start", "calit2")
    assert started.rc == 0
    assert "already running: calit2-frontend" in started.out
    assert "started calit2-compute-0, calit2-compute-1" in started.out


class IgnoresAcpi(LibvirtEngine):
    """test:///default whose guests ignore the ACPI power button (they run on)."""

    def request_shutdown(self, name: str) -> bool:
        return self.state(name) == "running"


def test_one_deadline_for_all_then_force(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    booted(env)
    monkeypatch.setattr(opening, "load_engine", lambda site: IgnoresAcpi(site.uri))
    stopped = env.cli("stop", "calit2", "--timeout", "0.5")
    assert stopped.rc == 3
    said = "did not stop within 0.5 s: calit2-frontend, calit2-compute-0, calit2-compute-1"
    assert said in stopped.err
    assert "pragmash stop calit2 --force" in stopped.err
    step = env.steps()[0]
    assert step.outcome == "failed"
    assert step.ended_at is not None and step.ended_at - step.started_at < 5  # once, not per node
    assert states(testconn) == dict.fromkeys(NODES, True)

    forced = env.cli("stop", "calit2", "--timeout", "0.5", "--force")
    assert forced.rc == 0, forced.err
    assert said in forced.out
    assert "powered off calit2-frontend, calit2-compute-0, calit2-compute-1" in forced.out
    assert states(testconn) == dict.fromkeys(NODES, False)  # off, still defined
    kinds = json.loads(env.cli("history", "calit2", "--json").out)
    assert [(k["kind"], k["outcome"]) for k in kinds][1:] == [
        ("stop", "failed"),
        ("stop", "finished"),
    ]


def test_a_failed_stop_is_resumed(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    booted(env)
    with monkeypatch.context() as patch:
        patch.setattr(opening, "load_engine", lambda site: IgnoresAcpi(site.uri))
        assert env.cli("stop", "calit2", "--timeout", "0.2").rc == 3
    run = env.last_run()
    assert run is not None
    resumed = env.cli("resume", "calit2")  # the guests listen now
    assert resumed.rc == 0, resumed.err
    assert "resuming calit2's stop (deadline 0.2 s)" in resumed.err
    last = env.last_run()
    assert last is not None and (last.id, last.outcome) == (run.id, "finished")
    assert [s.outcome for s in steps_of(env.ledger(), run.id)] == ["done"]
    assert states(testconn) == dict.fromkeys(NODES, False)


def test_refusals_change_nothing(env: RunEnv, testconn: libvirt.virConnect) -> None:
    unknown = env.cli("stop", "calit2")
    assert unknown.rc == 2 and "holds no allocation" in unknown.err
    assert env.cli("start", "calit2").rc == 2
    failing = env.recipe("allocate 2\nboot frontend\nrun false\n")
    assert env.cli(str(failing), "--vcname", "calit2", "--allow-run").rc == 3
    refused = env.cli("start", "calit2")
    assert refused.rc == 2
    assert "is failed: a start now would hide it from `resume`" in refused.err
    assert "pragmash resume calit2" in refused.err
    run = env.last_run()
    assert run is not None and run.recipe.endswith("test.prg")  # no run was added
    assert env.cli("stop", "calit2", "--timeout", "-1").rc == 2


def test_list_hides_cleaned_vcs_unless_all(env: RunEnv, testconn: libvirt.virConnect) -> None:
    booted(env)
    listed = env.cli("list")
    assert "RUNNING" in listed.out and "3/3" in listed.out
    assert json.loads(env.cli("list", "--json").out)[0]["running"] == 3
    assert env.cli("clean", "calit2").rc == 0
    assert "no VCs holding leases" in env.cli("list").out
    assert json.loads(env.cli("list", "--json").out) == []
    every = json.loads(env.cli("list", "--all", "--json").out)
    assert [(r["vcname"], r["state"], r["running"]) for r in every] == [
        ("calit2", "released", None)
    ]
    assert "released" in env.cli("list", "--all").out


def test_status_json_gives_both_addresses_and_step_times(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    booted(env)
    data = json.loads(env.cli("status", "calit2", "--json").out)
    held = env.allocation()
    assert held is not None
    frontend, compute = data["nodes"][0], data["nodes"][1]
    assert frontend["public_ip"] == held.public.ip == frontend["ip"]
    assert frontend["private_ip"] == held.frontend.private_ip != frontend["public_ip"]
    assert compute["public_ip"] is None and compute["ip"] == compute["private_ip"]
    for step in data["run"]["steps"]:
        assert step["start"] <= step["end"] and step["duration"] >= 0
    assert data["run"]["kind"] == "recipe" and data["run"]["duration"] >= 0


def test_history_of_an_unknown_vc(env: RunEnv) -> None:
    result = env.cli("history", "nosuch")
    assert result.rc == 2 and "nosuch" in result.err
