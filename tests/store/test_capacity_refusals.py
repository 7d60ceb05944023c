"""A run refused for want of capacity takes nothing and leaves no run (issue 27, item 12).

Running out of public addresses, CPUs or memory at ``allocate`` was a failed run (exit
3, "Nothing was removed … `pragmash resume`"): a permanent failed row that resume
failed on forever, where ``scale +200`` refuses the same shortage with exit 2. Now a new
run refused at its ``allocate`` with the ledger as it was is exit 2 and is not recorded;
``--dry-run`` asks the ledger the same question and shows what would be taken.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.clirun import cli
from support.multihost import Host, write_hosts_site

from pragmash.errors import EXIT_OK, EXIT_USER
from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
RECIPE = "allocate $num_compute\nboot all\n"

pytestmark = pytest.mark.libvirt


@pytest.fixture(autouse=True)
def _demo_engine(testconn: libvirt.virConnect) -> None:
    """The demo site's test:///default, wiped of calit2's domains after each test."""


def demo_ledger() -> Ledger:
    return Ledger(load_site(None))


def test_too_few_cpus_is_bad_input_with_no_run_recorded() -> None:
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "100")
    assert code == EXIT_USER, err
    assert "rocks6.prg:14:1: 'allocate $num_compute' refused" in err
    assert "not enough CPUs: asked 100" in err
    assert "nothing was taken and no run of calit2 was recorded" in err
    assert "pragmash resume" not in err
    ledger = demo_ledger()
    assert current_allocation(ledger, "calit2") is None and last_run(ledger, "calit2") is None
    code, _, err = cli("resume", "calit2")  # nothing to resume: no failed row to fail on
    assert code == EXIT_USER and "Traceback" not in err


def test_no_free_public_address_is_refused_and_not_recorded(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 32)])
    with (tmp_path / "repo" / "vcdb.txt").open("a", encoding="utf-8") as vcdb:
        vcdb.write("third,calit2/vc-in.xml\nfourth,calit2/vc-in.xml\n")
    recipe = tmp_path / "boot.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    for vc in ("calit2", "other", "third"):
        code, _, err = cli(str(recipe), "--vcname", vc, "--num_compute", "1", "--site", str(site))
        assert code == EXIT_OK, err
    code, _, err = cli(str(recipe), "--vcname", "fourth", "--num_compute", "1", "--site", str(site))
    assert code == EXIT_USER, err
    assert "no free public address: all 3 in the site pool are held" in err
    assert last_run(Ledger(load_site(site)), "fourth") is None


def test_a_vc_holding_another_count_is_pointed_at_scale_and_keeps_its_last_run() -> None:
    assert cli(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    finished = last_run(demo_ledger(), "calit2")
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "4")
    assert code == EXIT_USER, err
    assert "already holds an allocation of 2 compute CPUs, not 4" in err
    assert "`pragmash scale calit2 +2` makes it 4 compute(s)" in err
    after = last_run(demo_ledger(), "calit2")
    assert after is not None and finished is not None
    assert (after.id, after.outcome) == (finished.id, "finished")  # nothing wedged


def test_dry_run_shows_what_would_be_taken() -> None:
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--dry-run")
    assert code == EXIT_OK, err
    assert "would take calit2-119-222.ucsd.edu (137.110.119.222), VLAN 2" in out
    assert last_run(demo_ledger(), "calit2") is None


def test_dry_run_checks_the_ledgers_capacity() -> None:
    """40 computes on a site of fewer CPUs dry-ran clean, then failed."""
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "100", "--dry-run")
    assert code == EXIT_USER, out + err
    assert "refused: not enough CPUs: asked 100 (+1 frontend), 62 free of 64" in out
    assert "the run would stop here, having taken nothing" in out
    assert "boot frontend" not in out  # the plan stops where the run would
    assert current_allocation(demo_ledger(), "calit2") is None


def test_dry_run_on_several_hosts_names_them(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    recipe = tmp_path / "boot.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    argv = [str(recipe), "--vcname", "calit2", "--site", str(site), "--dry-run"]
    code, out, err = cli(*argv, "--num_compute", "2")
    assert code == EXIT_OK, err
    assert "would take vc-a.example.org (192.0.2.10), VLAN 100, on a, b" in out
    code, out, err = cli(*argv, "--num_compute", "9")
    assert code == EXIT_USER
    assert "refused: not enough CPUs" in out
