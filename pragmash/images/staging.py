"""Stage a VC's disk images: decompress once into a cache, then one disk per node.

A repository's images are often ``.img.gz`` (pragma_boot's own format), shared by
every node of a VC and by every VC made from it. Decompressing is slow, so it
happens once per *content* (the cache file is named by the sha256 of the
compressed bytes); each node then gets a copy-on-write qcow2 overlay on the cached
base (fast, tiny) or, where a site wants independent disks, a full sparse copy.

Everything is written to a temporary name and renamed into place, so a file under
its final name is always complete: a killed run, a truncated gzip or a full disk
never leaves something a later run would trust.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

from pragmash import stages
from pragmash.errors import StepError
from pragmash.images.tools import run_tool

CHUNK = 1 << 20  # 1 MiB reads: few system calls
SPARSE_BLOCK = 1 << 16  # zero runs this size and up become holes
DISK_MODE = 0o644
INDEX_NAME = "index.json"
TEMP_PREFIX = ".staging-"
QEMU_IMG_TIMEOUT = 120.0

Progress = Callable[[float, float | None, str], None]
Mode = Literal["overlay", "copy"]
_ZERO = bytes(CHUNK)


def _no_progress(done: float, total: float | None, label: str) -> None:
    """Default progress sink for callers that do not show progress."""


def image_info(path: Path) -> dict[str, Any]:
    """``qemu-img info`` as a dict; ``-U`` so an image in use by a running VM can be read."""
    result = _qemu_img_json(path)
    if result is None:
        raise StepError(f"qemu-img cannot read the disk image {path}", stage=stages.STAGE)
    return result


def _qemu_img_json(path: Path) -> dict[str, Any] | None:
    """``qemu-img info --output=json``, or None when the file is not a readable image."""
    lines: list[str] = []
    try:
        run_tool(
            ["qemu-img", "info", "-U", "--output=json", str(path)],
            timeout=QEMU_IMG_TIMEOUT,
            on_line=lines.append,
            stage=stages.STAGE,
        )
    except StepError as exc:
        if "not installed" in exc.message:
            raise
        return None
    try:
        info = json.loads("\n".join(lines))
    except json.JSONDecodeError:
        return None
    return info if isinstance(info, dict) else None


#: Formats already detected, by the file's identity (device, inode, size, change times):
#: a VC's N overlays share one base, and each would otherwise cost a ``qemu-img info``
#: to stage it and another to inject into it. Any rewrite or replacement of the file
#: changes its identity, so a stale answer is never given.
_FORMATS: dict[tuple[int, int, int, int, int], str] = {}


def _identity(path: Path) -> tuple[int, int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def image_format(path: Path) -> str:
    """The image's real format as qemu-img detects it (never trusted from the extension)."""
    try:
        key = _identity(path)
    except OSError:
        key = None
    if key is not None and key in _FORMATS:
        return _FORMATS[key]
    fmt = image_info(path).get("format")
    if not isinstance(fmt, str):
        raise StepError(f"qemu-img found no format for {path}", stage=stages.STAGE)
    if key is not None and key == _identity(path):  # unchanged while qemu-img read it
        _FORMATS[key] = fmt
    return fmt


def _remember_format(path: Path, fmt: str) -> None:
    """Record the format of a file pragmash has just written whole (an overlay it made)."""
    _FORMATS[_identity(path)] = fmt


def _is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


# --- the content-addressed cache of decompressed images ------------------------------


