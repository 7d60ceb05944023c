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
