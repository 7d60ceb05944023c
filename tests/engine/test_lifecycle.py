"""Lifecycle commands on test:///default: list, status, shutdown, clean (stop/start: test_power).

The harness these and the other run tests share (``RunEnv``, the ``env`` fixture) is
tests/support/runenv.py.
"""

from __future__ import annotations

import json

import libvirt
import pytest
from support.runenv import BOOT_ALL, SITE_TOML, RunEnv, make_env, vc_domains  # noqa: F401

from pragmash.engine.commands import lifecycle

pytestmark = pytest.mark.libvirt

# -- the tests ------------------------------------------------------------------------


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
