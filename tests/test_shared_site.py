"""Safe on a shared site (issue 27): what one VC's command must never do to another's.

Each test here was written against a defect found by an adversarial round on a site two
administrators share: it failed before the fix it names.
"""

from __future__ import annotations

import libvirt
import pytest
import test_lifecycle
from test_lifecycle import BOOT_ALL, RunEnv, vc_domains

pytestmark = pytest.mark.libvirt

env = test_lifecycle.env


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
    from pragmash.engine import opening

    real = opening.acquire_lock
    results: list[tuple[int, str]] = []

    def acquire_after_another(ledger: object, vcname: str, *args: object) -> None:
        if not results:
            results.append((-1, ""))  # the other scale's own lock goes straight through
            other_result = env.cli("scale", "calit2", other)
            results[0] = (other_result.rc, other_result.err)
        real(ledger, vcname, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(opening, "acquire_lock", acquire_after_another)
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
