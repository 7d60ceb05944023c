"""Each VC's private network in runs, on test:///default: made, shown, remade, removed.

The harness is support/runenv.py (a site of our own, the CLI in-process, so the
domains and networks land in this process's test:///default).
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support.runenv import BOOT_ALL, Result, RunEnv, make_env, vc_domains

from pragmash import outcomes
from pragmash.driver_api import PrivateNetworkPlan, StageResult
from pragmash.engine.run import session
from pragmash.errors import AllocationError, StepError
from pragmash.store import allocation as alloc_mod
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.store.pools import pool_summary
from pragmash.ui.repl import launch

pytestmark = pytest.mark.libvirt


@pytest.fixture
def env(tmp_path: Path) -> RunEnv:
    return make_env(tmp_path / "site")


def set_network(env: RunEnv, lines: str, vlans: str = "[100, 110]") -> None:
    """Put ``lines`` into the site's [network] section (and its VLAN range)."""
    text = env.site_path.read_text()
    text = text.replace("vlans = [100, 110]\n", f"vlans = {vlans}\n{lines}\n")
    env.site_path.write_text(text)


def networks(conn: libvirt.virConnect) -> dict[str, libvirt.virNetwork]:
    return {n.name(): n for n in conn.listAllNetworks(0) if n.name().endswith("-private")}


def interface_sources(dom: libvirt.virDomain) -> list[tuple[str, str]]:
    root = etree.fromstring(dom.XMLDesc(0).encode())
    out = []
    for iface in root.iterfind("devices/interface"):
        source = iface.find("source")
        assert source is not None
        out.append((iface.get("type", ""), source.get("network") or source.get("bridge") or ""))
    return out


def forget(conn: libvirt.virConnect, name: str) -> None:
    net = conn.networkLookupByName(name)
    if net.isActive():
        net.destroy()
    net.undefine()