def _load_index(cache_dir: Path) -> dict[str, dict[str, Any]]:
    """The sidecar index; a missing or damaged one is empty (it is only a speed-up)."""
    try:
        data = json.loads((cache_dir / INDEX_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_index_entry(cache_dir: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one entry, written atomically so concurrent runs never see half an index."""
    index = _load_index(cache_dir)
    index[key] = entry
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".json", dir=cache_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(index, out, indent=1, sort_keys=True)
        os.replace(tmp, cache_dir / INDEX_NAME)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def content_digest(source: Path, cache_dir: Path, progress: Progress = _no_progress) -> str:
    """sha256 of the file, remembered by (path, size, mtime): an unchanged file is read once."""
    st = source.stat()
    key = str(source.resolve())
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = _load_index(cache_dir).get(key)
    if (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return str(entry["sha256"])
    digest = hashlib.sha256()
    done = 0
    label = f"hashing {source.name}"
    with open(source, "rb") as src:
        while block := src.read(CHUNK):
            digest.update(block)
            done += len(block)
            progress(done, st.st_size, label)
    hexdigest = digest.hexdigest()
    _save_index_entry(
        cache_dir, key, {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": hexdigest}
    )
    return hexdigest


def _zero_piece(view: memoryview, pos: int) -> bool:
    piece = view[pos : pos + SPARSE_BLOCK]
    return piece == _ZERO[: len(piece)]


def _write_sparse(out: IO[bytes], block: bytes) -> None:
    """Write a block, seeking over its all-zero 64 KiB pieces so the file stays sparse.

    The caller must ``truncate()`` at the end: a trailing hole is not written.
    """
    if block == _ZERO[: len(block)]:
        out.seek(len(block), os.SEEK_CUR)
        return
    view = memoryview(block)
    size = len(block)
    pos = 0
    while pos < size:
        start = pos
        while pos < size and not _zero_piece(view, pos):
            pos += SPARSE_BLOCK
        if pos > start:
            out.write(view[start : min(pos, size)])
        start = pos
        while pos < size and _zero_piece(view, pos):
            pos += SPARSE_BLOCK
        if pos > start:
            out.seek(min(pos, size) - start, os.SEEK_CUR)


def _disk_full(source: Path, dest: Path) -> StepError:
    return StepError(
        f"disk full while staging {source} into {dest}",
        stage=stages.STAGE,
        hint=f"free space on the file system of {dest.parent} and resume",
    )


def decompress_cached(source: Path, cache_dir: Path, progress: Progress = _no_progress) -> Path:
    """The decompressed image for a ``.gz`` source, decompressing only on a cache miss."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    digest = content_digest(source, cache_dir, progress)
    cached = cache_dir / f"{digest}.raw"
    if cached.exists():
        return cached
    total = source.stat().st_size
    label = f"decompressing {source.name}"
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".raw", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        with open(source, "rb") as raw, os.fdopen(fd, "wb") as out:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                while block := gz.read(CHUNK):
                    _write_sparse(out, block)
                    progress(raw.tell(), total, label)
            out.truncate()  # a trailing run of zeros was skipped by seek: fix the length
        tmp.chmod(DISK_MODE)
        os.replace(tmp, cached)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        tmp.unlink(missing_ok=True)
        raise StepError(
            f"{source}: truncated or corrupt gzip ({exc})",
            stage=stages.STAGE,
            hint="copy the image into the repository again; nothing was cached",
        ) from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise _disk_full(source, cached) from exc
        raise StepError(
            f"cannot decompress {source} into {cache_dir}: {exc}", stage=stages.STAGE
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return cached


# --- per-node disks -------------------------------------------------------------------


def _reusable_overlay(dest: Path, base: Path) -> bool:
    """Whether the node's existing qcow2 is its disk; False only for a file that is no disk.

    An overlay on ``base`` is reused, and so is a standalone qcow2: that is what a fix
    (virt-v2v) leaves in the overlay's place, and a resumed run must boot it, not a
    fresh overlay. An overlay on another base holds the guest's writes over an image
    the repository no longer has: it is never replaced silently.
    """
    info = _qemu_img_json(dest)
    if info is None or info.get("format") != "qcow2":
        return False  # not a qcow2 at all (our own files are renamed in whole): remade
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing is None or backing == str(base):
        return True
    raise StepError(
        f"{dest} is an overlay on {backing}, not on {base}: the repository image changed "
        "since this node was staged",
        stage=stages.STAGE,
        hint=f"the node's disk was kept; move {dest} away (or `pragmash clean` the VC) to stage "
        "it again from the new image",
    )


def _valid_copy(dest: Path, base: Path) -> bool:
    info = _qemu_img_json(dest)
    if info is None or info.get("format") != "raw":
        return False
    base_info = _qemu_img_json(base)
    return base_info is not None and info.get("virtual-size") == base_info.get("virtual-size")


def _qemu_img_to(argv: list[str], base: Path, dest: Path, timeout: float) -> None:
    """Run qemu-img writing to a temporary file beside ``dest`` (its last argument), then
    rename it into place: a failed or interrupted run never leaves a ``dest`` to trust."""
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        run_tool(["qemu-img", *argv, str(tmp)], timeout=timeout, stage=stages.STAGE)
        tmp.chmod(DISK_MODE)
        os.replace(tmp, dest)
    except StepError as exc:
        tmp.unlink(missing_ok=True)
        if "No space left" in exc.message:
            raise _disk_full(base, dest) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: A fresh overlay on a base, by (base path, format, the base's identity): its size
#: and its data runs. A new qcow2 overlay holds nothing of its own: its header, the
#: backing file's path and format, and empty tables sized by the base's virtual size.
#: Every node's overlay on one base is therefore the same file, byte for byte, so
#: qemu-img makes it once per base and process and each node gets a copy: no process
#: per node (issue 25), and the format is still written by qemu-img alone. The copy
#: writes only the 4 KiB blocks that are not all zero (a few of its 192 KiB).
_Runs = tuple[int, list[tuple[int, bytes]]]
_OVERLAYS: dict[tuple[str, str, tuple[int, int, int, int, int]], _Runs] = {}
_OVERLAYS_LOCK = threading.Lock()
_RUN_BLOCK = 4096


def _make_overlay(base: Path, base_format: str, dest: Path) -> None:
    key = (str(base), base_format, _identity(base))
    with _OVERLAYS_LOCK:
        fresh = _OVERLAYS.get(key)
        if fresh is None:
            argv = ["create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format]
            _qemu_img_to(argv, base, dest, QEMU_IMG_TIMEOUT)
            if key == (str(base), base_format, _identity(base)):  # unchanged meanwhile
                _OVERLAYS[key] = _data_runs(dest.read_bytes())
            _remember_format(dest, "qcow2")
            return
    _write_runs(dest, fresh, base)
    _remember_format(dest, "qcow2")


def _data_runs(content: bytes) -> _Runs:
    """``content`` as its length and its runs of blocks that are not all zero."""
    runs: list[tuple[int, bytes]] = []
    zero = bytes(_RUN_BLOCK)
    for start in range(0, len(content), _RUN_BLOCK):
        block = content[start : start + _RUN_BLOCK]
        if block == zero[: len(block)]:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == start:
            runs[-1] = (runs[-1][0], runs[-1][1] + block)
        else:
            runs.append((start, block))
    return len(content), runs


def _write_runs(dest: Path, runs: _Runs, base: Path) -> None:
    """The file ``runs`` describe at ``dest`` (zeros as holes), written under a
    temporary name and renamed into place."""
    size, chunks = runs
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=dest.suffix, dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for offset, chunk in chunks:
                out.seek(offset)
                out.write(chunk)
            out.truncate(size)
        tmp.chmod(DISK_MODE)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise _disk_full(base, dest) from exc
        raise StepError(f"cannot write the overlay {dest}: {exc}", stage=stages.STAGE) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of the file's data regions; holes are skipped without reading them."""
    extents: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no more data after pos
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, end))
            pos = end
    except OSError:
        return [(0, size)]  # the file system cannot tell holes apart: read everything
    return extents


def _sparse_copy(source: Path, dest: Path, progress: Progress) -> None:
    """Copy a raw image keeping holes (and zero blocks) as holes, reporting bytes done."""
    size = source.stat().st_size
    label = f"copying {source.name}"
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".raw", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            for start, end in _data_extents(src.fileno(), size):
                src.seek(start)
                out.seek(start)
                pos = start
                while pos < end:
                    block = src.read(min(CHUNK, end - pos))
                    if not block:
                        break
                    _write_sparse(out, block)
                    pos += len(block)
                    progress(pos, size, label)
            out.truncate(size)
        progress(size, size, label)
        tmp.chmod(DISK_MODE)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise _disk_full(source, dest) from exc
        raise StepError(f"cannot copy {source} to {dest}: {exc}", stage=stages.STAGE) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _convert_copy(base: Path, base_format: str, dest: Path) -> None:
    """A full raw copy of a non-raw base (qcow2 …), by qemu-img convert."""
    _qemu_img_to(["convert", "-f", base_format, "-O", "raw", str(base)], base, dest, 3600.0)


def standalone_qcow2(base: Path, dest: Path) -> Path:
    """A full qcow2 copy of ``base`` at ``dest`` that depends on nothing (a fix works on it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = ["convert", "-f", image_format(base), "-O", "qcow2", str(base)]
    _qemu_img_to(argv, base, dest, 3600.0)
    return dest


def backing_of(disk: Path) -> Path | None:
    """The file a qcow2 overlay is backed by, None for a standalone disk or an unreadable one."""
    info = _qemu_img_json(disk)
    if info is None:
        return None
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    return Path(backing) if isinstance(backing, str) else None


def staged_path(dest_dir: Path, node_name: str, mode: Mode = "overlay") -> Path:
    """Where staging puts a node's own disk: ``NODE.qcow2`` (overlay) or ``NODE.raw`` (copy)."""
    return dest_dir / f"{node_name}.{'qcow2' if mode == 'overlay' else 'raw'}"


def stage_image(
    source: Path,
    dest_dir: Path,
    node_name: str,
    *,
    mode: Mode = "overlay",
    cache_dir: Path,
    progress: Progress = _no_progress,
) -> Path:
    """Give one node its own disk from a repository image; reuse it if already staged.

    ``overlay`` gives ``dest_dir/NODE.qcow2`` backed by the (decompressed) image;
    ``copy`` gives an independent sparse ``dest_dir/NODE.raw``.
    """
    if mode not in ("overlay", "copy"):
        raise StepError(
            f"unknown staging mode {mode!r}: expected 'overlay' or 'copy'", stage=stages.STAGE
        )
    if not source.is_file():
        raise StepError(
            f"disk image {source} not found",
            stage=stages.STAGE,
            hint="check the <source file=...> of the vc-in.xml, relative to its folder",
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    if _is_gzip(source):
        base = decompress_cached(source, cache_dir, progress).resolve()
    else:
        base = source.resolve()
    base_format = image_format(base)
    dest = staged_path(dest_dir, node_name, mode)
    if mode == "overlay":
        if not (dest.exists() and _reusable_overlay(dest, base)):
            _make_overlay(base, base_format, dest)
    else:
        if not (dest.exists() and _valid_copy(dest, base)):
            if base_format == "raw":
                _sparse_copy(base, dest, progress)
            else:
                _convert_copy(base, base_format, dest)
    return dest


def remove_staged(dest_dir: Path) -> list[Path]:
    """Remove the per-node disks staging made in dest_dir (for ``clean``); the cache stays."""
    removed: list[Path] = []
    if not dest_dir.is_dir():
        return removed
    for path in sorted(dest_dir.iterdir()):
        if not path.is_file():
            continue
        if path.suffix in (".qcow2", ".raw") or path.name.startswith(TEMP_PREFIX):
            path.unlink()
            removed.append(path)
    return removed
