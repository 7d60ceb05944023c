"""``scale +N`` on a ``[[hosts]]`` site: the new computes are placed like an allocation's.

libvirt test-driver hosts of different sizes (see multihost.py). The new computes are
placed in the lease step's transaction by the allocation's own rule (spread, within
each host's CPUs less its reserve); a site whose isolated private networks cannot span
hosts grows a VC only on its own host; a grow with no room is refused with nothing
taken and no run opened.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from support.multihost import Host, write_hosts_site

from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.libvirt


def run_cli(site: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([*args, "--site", str(site)], out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def boot(site: Path, computes: int) -> None:
    recipe = site.parent / "boot.prg"
    recipe.write_text("allocate $num_compute\nboot all\n", encoding="utf-8")
    rc, out, err = run_cli(site, str(recipe), "--vcname", "calit2", "--num_compute", str(computes))
    assert rc == 0, out + err


def hosts(site: Path) -> dict[str, str]:
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    return {n.name: n.host for n in held.nodes}


def test_new_computes_are_spread_over_the_hosts_then_refused_when_full(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4)])
    boot(site, 2)
    # reserve 1 each: frontend a (tie: first listed), compute-0 b, compute-1 a
    assert hosts(site) == {"calit2-frontend": "a", "calit2-compute-0": "b", "calit2-compute-1": "a"}
    rc, out, err = run_cli(site, "scale", "calit2", "+2")
    assert rc == 0, out + err
    placed = hosts(site)
    assert (placed["calit2-compute-2"], placed["calit2-compute-3"]) == ("b", "a")
    assert "calit2-compute-2 (10.1.1.252, " in out and "1 CPU, on b)" in out
    ledger = Ledger(load_site(site))
    run = last_run(ledger, "calit2")
    assert run is not None and run.outcome == "finished"

    # 6 usable CPUs, 5 held: one compute more would fit, two do not
    rc, out, err = run_cli(site, "scale", "calit2", "+2")
    assert rc == 2, out + err
    assert "no host has room left for calit2-compute-5" in err and "nothing was taken" in err
    assert hosts(site) == placed
    assert last_run(ledger, "calit2") == run  # refused before a run was opened


def test_an_isolated_site_grows_a_vc_on_its_own_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 5), Host("b", 6)], private="isolated")
    boot(site, 3)
    assert set(hosts(site).values()) == {"b"}  # 4 nodes of b's 5 usable CPUs
    rc, out, err = run_cli(site, "scale", "calit2", "+1")
    assert rc == 0, out + err
    assert set(hosts(site).values()) == {"b"}  # not a, although a has 4 CPUs free
    rc, out, err = run_cli(site, "scale", "calit2", "+1")
    assert rc == 2 and "nothing was taken" in err, out + err
    assert len(hosts(site)) == 5
