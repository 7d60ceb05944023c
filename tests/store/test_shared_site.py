"""Safe on a shared site (issue 27): what one VC's command must never do to another's.

Each test here was written against a defect found by an adversarial round on a site two
administrators share: it failed before the fix it names.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import libvirt
import pytest
from support.runenv import BOOT_ALL, RunEnv, vc_domains

from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.libvirt


def add_vc(env: RunEnv, name: str, vc_in: str = "calit2/vc-in.xml") -> None:
    """Name ``vc_in`` a second time in the repository's vcdb.txt, as VC ``name``."""
    vcdb = env.repo / "vcdb.txt"
    vcdb.write_text(vcdb.read_text(encoding="utf-8") + f"{name},{vc_in}\n", encoding="utf-8")


def test_clean_of_a_prefix_name_leaves_the_other_vc_alone(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """Item 1: ``clean a`` with VC ``a-b`` running destroys nothing of ``a-b``."""
    add_vc(env, "a-b")
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "a-b").rc == 0
    before = set(vc_domains(testconn, "a-b"))
    assert len(before) == 3
    env.cli("clean", "a")
    assert set(vc_domains(testconn, "a-b")) == before
    assert all(d.isActive() for d in vc_domains(testconn, "a-b").values())
    assert env.allocation("a-b") is not None


def test_clean_still_removes_its_own_domains_the_ledger_forgot(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """Item 1: a VC's own node names (``a-frontend``, ``a-compute-N``) are still found."""
    from pragmash.store.allocation import release

    add_vc(env, "a")
    add_vc(env, "a-b")
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "a").rc == 0
    assert env.cli(str(recipe), "--vcname", "a-b").rc == 0
    assert release(env.ledger(), "a")
    cleaned = env.cli("clean", "a")
    assert cleaned.rc == 0, cleaned.err
    assert "destroyed a-compute-0 (was running)" in cleaned.out
    assert "a-b-" not in cleaned.out
    assert len(vc_domains(testconn, "a-b")) == 3
    assert {n for n in vc_domains(testconn, "a") if not n.startswith("a-b-")} == set()


SCALED_BOOT = "allocate 2\nboot frontend\nboot compute\nwait all up\n"


def _scale_meanwhile(
    env: RunEnv, monkeypatch: pytest.MonkeyPatch, other: str
) -> list[tuple[int, str]]:
    """Make another ``scale calit2 OTHER`` run to its end just before this scale takes the lock.

    That is the widest window two admins' scales of one VC have: everything a scale
    reads before its lock may be stale by the time it holds it.
    """
    from pragmash.engine.run import opening

    real = opening.lock_and_journal
    results: list[tuple[int, str]] = []

    def lock_after_another(*args: Any, **kwargs: Any) -> Any:
        if not results:
            results.append((-1, ""))  # the other scale's own lock goes straight through
            other_result = env.cli("scale", "calit2", other)
            results[0] = (other_result.rc, other_result.err)
        return real(*args, **kwargs)

    monkeypatch.setattr(opening, "lock_and_journal", lock_after_another)
    return results


def _computes_leased_and_running(
    env: RunEnv, conn: libvirt.virConnect
) -> tuple[list[str], list[str]]:
    held = env.allocation()
    assert held is not None
    running = sorted(
        name for name, d in vc_domains(conn).items() if d.isActive() and "compute" in name
    )
    return [n.name for n in held.computes], running


