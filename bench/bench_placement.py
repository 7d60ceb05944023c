"""Allocating and placing a VC over many hosts: 1+1000 computes on 50 hosts vs 1+10 on one.

Each host is a libvirt test-driver host read from a file (``test:///PATH.xml``, 24
CPUs, 64 GiB), so the figures are pragmash's own work: connecting the hosts (in
parallel), reading their capacity from libvirt, the one ledger transaction that takes
the leases and places every node, and the VC's private network made on each host it
uses. Two figures per case, best of a few repeats:

- ``allocate step``: a recipe of one ``allocate`` run through the CLI (all of the above);
- ``allocate()``: the ledger transaction alone (leases + placement), capacity given.

    .venv/bin/python bench/bench_placement.py
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

from pragmash.engine.hosts.capacity import placement_input
from pragmash.engine.run.registry import load_engine
from pragmash.store.allocation import allocate, release
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcin import load_vc_in
from pragmash.vc.repository.vcdb import demo_repository_path

REPEATS = 3
HOST_CPUS = 24

HOST_XML = """\
<node>
  <cpu><mhz>2000</mhz><model>x86_64</model><active>{cpus}</active><nodes>1</nodes>
  <sockets>1</sockets><cores>{cpus}</cores><threads>1</threads></cpu>
  <memory>{kib}</memory>
  <interface type="ethernet" name="ovsbr0"><start mode="onboot"/>
    <mac address="aa:bb:cc:00:{hi:02x}:{lo:02x}"/></interface>
</node>
"""

SITE = """\
[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
vlans = [100, 110]
public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]
bridges = { "eth0.2" = "default", "eth1" = "default" }
private = "ovs"
ovs_bridge = "ovsbr0"

[resources]
reserve = 1

[paths]
state = "state"
temp = "tmp"
"""


def make_site(folder: Path, hosts: int, *, cpus: int = HOST_CPUS, mib: int = 64 << 10) -> Path:
    """A site of ``hosts`` test-driver hosts of ``cpus`` CPUs and ``mib`` MiB each."""
    folder.mkdir(parents=True)
    text = SITE
    for i in range(hosts):
        path = folder / f"host{i}.xml"
        path.write_text(HOST_XML.format(cpus=cpus, kib=mib << 10, hi=i >> 8, lo=i & 0xFF), "utf-8")
        text += f'\n[[hosts]]\nname = "host{i}"\nuri = "test://{path}"\n'
    site = folder / "site.toml"
    site.write_text(text, "utf-8")
    return site


def allocate_step(site: Path, computes: int) -> float:
    """Seconds for a one-``allocate`` recipe through the CLI, on a fresh ledger."""
    recipe = site.parent / "allocate.prg"
    recipe.write_text("allocate $num_compute\n", "utf-8")
    state = site.parent / "state"
    shutil.rmtree(state, ignore_errors=True)
    os.environ["PRAGMASH_STATE_DIR"] = str(state)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    code = main(
        [str(recipe), "--vcname", "calit2", "--num_compute", str(computes), "--site", str(site)],
        out=out,
        err=err,
    )
    elapsed = time.perf_counter() - start
    assert code == 0, out.getvalue() + err.getvalue()
    return elapsed


def allocate_call(site_path: Path, computes: int) -> float:
    """Seconds for ``allocate()`` alone (one transaction: leases and placement)."""
    os.environ["PRAGMASH_STATE_DIR"] = str(site_path.parent / "state-call")
    site = load_site(site_path)
    vcin = load_vc_in(demo_repository_path() / "calit2" / "vc-in.xml")
    engine = load_engine(site)
    given = placement_input(site, engine)
    ledger = Ledger(site)
    release(ledger, "calit2")
    start = time.perf_counter()
    held = allocate(ledger, site, "calit2", vcin, computes, hosts=given.hosts)
    elapsed = time.perf_counter() - start
    assert len(held.nodes) == computes + 1
    release(ledger, "calit2")
    return elapsed


def main_bench() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-placement-") as tmp:
        cases = {
            "1+10 on 1 host": (make_site(Path(tmp) / "one", 1), 10),
            "1+1000 on 50 hosts": (make_site(Path(tmp) / "fifty", 50), 1000),
        }
        rows: dict[str, tuple[float, float]] = {}
        for label, (site, computes) in cases.items():
            step = min(allocate_step(site, computes) for _ in range(REPEATS))
            call = min(allocate_call(site, computes) for _ in range(REPEATS))
            rows[label] = (step, call)
        print(f"{'case':<22} {'allocate step (s)':>18} {'allocate() (s)':>15}")
        for label, (step, call) in rows.items():
            print(f"{label:<22} {step:>18.3f} {call:>15.4f}")
        small, big = rows["1+10 on 1 host"], rows["1+1000 on 50 hosts"]
        print(
            f"ratio 1+1000 on 50 hosts / 1+10 on 1 host: allocate step {big[0] / small[0]:.1f}x, "
            f"allocate() {big[1] / small[1]:.1f}x (91x the nodes, 50x the hosts)"
        )


if __name__ == "__main__":
    main_bench()