def test_private_interfaces_join_the_vcs_own_network(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    first = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert first.rc == 0, first.err
    # the site config does not say: isolated, said once
    assert "has no [network] private: each VC gets its own isolated libvirt network" in first.err
    allocate_line = next(line for line in first.out.splitlines() if "allocate 2" in line)
    assert "created network calit2-private (isolated, bridge pragma100, VLAN 100)" in (
        allocate_line
    )
    net = networks(testconn)["calit2-private"]
    assert net.isActive()
    xml = etree.fromstring(net.XMLDesc(0).encode())
    assert xml.find("bridge").get("name") == "pragma100"  # type: ignore[union-attr]
    assert xml.find("forward") is None and xml.find("ip") is None
    domains = vc_domains(testconn)
    # private interfaces on the VC's network; the public one keeps `bridges`
    assert interface_sources(domains["calit2-frontend"]) == [
        ("network", "calit2-private"),
        ("network", "default"),
    ]
    for name in ("calit2-compute-0", "calit2-compute-1"):
        assert interface_sources(domains[name]) == [("network", "calit2-private")]

    cleaned = env.cli("clean", "calit2")
    assert cleaned.rc == 0 and "removed network calit2-private\n" in cleaned.out
    assert "calit2-private" not in networks(testconn)
    again = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert again.rc == 0, again.err
    assert "[network] private" not in again.err  # once per site: the ledger remembers
    assert env.cli("clean", "calit2").rc == 0
    assert env.cli("clean", "calit2").rc == 0  # again: nothing left, nothing to complain about


def test_a_site_that_says_isolated_gets_no_note(env: RunEnv, testconn: libvirt.virConnect) -> None:
    set_network(env, 'private = "isolated"\nprivate_bridge = "vc{vlan}p"')
    result = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert result.rc == 0, result.err
    assert "note:" not in result.err
    assert networks(testconn)["calit2-private"].bridgeName() == "vc100p"


def check_nothing_taken(env: RunEnv, conn: libvirt.virConnect, result: Result) -> None:
    assert result.rc == 2, result.out + result.err
    assert "Traceback" not in result.err
    ledger_path = env.root / "state" / "ledger.sqlite3"  # the site may not load: read it raw
    if ledger_path.exists():
        ledger = Ledger(ledger_path)
        assert alloc_mod.current_allocation(ledger, "calit2") is None
        assert last_run(ledger, "calit2") is None  # refused before the run started
    assert vc_domains(conn) == {}
    assert "calit2-private" not in networks(conn)


@pytest.mark.parametrize(
    ("lines", "vlans", "words"),
    [
        # an interface of the (test driver's) host has the name the bridge would get
        ('private_bridge = "eth{vlan}"', "[1, 5]", "[network] private_bridge: the bridge"),
        ('private = "ovs"\novs_bridge = "ovsbr0"', "[100, 110]", "[network] ovs_bridge: no"),
        ('private = "bridge"\nprivate_bridge = "br{vlan}"', "[100, 110]", "no interface br100"),
        ('private = "bridge"\nprivate_bridge = "br0"', "[100, 110]", "{vlan} once"),
        ('private = "vxlan"', "[100, 110]", "[network] private: expected 'isolated'"),
    ],
)
def test_bad_private_network_settings_are_refused_before_anything_is_allocated(
    env: RunEnv, testconn: libvirt.virConnect, lines: str, vlans: str, words: str
) -> None:
    set_network(env, lines, vlans)
    result = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert words in result.err, result.err
    assert str(env.site_path.resolve()) in result.err
    check_nothing_taken(env, testconn, result)


def test_a_clash_found_while_choosing_the_vlan_takes_nothing(env: RunEnv) -> None:
    """Two runs at once may both pass the check before the run; the allocation checks again."""
    prep = session.prepare(
        session.RunOptions(str(env.recipe(BOOT_ALL)), "calit2", site=str(env.site_path))
    )
    seen: list[int] = []

    def clash(vlan: int) -> None:
        seen.append(vlan)
        raise StepError(f"bridge for VLAN {vlan} clashes", stage="ve_driver/network")

    with pytest.raises(StepError, match="VLAN 100 clashes"):
        alloc_mod.allocate(env.ledger(), prep.site, "calit2", prep.vcin, 2, check_vlan=clash)
    assert seen == [100]
    assert env.allocation() is None
    assert pool_summary(env.ledger(), prep.site)["vlans"]["held"] == 0
    with pytest.raises(AllocationError):  # and a shortage is still a shortage
        alloc_mod.allocate(env.ledger(), prep.site, "calit2", prep.vcin, 99, check_vlan=clash)


def test_a_network_that_cannot_be_made_releases_a_fresh_allocation(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    prep = session.prepare(
        session.RunOptions(str(env.recipe(BOOT_ALL)), "calit2", site=str(env.site_path))
    )
    engine = prep.runtime.engine

    def refuse(plan: PrivateNetworkPlan) -> StageResult:
        raise StepError(
            f"libvirt could not start network {plan.network}", stage="ve_driver/network"
        )

    engine.ensure_private_network = refuse  # type: ignore[attr-defined]
    run = session.start(prep)
    assert run.interpreter.run_to_end() == "failed"
    run.close(outcomes.FAILED)
    error = run.interpreter.last_error
    assert isinstance(error, StepError) and error.stage == "ve_driver/network"
    assert env.allocation() is None  # taken and given back: nothing held
    assert vc_domains(testconn) == {}


RESUMABLE = "allocate 2\nboot frontend\nrun false\nboot compute\n"


def test_status_flags_a_missing_network_and_resume_and_attach_remake_it(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    recipe = env.recipe(RESUMABLE)
    failed = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert failed.rc == 3, failed.err
    status = env.cli("status", "calit2")
    assert "private network calit2-private (isolated, bridge pragma100, VLAN 100): active\n" in (
        status.out
    )
    forget(testconn, "calit2-private")  # behind pragmash's back (a host reboot, an admin)

    status = env.cli("status", "calit2")
    assert (
        "private network calit2-private (isolated, bridge pragma100, VLAN 100): missing"
        "   <- missing: `pragmash resume calit2` or `pragmash repl --attach calit2` makes it again"
    ) in status.out
    data = json.loads(env.cli("status", "calit2", "--json").out)["private_network"]
    assert (data["name"], data["exists"], data["missing"]) == ("calit2-private", False, True)
    listed = json.loads(env.cli("list", "--json").out)[0]["private_network"]
    assert (listed["exists"], listed["state"]) == (False, "missing")

    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 3  # `run false` fails again, but the network is back first
    assert (
        "calit2's private network was missing: created network calit2-private "
        "(isolated, bridge pragma100, VLAN 100)"
    ) in resumed.err
    assert networks(testconn)["calit2-private"].isActive()

    networks(testconn)["calit2-private"].destroy()  # stopped, not removed
    err = io.StringIO()
    run = launch.open_run(["--attach", "calit2", "--site", str(env.site_path)], err)
    run.close(outcomes.INTERRUPTED)
    assert "calit2's private network was missing: started network calit2-private" in err.getvalue()
    assert networks(testconn)["calit2-private"].isActive()


def test_two_vcs_started_at_once_each_get_their_own_network(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    recipe = env.recipe("allocate 0\nboot frontend\n")
    results: dict[str, Result] = {}

    def run(vcname: str) -> None:
        results[vcname] = env.cli(str(recipe), "--vcname", vcname)

    assert env.cli("list").rc == 0  # the ledger exists before the two runs race for it
    threads = [threading.Thread(target=run, args=(vc,)) for vc in ("calit2", "tiny")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {vc: r.rc for vc, r in results.items()} == {"calit2": 0, "tiny": 0}, results
    made = networks(testconn)
    bridges = {name: net.bridgeName() for name, net in made.items()}
    assert sorted(bridges) == ["calit2-private", "tiny-private"]
    assert sorted(bridges.values()) == ["pragma100", "pragma101"]
    for vc in ("calit2", "tiny"):
        frontend = vc_domains(testconn, vc)[f"{vc}-frontend"]
        assert interface_sources(frontend)[0] == ("network", f"{vc}-private")
    for vc in ("calit2", "tiny"):
        assert env.cli("clean", vc).rc == 0
    assert networks(testconn) == {}
