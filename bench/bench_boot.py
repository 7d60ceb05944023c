"""Booting N computes on test:///default: through pragmash vs the same libvirt calls made directly.

Prints, side by side in one process, the seconds for each and pragmash's overhead as
a ratio. The direct path defines and starts the very domain XML pragmash renders, so
the difference is pragmash's own work: parsing, checking, allocating in the ledger,
writing vc-out.xml, journaling every step.

    .venv/bin/python bench/bench_boot.py
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import libvirt

from pragmash.driver_api import NodePlan
from pragmash.images.libvirt_xml.domain import HostInfo, render_domain
from pragmash.ui.cli.main import main
from pragmash.vc.formats.vcin import load_vc_in
from pragmash.vc.repository.vcdb import demo_repository_path

SIZES = (1, 8, 32, 256)
REPEATS = 3


def clear(conn: libvirt.virConnect, prefix: str) -> None:
    for dom in conn.listAllDomains():
        if dom.name().startswith(prefix):
            if dom.isActive():
                dom.destroy()
            dom.undefine()


def site_for(workdir: Path, largest: int = max(SIZES)) -> Path:
    """The demo site with room for the largest N (the demo hands out 64 CPUs)."""
    site = workdir / "site.toml"
    if not site.exists():
        text = resources.files("pragmash.demo").joinpath("site.toml").read_text("utf-8")
        site.write_text(text.replace("cpus = 64 ", f"cpus = {largest + 8} "), encoding="utf-8")
    return site


def through_pragmash(n: int, workdir: Path, largest: int = max(SIZES)) -> float:
    recipe = workdir / "boot.prg"
    recipe.write_text("allocate $num_compute\nboot frontend\nboot compute\n")
    os.environ["PRAGMASH_STATE_DIR"] = str(workdir / f"state-{n}-{time.monotonic_ns()}")
    start = time.perf_counter()
    code = main(
        [
            str(recipe),
            "--vcname",
            "calit2",
            "--num_compute",
            str(n),
            "--site",
            str(site_for(workdir, largest)),
        ],
        out=io.StringIO(),
        err=io.StringIO(),
    )
    elapsed = time.perf_counter() - start
    assert code == 0
    return elapsed


def directly(conn: libvirt.virConnect, n: int) -> float:
    vcin = load_vc_in(demo_repository_path() / "calit2" / "vc-in.xml")
    host = HostInfo(emulator=None, kvm_usable=False)
    plans = []
    for i in range(n + 1):
        tmpl = vcin.frontend if i == 0 else vcin.compute
        assert tmpl is not None
        plans.append(
            NodePlan(
                name=f"direct-{i}",
                role="frontend" if i == 0 else "compute",
                index=None if i == 0 else i - 1,
                cpus=1,
                template_xml=tmpl.domain_xml,
                macs=tuple(
                    f"7a:77:6f:{i >> 8:02x}:{i & 0xFF:02x}:{j:02x}"
                    for j in range(len(tmpl.interfaces))
                ),
                networks=tuple("default" for _ in tmpl.interfaces),
                disks=tuple(str(p) for p in tmpl.disk_paths),
                domain_type="test",
            )
        )
    xmls = [render_domain(p, host) for p in plans]
    start = time.perf_counter()
    for xml in xmls:
        conn.defineXML(xml).create()
    return time.perf_counter() - start


def main_bench() -> None:
    conn = libvirt.open("test:///default")  # keeps the shared test driver alive
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(workdir / "cache")
        print(f"{'N':>3}  {'pragmash s':>10}  {'direct s':>9}  {'overhead x':>10}")
        for n in SIZES:
            ours, theirs = [], []
            for _ in range(REPEATS):
                clear(conn, "calit2-")
                ours.append(through_pragmash(n, workdir))
                clear(conn, "direct-")
                theirs.append(directly(conn, n))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{n:>3}  {a:>10.4f}  {b:>9.4f}  {a / b:>10.1f}")
        clear(conn, "calit2-")
        clear(conn, "direct-")
    conn.close()


if __name__ == "__main__":
    main_bench()
