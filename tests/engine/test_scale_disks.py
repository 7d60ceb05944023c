"""``scale +N`` puts new computes on the VC's fixed base, with real disks (test:///default).

As in test_fix_once: the libvirt engine on test:///default told it is not simulated,
so staging, the fixed-image cache and a seed-style driver folder (whose scripts log
each call) all really run. The new computes must get overlays (or, under
``staging = "copy"``, copies) of the base the recipe's ``fix`` made, with no second
pre_fix; ``scale -N`` must remove their disks.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.diskengine import RealDiskEngine, _driver_env, _run

from pragmash.engine.run import opening
from pragmash.images.staging import backing_of, image_info
from pragmash.vc.config.site import SiteConfig

pytestmark = pytest.mark.libvirt


class ShowsUp(RealDiskEngine):
    """test:///default's domains print nothing: this one's consoles show the up marker."""

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        return ["PRAGMASH-UP"]


@pytest.fixture
def real_disks(monkeypatch: pytest.MonkeyPatch) -> None:
    def engine(site: SiteConfig) -> RealDiskEngine:
        return ShowsUp(site.uri)

    monkeypatch.setattr(opening, "load_engine", engine)


def _calls(log_text: str, stage: str) -> list[str]:
    return [line.split()[-1] for line in log_text.splitlines() if line.startswith(stage)]


def test_new_computes_are_overlays_on_the_fixed_base(
    tmp_path: Path, testconn: libvirt.virConnect, real_disks: None
) -> None:
    env, log = _driver_env(tmp_path / "site")
    rc, output = _run(env, "allocate 1\nfix all via none\nboot all\n")
    assert rc == 0, output
    fixed = sorted((env.root / "cache" / "fixed").glob("*.qcow2"))
    assert len(fixed) == 1
    disks = env.root / "tmp" / "calit2" / "disks"

    grown = env.cli("scale", "calit2", "+2")
    assert grown.rc == 0, grown.out + grown.err
    assert f"2 disk(s) on the fixed base {fixed[0]} (calit2-compute-0's)" in grown.out
    for name in ("calit2-compute-1", "calit2-compute-2"):
        assert backing_of(disks / f"{name}.qcow2") == fixed[0]
    calls = log.read_text()
    assert len(_calls(calls, "pre_fix_driver")) == 1  # nothing fixed again
    assert sorted(_calls(calls, "pre_boot")[-2:]) == ["calit2-compute-1", "calit2-compute-2"]

    shrunk = env.cli("scale", "calit2", "-2")
    assert shrunk.rc == 0, shrunk.out + shrunk.err
    assert sorted(p.stem for p in disks.glob("*.qcow2")) == ["calit2-compute-0", "calit2-frontend"]
    assert "removed calit2-compute-2.qcow2" in shrunk.out
    assert fixed[0].exists()  # the shared base stays


def test_under_copy_staging_the_journal_names_the_base(
    tmp_path: Path, testconn: libvirt.virConnect, real_disks: None
) -> None:
    env, _log = _driver_env(tmp_path / "site")
    with env.site_path.open("a") as site:
        site.write('\n[images]\nstaging = "copy"\n')
    rc, output = _run(env, "allocate 1\nfix all via none\nboot all\n")
    assert rc == 0, output
    fixed = sorted((env.root / "cache" / "fixed").glob("*.qcow2"))
    grown = env.cli("scale", "calit2", "+1")
    assert grown.rc == 0, grown.out + grown.err
    assert f"on the fixed base {fixed[0]} (journal of 'fix all via none')" in grown.out
    copy = env.root / "tmp" / "calit2" / "disks" / "calit2-compute-1.raw"
    assert image_info(copy).get("format") == "raw"
