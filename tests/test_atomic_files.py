"""Files replaced whole (pragmash.atomic_files): old or new content, never half, no debris."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pragmash import atomic_files
from pragmash.atomic_files import write_all_atomic, write_atomic


def test_many_files_replaced_readable_by_others_and_no_temp_left(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_bytes(b"old")
    files = {tmp_path / f"{name}.xml": name.encode() * 3 for name in ("a", "b", "c")}
    write_all_atomic(files)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "a.xml": b"aaa",
        "b.xml": b"bbb",
        "c.xml": b"ccc",
    }
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files)


def test_every_file_and_folder_is_synced_when_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = atomic_files.fsync_path

    def fsync(name: str) -> None:
        synced.append(name)
        real(name)

    monkeypatch.setattr(atomic_files, "fsync_path", fsync)
    (tmp_path / "x").mkdir()
    write_all_atomic({tmp_path / "x" / "1": b"1", tmp_path / "x" / "2": b"2"})
    # the two temp files before their renames, then their folder once
    assert len(synced) == 3 and synced[-1] == str(tmp_path / "x")
    synced.clear()
    write_atomic(tmp_path / "cache", b"c", durable=False)
    assert synced == []


def test_a_file_that_cannot_be_written_replaces_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "first.xml"
    first.write_bytes(b"kept")
    blocked = tmp_path / "ro"
    blocked.mkdir()
    blocked.chmod(0o500)
    if os.access(blocked, os.W_OK):  # root writes anywhere: make the folder a file instead
        blocked.chmod(0o700)
        blocked.rmdir()
        blocked.write_bytes(b"")
    with pytest.raises(OSError):
        write_all_atomic({first: b"new", blocked / "second.xml": b"new"})
    assert first.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_nothing_to_write_is_fine(tmp_path: Path) -> None:
    write_all_atomic({})
    assert list(tmp_path.iterdir()) == []
