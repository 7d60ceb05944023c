"""The cache of fixed base images: each distinct image is fixed once, every node overlays it.

A VC is usually one image shared by the frontend and all its computes, and a fix
(virt-v2v above all: minutes under TCG) depends only on the image, the method and
the distro driver's pre_fix/post_fix. So the fixed image is cached under a key made
of those four things (:class:`FixKey`), and each node's disk becomes a small
copy-on-write overlay on it.

Three promises, because two runs may need the same base at once and any run may
be killed:

* one conversion per key: whoever holds the key's lock file (``flock``) converts;
  the others wait, reporting a progress line, and then use what it made;
* nothing half-made is trusted: the work happens in a ``.work-KEY`` folder and the
  result is renamed to ``KEY.qcow2`` only when complete (a leftover work folder is
  removed by the next run that takes the lock);
* a finished base is reused, by a later run or a ``resume``, without taking the lock.

Layout under the site's image cache: ``fixed/KEY.qcow2`` (the base), ``fixed/KEY.json``
(what it was made from, for ``pragmash cache list``), ``fixed/KEY.lock``. The cache
list also holds the decompressed images (``HASH.raw``) and the repository images a
run or ``sync`` fetched (``fetched/KEY/NAME``), so ``cache list`` and ``prune`` see
everything the cache holds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pragmash import stages
from pragmash.errors import StepError
from pragmash.images.fetch import PARTIAL_FOLDER, lock_path_of
from pragmash.images.provision import FETCHED_FOLDER
from pragmash.images.staging import DISK_MODE, image_info

FIXED_DIR = "fixed"
WORK_PREFIX = ".work-"
LOCK_POLL = 0.5  # seconds between tries while another run holds the lock

Progress = Callable[[float, float | None, str], None]


def _no_progress(done: float, total: float | None, label: str) -> None:
    """Default progress sink for callers that do not show progress."""


@dataclass(frozen=True)
class FixKey:
    """What a fixed image depends on; equal keys give interchangeable bases.

    ``driver_identity`` changes whenever the driver's pre_fix/post_fix would do
    something different (a script folder's identity is its scripts' digest).
    """

    image_sha256: str
    method: str
    driver: str
    driver_identity: str

    @property
    def digest(self) -> str:
        """The key as a file name: sha256 of its fields."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class FixedBase:
    """A fixed base ready for overlays, and how this run came by it."""

    path: Path
    key: FixKey
    made: bool  # True when this run made it; False when it was in the cache
    waited: float  # seconds spent waiting for another run's conversion


@dataclass(frozen=True)
class CacheEntry:
    """One cached base as ``pragmash cache list`` shows it."""

    path: Path
    kind: str  # "fixed" (a fixed base), "decompressed" (a .img.gz made raw) or "fetched"
    size: int  # bytes on disk
    source: str  # the repository image it came from, where known
    method: str
    driver: str
    created: float  # seconds since the epoch


def fixed_dir(cache_dir: Path) -> Path:
    return cache_dir / FIXED_DIR


def base_path(cache_dir: Path, key: FixKey) -> Path:
    """Where the fixed base for ``key`` lives once complete."""
    return fixed_dir(cache_dir) / f"{key.digest}.qcow2"


def _holder(lock_path: Path) -> str:
    """Who holds a lock, as the holder wrote it (for the waiter's progress line)."""
    try:
        return lock_path.read_text(encoding="utf-8").strip() or "another run"
    except OSError:
        return "another run"


def _lock_now(fd: int) -> bool:
    """Take ``fd``'s lock exclusively if no other process holds it; False when one does."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


@contextlib.contextmanager
def _locked(
    lock_path: Path,
    label: str,
    owner: str,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> Iterator[float]:
    """Hold ``lock_path`` exclusively; while another process holds it, report and wait.

    Yields the seconds spent waiting. The lock is the kernel's (``flock``): it goes
    away with the process that held it, so a killed conversion never blocks the next.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    try:
        while not _lock_now(fd):
            if cancelled():
                raise KeyboardInterrupt
            waited = time.monotonic() - start
            progress(waited, None, f"waiting {waited:.0f}s for {_holder(lock_path)} to fix {label}")
            time.sleep(LOCK_POLL)
        waited = time.monotonic() - start
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        try:
            yield waited
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _check_standalone(disk: Path) -> None:
    """A base must stand alone: an overlay on a repository image would break with it."""
    info = image_info(disk)
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing is not None:
        raise StepError(
            f"the fix produced {disk}, an overlay on {backing}, not a standalone disk",
            stage=stages.FIX,
        )


