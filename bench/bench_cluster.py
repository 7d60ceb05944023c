"""What a real cluster costs as it grows: N = 1, 4, 16 computes booted from one image.

Opt-in: it boots real QEMU guests (minutes under TCG) and needs a libvirtd on
qemu:///system and libguestfs, as the vm test tier does. For each N, in one run, a
fresh VC (and a fresh image cache, so every N pays its own fix) runs

    allocate N; fix all via METHOD; boot frontend; boot compute; wait all up

and the bench prints, per N: libguestfs appliance launches (guestfish, virt-customize,
virt-v2v), virt-v2v runs, seconds of staging+fix+inject (the fix step, and each boot
step until its first domain starts), seconds from the first domain start until every
node is up, and the ratio of N=16 to N=1 for each. Targets: at most 2 appliance
launches per VC besides the conversions, virt-v2v runs equal to the number of
distinct images (1), staging+fix+inject at N=16 within 1.3x of N=1.

``--delivery seed`` gives every node its settings as a NoCloud seed (the site's
``[delivery]``) instead of writing them into its disk: the "inject" part is then the
seeds, made with no appliance (target: 0 launches besides the fix, staging+seed at
N=16 within 1.3x of N=1); ``--delivery both`` runs each size both ways and prints
both tables. The busybox guest has no cloud-init: for it the bench measures the
head node's cost, the guests do not read their seeds.

    .venv/bin/python bench/bench_cluster.py                 # Debian image, virt-v2v
    .venv/bin/python bench/bench_cluster.py --image busybox --fix none   # quick
    .venv/bin/python bench/bench_cluster.py --image busybox --delivery both --sizes 1,16

``--image debian`` uses the disk of scripts/build-distro-image ($PRAGMASH_DISTRO_IMAGE,
else its default path); ``busybox`` builds the tiny test image (tests/support/vmimage.py).
Guests' links stay down (user-mode interfaces): no traffic leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.debianvc import write_debian_vc
from support.distroimage import distro_image_path
from support.vmimage import build_test_image
from support.vmsite import write_repository, write_site

from pragmash.engine.run import session
from pragmash.images.tools import appliance_launches, tool_runs
from pragmash.store.journal import last_run, steps_of
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.ui.cli.run import finish

RECIPE = """\
allocate $num_compute
fix all via {method}
boot frontend
boot compute
wait all up timeout 60m
"""


@dataclass(frozen=True)
class Row:
    n: int
    launches: int
    v2v: int
    prep: float
    up: float
    runs: Counter[str]


def make_site(root: Path, image: str, built: Any, delivery: str) -> tuple[Path, str]:
    """A repository with one VC on the image, and a site big enough for 16 computes;
    ``delivery`` is how its nodes receive their settings (``disk`` or ``seed``)."""
    if image == "busybox":
        repo = write_repository(root, built)
        vcname = "vmtest"
    else:
        repo = root / "repo"
        vcname = "benchdeb"
        write_debian_vc(repo, vcname, built)
    site = write_site(root, repo, up={vcname: ["marker"]} if image == "busybox" else {})
    text = site.read_text()
    # its own VLANs (so bridges) apart from the tests', and room for 16 computes
    text = text.replace("vlans = [10, 20]", "vlans = [300, 310]")
    text = text.replace("cpus = 8\n", "cpus = 64\n").replace(
        "boot_parallelism = 2", "boot_parallelism = 4"
    )
    site.write_text(text + f'\n[delivery]\nvc.{vcname} = "{delivery}"\n')
    return site, vcname


def one_size(
    n: int, workdir: Path, image: str, built: Any, method: str, delivery: str = "disk"
) -> Row:
    root = workdir / f"{delivery}-n{n}"
    root.mkdir()
    site_path, vcname = make_site(root, image, built, delivery)
    recipe = root / "bench.prg"
    recipe.write_text(RECIPE.format(method=method))
    options = session.RunOptions(
        recipe=str(recipe), vcname=vcname, num_compute=n, site=str(site_path)
    )
    prep = session.prepare(options)
    engine = prep.runtime.engine
    starts: list[float] = []
    real_boot = engine.boot

    def timed_boot(node: Any, ctx: Any) -> Any:
        starts.append(time.time())
        return real_boot(node, ctx)

    engine.boot = timed_boot  # type: ignore[method-assign]
    before = tool_runs()
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    try:
        run = session.start(prep)
        code = finish(run, out, err)
    finally:
        if code != 0:  # failed or interrupted: its domains and private network go
            clean = ["clean", vcname, "--force", "--site", str(site_path)]
            cli.main(clean, out=io.StringIO(), err=io.StringIO())
    runs = tool_runs() - before
    if code != 0:
        raise SystemExit(f"N={n}: the run failed ({code}):\n{out.getvalue()}{err.getvalue()}")
    ledger = Ledger(prep.site)
    record = last_run(ledger, vcname)
    assert record is not None
    steps = steps_of(ledger, record.id)
    prep_s = 0.0
    for step in steps:
        assert step.ended_at is not None
        if step.text.startswith("fix "):
            prep_s += step.ended_at - step.started_at
        elif step.text.startswith("boot "):
            first = min(t for t in starts if step.started_at <= t <= step.ended_at)
            prep_s += first - step.started_at
    up_end = next(s.ended_at for s in steps if s.text.startswith("wait all up"))
    assert up_end is not None
    cli.main(["clean", vcname, "--site", str(site_path)], out=io.StringIO(), err=io.StringIO())
    return Row(
        n,
        appliance_launches(runs) - runs["virt-v2v"],
        runs["virt-v2v"],
        prep_s,
        up_end - min(starts),
        runs,
    )


def print_table(rows: list[Row], image: str, method: str, delivery: str) -> None:
    """One table: a row per size, then the ratio of the largest size to the smallest."""
    what = "staging+fix+seed s" if delivery == "seed" else "staging+fix+inject s"
    how = "NoCloud seeds" if delivery == "seed" else "written into the disks (appliance)"
    print(f"image: {image}, fix via {method}, settings {how}, boot_parallelism 4, TCG")
    print(
        f"{'N':>4}  {'appliance launches':>18}  {'virt-v2v runs':>13}  {what:>20}  {'first boot->all up s':>20}"
    )
    for r in rows:
        # seeds take a tenth of a second: two decimals, or the ratio would not show
        print(f"{r.n:>4}  {r.launches:>18}  {r.v2v:>13}  {r.prep:>20.2f}  {r.up:>20.1f}")
    first, last = rows[0], rows[-1]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    print(
        f"{f'{last.n}/{first.n}':>4}  {ratio(last.launches, first.launches):>18}  {ratio(last.v2v, first.v2v):>13}  "
        f"{ratio(last.prep, first.prep):>20}  {ratio(last.up, first.up):>20}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", choices=["debian", "busybox"], default="debian")
    p.add_argument(
        "--fix", default=None, help="fix method (default: virt-v2v for debian, none for busybox)"
    )
    p.add_argument("--sizes", default="1,4,16")
    p.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    p.add_argument(
        "--delivery",
        choices=["disk", "seed", "both"],
        default="disk",
        help="settings written into each disk (appliance), as NoCloud seeds, or both ways",
    )
    ns = p.parse_args()
    deliveries = ["disk", "seed"] if ns.delivery == "both" else [ns.delivery]
    method = ns.fix or ("virt-v2v" if ns.image == "debian" else "none")
    sizes = [int(x) for x in ns.sizes.split(",")]
    if subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode:
        raise SystemExit("no libvirtd answers on qemu:///system: start one (see MACHINE.md)")
    os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    os.environ.pop("PRAGMASH_STATE_DIR", None)
    conn = libvirt.open("qemu:///system")  # to check nothing is left behind
    with tempfile.TemporaryDirectory(dir=ns.dir) as tmp:
        workdir = Path(tmp)
        if ns.image == "debian":
            built: Any = distro_image_path()
            if not built.is_file():
                raise SystemExit(f"no Debian image at {built}: run scripts/build-distro-image")
        else:
            built = build_test_image(workdir / "image")
        tables: dict[str, list[Row]] = {}
        for delivery in deliveries:
            rows = tables[delivery] = []
            for n in sizes:
                started = time.monotonic()
                rows.append(one_size(n, workdir, ns.image, built, method, delivery))
                r = rows[-1]
                print(  # each size as it ends: a later size that fails loses no figures
                    f"{delivery} N={n} done in {time.monotonic() - started:.0f} s: "
                    f"{r.launches} appliance launches, {r.v2v} virt-v2v, staging+fix+"
                    f"{'seed' if delivery == 'seed' else 'inject'} {r.prep:.2f} s, first boot"
                    f"->all up {r.up:.1f} s; tools {dict(r.runs)}",
                    file=sys.stderr,
                    flush=True,
                )
        left = [
            d.name() for d in conn.listAllDomains() if d.name().startswith(("vmtest-", "benchdeb-"))
        ]
        conn.close()
    for delivery, rows in tables.items():
        print_table(rows, ns.image, method, delivery)
    if left:
        print(f"warning: domains left behind: {', '.join(left)}", file=sys.stderr)


if __name__ == "__main__":
    main()
