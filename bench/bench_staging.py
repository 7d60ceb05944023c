"""Overlay vs full copy: what staging N compute disks costs in time and in disk space.

Run: .venv/bin/python bench/bench_staging.py [--size-gb 1] [--dir /var/tmp]
The base is a sparse raw image with some data spread through it, like a real
image's used blocks; "on disk" is st_blocks*512, what the file system really spent.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pragmash.images.staging import stage_image

GIB = 1 << 30
MIB = 1 << 20


def make_base(path: Path, size: int) -> None:
    """A sparse image with 1 MiB of data every 16 MiB (about 6 % used)."""
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        out.truncate(size)
        for offset in range(0, size, 16 * MIB):
            out.seek(offset)
            out.write(block)


def used_bytes(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.iterdir() if p.is_file())


def run(n: int, mode: str, base: Path, work: Path) -> tuple[float, int]:
    dest = work / f"{mode}-{n}"
    start = time.perf_counter()
    for i in range(n):
        stage_image(base, dest, f"compute-{i}", mode=mode, cache_dir=work / "cache")  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    used = used_bytes(dest)
    for p in dest.iterdir():
        p.unlink()
    dest.rmdir()
    return seconds, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the test files")
    parser.add_argument("--counts", default="1,8,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pragmash-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        base = work / "base.raw"
        make_base(base, int(args.size_gb * GIB))
        print(
            f"base: {base.stat().st_size / GIB:.2f} GiB apparent, "
            f"{base.stat().st_blocks * 512 / MIB:.0f} MiB on disk"
        )
        header = (
            f"{'N':>3}  {'overlay s':>9}  {'overlay used':>12}  {'copy s':>8}  "
            f"{'copy used':>10}  {'time copy/ovl':>13}  {'space copy/ovl':>14}"
        )
        print(header)
        for n in (int(c) for c in args.counts.split(",")):
            o_s, o_used = run(n, "overlay", base, work)
            c_s, c_used = run(n, "copy", base, work)
            print(
                f"{n:>3}  {o_s:>9.2f}  {o_used / MIB:>9.1f} MiB  {c_s:>8.2f}  "
                f"{c_used / MIB:>6.0f} MiB  {c_s / o_s:>13.1f}  {c_used / o_used:>14.1f}"
            )


if __name__ == "__main__":
    main()