def test_two_scales_up_at_once_both_count(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 2: +1 beside +1 grows the VC by two: the second plans from the ledger, locked."""
    assert env.cli(str(env.recipe(SCALED_BOOT)), "--vcname", "calit2").rc == 0
    other = _scale_meanwhile(env, monkeypatch, "+1")
    mine = env.cli("scale", "calit2", "+1")
    assert other == [(0, "")] and mine.rc == 0, (other, mine.err)
    leased, running = _computes_leased_and_running(env, testconn)
    assert leased == [f"calit2-compute-{i}" for i in range(4)]
    assert running == leased


def test_a_shrink_beside_a_grow_destroys_what_it_releases(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 2: -1 beside +1: the node released is the node destroyed; none runs unleased."""
    assert env.cli(str(env.recipe(SCALED_BOOT)), "--vcname", "calit2").rc == 0
    other = _scale_meanwhile(env, monkeypatch, "+1")
    mine = env.cli("scale", "calit2", "-1")
    assert other == [(0, "")] and mine.rc == 0, (other, mine.err)
    leased, running = _computes_leased_and_running(env, testconn)
    assert leased == ["calit2-compute-0", "calit2-compute-1"]
    assert running == leased


def test_a_host_gone_from_the_site_config_is_not_the_first_host(tmp_path: Path) -> None:
    """Item 3: a ``[[hosts]]`` entry renamed (b -> c): b's nodes are on a host pragmash
    cannot reach, not on the first host: status says unreachable, ``hosts`` does not
    charge them to a, and clean keeps their leases and exits 3."""
    from support.multihost import Host, boot, hosts_of, run_cli, write_hosts_site

    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    assert boot(site, 3)[0] == 0
    assert hosts_of(site) == {"a": 2, "b": 2}
    text = site.read_text(encoding="utf-8")
    site.write_text(text.replace('name = "b"', 'name = "c"'), encoding="utf-8")

    data = json.loads(run_cli(site, "status", "calit2", "--json")[1])
    states = {n["name"]: n["engine_state"] for n in data["nodes"] if n["host"] == "b"}
    assert states == {"calit2-compute-0": "unreachable", "calit2-compute-2": "unreachable"}

    rc, out, _err = run_cli(site, "hosts", "--json")
    assert rc in (0, 3), out
    used = {h["name"]: h["cpus_used"] for h in json.loads(out)["hosts"]}
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    assert used["a"] == sum(n.cpus for n in held.nodes if n.host == "a")
    assert used["c"] == 0
    assert used["b"] == sum(n.cpus for n in held.nodes if n.host == "b")

    rc, out, err = run_cli(site, "clean", "calit2")
    assert rc == 3, out + err
    assert "kept calit2-compute-0 and its leases: host b" in out
    assert "calit2 is clean" not in out
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    assert sorted(n.name for n in held.nodes) == ["calit2-compute-0", "calit2-compute-2"]


# -- item 4: one ledger per site, whoever runs the command ---------------------------

REAL_SITE = """\
[engine]
uri = "test:///default"

[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
public = [{ ip = "192.0.2.20", fqdn = "vc20.example.org" }]
"""


def _real_site(tmp_path: Path, extra: str = "") -> Path:
    site = tmp_path / "ucsd.toml"
    site.write_text(REAL_SITE + extra, encoding="utf-8")
    return site


def test_a_real_sites_ledger_is_the_sites_not_the_users(tmp_path: Path) -> None:
    """Item 4: two accounts running one site file share one ledger (not $XDG_STATE_HOME)."""
    from pragmash.vc.config.site import SYSTEM_STATE_DIR

    site = _real_site(tmp_path)
    alice = load_site(site, env={"HOME": str(tmp_path / "alice")})
    bob = load_site(site, env={"HOME": str(tmp_path / "bob")})
    assert alice.ledger_path == bob.ledger_path
    assert alice.state_dir == SYSTEM_STATE_DIR / "ucsd"


def test_a_per_user_ledger_from_before_is_not_left_behind(tmp_path: Path) -> None:
    """Item 4: an account's ledger from before (in its XDG folder) is never silently
    replaced by the site's new one: the site is refused, naming ``[paths] state``."""
    from pragmash.errors import ConfigError

    site = _real_site(tmp_path)
    old = tmp_path / "alice" / ".local" / "state" / "pragmash" / "ledger.sqlite3"
    Ledger(old)  # the account's ledger from before, with the site's leases in it
    with pytest.raises(ConfigError) as caught:
        load_site(site, env={"HOME": str(tmp_path / "alice")})
    assert "[paths] state" in caught.value.message and str(old.parent) in caught.value.message


def test_a_new_ledger_is_the_admins_groups_and_no_one_elses(tmp_path: Path) -> None:
    """Item 4: the site's admins (the folder's group) may write the ledger; others may not."""
    folder = tmp_path / "state"
    ledger = Ledger(folder / "ledger.sqlite3")
    ledger.connection  # noqa: B018  (opening makes the file)
    mode = (folder / "ledger.sqlite3").stat().st_mode
    assert mode & stat.S_IWGRP and mode & stat.S_IRGRP
    assert not mode & (stat.S_IWOTH | stat.S_IROTH)
    assert folder.stat().st_mode & stat.S_ISGID  # new files get the folder's group