def _write_meta(final: Path, key: FixKey, source: Path, seconds: float) -> None:
    """The sidecar that says what a base was made from; written whole or not at all."""
    meta = {
        **asdict(key),
        "source": str(source),
        "created": time.time(),
        "seconds": round(seconds, 1),
    }
    fd, tmp = tempfile.mkstemp(prefix=WORK_PREFIX, suffix=".json", dir=final.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(meta, out, indent=1, sort_keys=True)
        os.replace(tmp, final.with_suffix(".json"))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fixed_base(
    cache_dir: Path,
    key: FixKey,
    source: Path,
    make: Callable[[Path], Path],
    *,
    owner: str = "",
    progress: Progress = _no_progress,
    cancelled: Callable[[], bool] = lambda: False,
) -> FixedBase:
    """The fixed base for ``key``, made by ``make(work_dir)`` only if no run made it yet.

    ``make`` gets an empty work folder inside the cache, does pre_fix → fix →
    post_fix there and returns the path of the standalone fixed disk it produced
    (inside the work folder); it is renamed into the cache once ``make`` returns.
    ``owner`` is shown to a run that waits (``"pid 123, VC calit2"``).
    """
    final = base_path(cache_dir, key)
    if final.is_file():
        return FixedBase(final, key, made=False, waited=0.0)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = final.with_suffix(".lock")
    label = source.name
    with _locked(lock, label, owner or f"pid {os.getpid()}", progress, cancelled) as waited:
        if final.is_file():  # another run made it while we waited
            return FixedBase(final, key, made=False, waited=waited)
        work = final.parent / f"{WORK_PREFIX}{key.digest}"
        if work.exists():
            shutil.rmtree(work)  # a killed run's leftovers: never trusted
        work.mkdir()
        started = time.monotonic()
        try:
            produced = make(work)
            if not produced.is_file() or work.resolve() not in produced.resolve().parents:
                raise StepError(
                    f"the fix of {source} produced no disk in its work folder {work}",
                    stage=stages.FIX,
                )
            _check_standalone(produced)
            produced.chmod(DISK_MODE)
            _write_meta(final, key, source, time.monotonic() - started)
            os.replace(produced, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return FixedBase(final, key, made=True, waited=waited)


# --- housekeeping -------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _disk_usage(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return 0


def base_meta(base: Path) -> dict[str, Any]:
    """What a fixed base was made from (its sidecar), empty for a file that is not one."""
    return _read_json(base.with_suffix(".json"))


def is_fixed_base(path: Path, cache_dir: Path) -> bool:
    """Whether ``path`` is a complete fixed base of this cache."""
    return (
        path.suffix == ".qcow2"
        and path.parent.resolve() == fixed_dir(cache_dir).resolve()
        and path.is_file()
    )


def list_entries(cache_dir: Path) -> list[CacheEntry]:
    """Every complete base in the cache: fixed bases and decompressed images."""
    entries: list[CacheEntry] = []
    fixed = fixed_dir(cache_dir)
    if fixed.is_dir():
        for disk in sorted(fixed.glob("*.qcow2")):
            meta = _read_json(disk.with_suffix(".json"))
            entries.append(
                CacheEntry(
                    path=disk,
                    kind="fixed",
                    size=_disk_usage(disk),
                    source=str(meta.get("source", "?")),
                    method=str(meta.get("method", "?")),
                    driver=str(meta.get("driver", "?")),
                    created=float(meta.get("created") or disk.stat().st_mtime),
                )
            )
    if cache_dir.is_dir():
        index = _read_json(cache_dir / "index.json")
        sources = {
            str(entry.get("sha256")): src for src, entry in index.items() if isinstance(entry, dict)
        }
        for raw in sorted(cache_dir.glob("*.raw")):
            entries.append(
                CacheEntry(
                    path=raw,
                    kind="decompressed",
                    size=_disk_usage(raw),
                    source=sources.get(raw.stem, "?"),
                    method="-",
                    driver="-",
                    created=raw.stat().st_mtime,
                )
            )
    return entries + _fetched_entries(cache_dir)


def _fetched_entries(cache_dir: Path) -> list[CacheEntry]:
    """The images ``sync`` and runs fetched or joined: ``fetched/KEY/NAME``, KEY their digest."""
    entries: list[CacheEntry] = []
    root = cache_dir / FETCHED_FOLDER
    if not root.is_dir():
        return entries
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != PARTIAL_FOLDER):
        for image in sorted(p for p in folder.iterdir() if p.is_file()):
            digest = folder.name if len(folder.name) == 64 else None
            entries.append(
                CacheEntry(
                    path=image,
                    kind="fetched",
                    size=_disk_usage(image),
                    source=f"{image.name}, sha256 {digest}" if digest else image.name,
                    method="-",
                    driver="-",
                    created=image.stat().st_mtime,
                )
            )
    return entries


def remove_entry(entry: CacheEntry) -> bool:
    """Remove one base unless a run is making or reading it right now (its lock is held).

    Returns False when it was left because it is busy.
    """
    if entry.kind == "fetched":
        return _remove_fetched(entry.path)
    if entry.kind != "fixed":
        entry.path.unlink(missing_ok=True)
        return True
    lock = entry.path.with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock_now(fd):
            return False
        entry.path.unlink(missing_ok=True)
        entry.path.with_suffix(".json").unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return True


def _remove_fetched(image: Path) -> bool:
    """Remove a fetched image (and its emptied folder) unless a run is fetching it now.

    The fetch holds its entry's lock while it writes (:func:`pragmash.images.fetch.assemble`);
    taking the same lock here means a download in progress is never cut from under it.
    """
    lock = lock_path_of(image.parent)
    if not lock.exists():
        image.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            image.parent.rmdir()
        return True
    fd = os.open(lock, os.O_RDWR)
    try:
        if not _lock_now(fd):
            return False
        image.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            image.parent.rmdir()  # only once it holds nothing else
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return True
