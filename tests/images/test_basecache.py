"""The fixed-image cache: one conversion per key, a lock for concurrent runs, nothing half-made.

The conversion itself is a stand-in here (``qemu-img convert`` of a small raw file):
what is tested is the cache's promises around it. The real virt-v2v goes through
the same code in tests/test_v2v_shared_slow.py.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pytest

from pragmash.errors import StepError
from pragmash.images.basecache import (
    FixKey,
    base_meta,
    base_path,
    fixed_base,
    is_fixed_base,
    list_entries,
    remove_entry,
)
from pragmash.images.staging import backing_of, stage_image, standalone_qcow2

KEY = FixKey("ab" * 32, "virt-v2v", "rocks6_client", "rocks6_client: nothing")


def raw_image(path: Path, size: str = "8M") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    return path


def converter(source: Path, calls: list[Path]) -> object:
    def make(work: Path) -> Path:
        calls.append(work)
        return standalone_qcow2(source, work / "fixed.qcow2")

    return make


def test_key_digest_changes_with_every_field() -> None:
    digests = {
        KEY.digest,
        FixKey("cd" * 32, KEY.method, KEY.driver, KEY.driver_identity).digest,
        FixKey(KEY.image_sha256, "virt-customize", KEY.driver, KEY.driver_identity).digest,
        FixKey(KEY.image_sha256, KEY.method, "centos7", KEY.driver_identity).digest,
        FixKey(KEY.image_sha256, KEY.method, KEY.driver, "scripts: 1234").digest,
    }
    assert len(digests) == 5


def test_a_base_is_made_once_then_reused(tmp_path: Path) -> None:
    source = raw_image(tmp_path / "repo" / "disk.img")
    cache = tmp_path / "cache"
    calls: list[Path] = []
    first = fixed_base(cache, KEY, source, converter(source, calls))  # type: ignore[arg-type]
    again = fixed_base(cache, KEY, source, converter(source, calls))  # type: ignore[arg-type]
    assert (first.made, again.made) == (True, False)
    assert first.path == again.path == base_path(cache, KEY)
    assert len(calls) == 1
    assert is_fixed_base(first.path, cache)
    meta = base_meta(first.path)
    assert meta["method"] == "virt-v2v" and meta["source"] == str(source)
    # the work folder is gone, only the base, its sidecar and the lock file remain
    names = sorted(p.name for p in first.path.parent.iterdir())
    assert names == sorted(f"{KEY.digest}{s}" for s in (".json", ".lock", ".qcow2"))
    # nodes overlay it
    overlay = stage_image(first.path, tmp_path / "disks", "c0", cache_dir=cache)
    assert backing_of(overlay) == first.path


def test_a_failed_conversion_leaves_nothing_trusted(tmp_path: Path) -> None:
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"

    def broken(work: Path) -> Path:
        (work / "half.qcow2").write_bytes(b"half a disk")
        raise StepError("virt-v2v failed (exit 1): No root device found", stage="ve_driver/fix")

    with pytest.raises(StepError, match="No root device"):
        fixed_base(cache, KEY, source, broken)
    assert not base_path(cache, KEY).exists()
    assert not base_path(cache, KEY).with_suffix(".json").exists()
    assert [p.suffix for p in base_path(cache, KEY).parent.iterdir()] == [".lock"]
    # the next run converts
    calls: list[Path] = []
    made = fixed_base(cache, KEY, source, converter(source, calls))  # type: ignore[arg-type]
    assert made.made and len(calls) == 1


def test_an_interrupted_conversion_is_redone_from_scratch(tmp_path: Path) -> None:
    """A killed run leaves its work folder; the next one removes it and converts again."""
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"
    leftover = base_path(cache, KEY).parent / f".work-{KEY.digest}"
    leftover.mkdir(parents=True)
    (leftover / "out.qcow2").write_bytes(b"killed mid-copy")
    calls: list[Path] = []
    made = fixed_base(cache, KEY, source, converter(source, calls))  # type: ignore[arg-type]
    assert made.made and calls == [leftover]
    assert not leftover.exists()
    assert backing_of(made.path) is None


def test_a_product_outside_the_work_folder_or_not_standalone_is_refused(tmp_path: Path) -> None:
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"

    def overlay_only(work: Path) -> Path:
        return stage_image(source, work, "input", cache_dir=cache)

    with pytest.raises(StepError, match="not a standalone disk"):
        fixed_base(cache, KEY, source, overlay_only)
    with pytest.raises(StepError, match="produced no disk in its work folder"):
        fixed_base(cache, KEY, source, lambda work: source)
    assert not base_path(cache, KEY).exists()
    assert source.exists()


def _convert_in_child(cache: str, source: str, log: str, delay: float, label: str) -> None:
    """Run in another process: fix the same key, recording conversions and progress lines."""

    def make(work: Path) -> Path:
        with open(log, "a") as out:
            out.write(f"convert {label}\n")
        time.sleep(delay)
        return standalone_qcow2(Path(source), work / "fixed.qcow2")

    def progress(done: float, total: float | None, text: str) -> None:
        with open(log, "a") as out:
            out.write(f"progress {label} {text}\n")

    result = fixed_base(Path(cache), KEY, Path(source), make, owner=label, progress=progress)
    with open(log, "a") as out:
        out.write(f"done {label} made={result.made}\n")


def test_two_runs_at_once_convert_once_and_the_other_waits(tmp_path: Path) -> None:
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"
    log = tmp_path / "log.txt"
    log.touch()
    ctx = multiprocessing.get_context("spawn")
    first = ctx.Process(
        target=_convert_in_child, args=(str(cache), str(source), str(log), 3.0, "run-1")
    )
    first.start()
    deadline = time.monotonic() + 60
    while "convert run-1" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = ctx.Process(
        target=_convert_in_child, args=(str(cache), str(source), str(log), 0.0, "run-2")
    )
    second.start()
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 0)
    lines = log.read_text().splitlines()
    assert [line for line in lines if line.startswith("convert")] == ["convert run-1"]
    assert "done run-1 made=True" in lines and "done run-2 made=False" in lines
    # the waiter said who it waited for
    waiting = [line for line in lines if line.startswith("progress run-2 waiting")]
    assert waiting and "for run-1 to fix disk.img" in waiting[0]


def test_list_and_remove_entries(tmp_path: Path) -> None:
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"
    calls: list[Path] = []
    made = fixed_base(cache, KEY, source, converter(source, calls))  # type: ignore[arg-type]
    (cache / "f00d.raw").write_bytes(b"\0" * 512)  # a decompressed image
    entries = list_entries(cache)
    assert [(e.kind, e.path) for e in entries] == [
        ("fixed", made.path),
        ("decompressed", cache / "f00d.raw"),
    ]
    assert entries[0].method == "virt-v2v" and entries[0].driver == "rocks6_client"
    assert entries[0].source == str(source)
    assert all(remove_entry(e) for e in entries)
    assert list_entries(cache) == []


def test_a_base_being_made_is_not_removed(tmp_path: Path) -> None:
    """remove_entry takes the key's lock without waiting: a busy base is left.

    flock locks belong to an open file: a second open in this process stands in
    for another run holding it.
    """
    source = raw_image(tmp_path / "disk.img")
    cache = tmp_path / "cache"
    made = fixed_base(cache, KEY, source, converter(source, []))  # type: ignore[arg-type]
    entry = list_entries(cache)[0]
    fd = os.open(made.path.with_suffix(".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert remove_entry(entry) is False
        assert made.path.exists()
    finally:
        os.close(fd)
    assert remove_entry(entry) is True
    assert not made.path.exists()
