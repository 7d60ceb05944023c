"""After a scale, and when the vc-in.xml changed: the VC is not wedged (issue 27, item 5).

``status``'s advice to run the recipe again (a missing private network) named the
recipe's own count, which fails at allocate on a VC a scale grew; the way out
(``--num_compute`` the VC holds) was never said. And ``scale`` took a vc-in.xml edited
since the VC was allocated: the new compute landed on another subnet.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli

import pragmash
from pragmash.errors import EXIT_OK, EXIT_USER
from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
DEMO_REPO = Path(pragmash.__file__).parent / "demo" / "repository"

pytestmark = pytest.mark.libvirt


def computes() -> int:
    held = current_allocation(Ledger(load_site(None)), "calit2")
    assert held is not None
    return len(held.computes)


def test_status_after_a_scale_advises_the_count_the_vc_holds(
    testconn: libvirt.virConnect,
) -> None:
    assert cli(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    assert cli("scale", "calit2", "+2")[0] == EXIT_OK
    network = testconn.networkLookupByName("calit2-private")
    network.destroy()
    network.undefine()
    code, out, _ = cli("status", "calit2")
    advice = f"`pragmash {ROCKS6} --vcname calit2 --num_compute 4` (same allocation)"
    assert advice in out, out
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "4")  # the advice
    assert code == EXIT_OK, err
    assert computes() == 4
    code, _, err = cli("scale", "calit2", "+1")  # not wedged
    assert code == EXIT_OK, err


def test_the_recipes_own_count_after_a_scale_says_the_way_out(
    testconn: libvirt.virConnect,
) -> None:
    assert cli(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    assert cli("scale", "calit2", "+2")[0] == EXIT_OK
    code, _, err = cli(ROCKS6, "--vcname", "calit2")
    assert code == EXIT_USER, err
    assert "`--num_compute 4` goes on with what it holds" in err
    record = last_run(Ledger(load_site(None)), "calit2")
    assert record is not None and record.outcome == "finished"  # the scale's, not a failure
    assert cli("scale", "calit2", "-1")[0] == EXIT_OK
    assert computes() == 3


def test_scale_refuses_a_vc_in_changed_since_the_allocation(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(DEMO_REPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    assert cli(ROCKS6, "--vcname", "calit2", "--base_path", str(repo))[0] == EXIT_OK
    vcin = repo / "calit2" / "vc-in.xml"
    original = vcin.read_text(encoding="utf-8")
    edited = original.replace("<ipaddress>10.1.1.1</ipaddress>", "<ipaddress>10.2.1.1</ipaddress>")
    edited = edited.replace("<netmask>255.255.0.0</netmask>", "<netmask>255.255.255.0</netmask>")
    assert edited != original
    vcin.write_text(edited, encoding="utf-8")
    code, _, err = cli("scale", "calit2", "+1")
    assert code == EXIT_USER, err
    assert f"{vcin} changed since calit2 was allocated" in err
    assert "was 10.1.1.1, is now 10.2.1.1" in err
    assert "was 255.255.0.0, is now 255.255.255.0" in err
    assert computes() == 2
    vcin.write_text(original, encoding="utf-8")
    code, _, err = cli("scale", "calit2", "+1")
    assert code == EXIT_OK, err
    assert computes() == 3


def test_a_recipe_run_does_not_bury_a_scale_killed_mid_way(
    testconn: libvirt.virConnect,
) -> None:
    """A scale killed with kill -9 leaves its run ``running`` under a dead pid, its last
    step unfinished; a recipe run with the count the VC holds then became the last run,
    and `resume` never reached the scale's rest again."""
    assert cli(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    assert cli("scale", "calit2", "+1")[0] == EXIT_OK
    ledger = Ledger(load_site(None))
    scale = last_run(ledger, "calit2")
    assert scale is not None
    dead = subprocess.Popen(["true"])
    dead.wait()
    with ledger.transaction() as conn:  # what a SIGKILL mid-scale leaves in the journal
        conn.execute(
            "UPDATE runs SET outcome='running', ended_at=NULL, pid=? WHERE id=?",
            (dead.pid, scale.id),
        )
        conn.execute(
            "UPDATE steps SET outcome='running', ended_at=NULL WHERE run_id=? AND idx="
            "(SELECT MAX(idx) FROM steps WHERE run_id=?)",
            (scale.id, scale.id),
        )
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "3")
    assert code == EXIT_USER, err
    assert f"calit2's last run ({scale.id}) is a scale that did not finish" in err
    assert "`pragmash resume calit2` finishes the scale first" in err
    record = last_run(ledger, "calit2")
    assert record is not None and record.id == scale.id  # no run recorded over it
    code, _, err = cli("resume", "calit2")
    assert code == EXIT_OK, err
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--num_compute", "3")
    assert code == EXIT_OK, err
