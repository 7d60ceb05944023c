"""Files replaced whole: a reader sees the old content or the new, never half.

Each file is written to a temp file in its own folder and renamed over its path. With
``durable``, the data is on disk before the rename and the renames are on disk before
the call returns, so a crash or a power cut cannot leave an empty file where a good
one was. Without it, only atomicity: what a file needs that can be made again after
a crash (a cache copy fetched again; vc-out files, which
:mod:`pragmash.vc.formats.vcout` derives from the ledger and repairs before a node
is given one).

Many durable files at once are synced together: their data from a pool of threads,
which the file system commits as a few journal transactions instead of one per file,
and each folder once after every rename in it. One file at a time cost two fsyncs
per file: 2.1 s of 3.6 s for 4096 files (bench/bench_all.py, issue 24).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SYNC_THREADS = 16  # concurrent fsyncs: enough for the file system to batch them
FILE_MODE = 0o644  # nodes, drivers and other admins read these; mkstemp gives 0600


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (and durably, unless told not to)."""
    write_all_atomic({path: data}, durable=durable)


def write_all_atomic(files: Mapping[Path, bytes], *, durable: bool = True) -> None:
    """Replace every path in ``files`` with its data, each atomically.

    Their folders must exist (a missing one is the caller's mistake, not made here).
    All are written before any is renamed; if one cannot be written, none is replaced
    and no temp file is left. The renames happen in the mapping's order.
    """
    temps: dict[Path, str] = {}
    try:
        for path, data in files.items():
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps[path] = temp
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                os.fchmod(handle.fileno(), FILE_MODE)
        if durable:
            _sync_all(list(temps.values()))
        for path, temp in list(temps.items()):
            os.replace(temp, path)
            del temps[path]
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    if durable:
        for folder in {path.parent for path in files}:
            fsync_path(str(folder))


def _sync_all(names: list[str]) -> None:
    if len(names) <= 1:
        for name in names:
            fsync_path(name)
        return
    with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(names))) as pool:
        list(pool.map(fsync_path, names))


def fsync_path(name: str | os.PathLike[str]) -> None:
    """Flush one file or folder to disk (a folder: so a rename in it lasts a crash)."""
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
