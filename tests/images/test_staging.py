"""Staging with real qemu-img and real files: the gz cache, overlays, copies and failures."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from pragmash.errors import StepError
from pragmash.images.staging import image_format, remove_staged, stage_image
from pragmash.images.tools import tool_runs

MIB = 1 << 20


def make_raw(path: Path, size: int = 8 * MIB) -> bytes:
    """A sparse raw image with data at a few places; returns its full content."""
    with open(path, "wb") as out:
        out.truncate(size)
        for offset, fill in ((0, b"A"), (3 * MIB + 17, b"B"), (size - 4096, b"C")):
            out.seek(offset)
            out.write(fill * 4096)
    return path.read_bytes()


def gzip_file(src: Path, dest: Path) -> None:
    with open(src, "rb") as inp, gzip.open(dest, "wb") as out:
        out.write(inp.read())


def qemu_info(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    assert isinstance(info, dict)
    return info


class Recorder:
    """Collects progress calls so tests can see what work was done."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float | None, str]] = []

    def __call__(self, done: float, total: float | None, label: str) -> None:
        self.calls.append((done, total, label))

    def labels(self) -> set[str]:
        return {label.split(" ")[0] for _, _, label in self.calls}


@pytest.fixture()
def gz_image(tmp_path: Path) -> tuple[Path, bytes]:
    raw = tmp_path / "repo" / "img.raw"
    raw.parent.mkdir()
    content = make_raw(raw)
    gz = tmp_path / "repo" / "calit2.img.gz"
    gzip_file(raw, gz)
    raw.unlink()
    return gz, content


def test_gz_is_decompressed_once_into_the_cache(
    tmp_path: Path, gz_image: tuple[Path, bytes]
) -> None:
    gz, content = gz_image
    cache = tmp_path / "cache"
    first = Recorder()
    disk0 = stage_image(gz, tmp_path / "vc", "node0", cache_dir=cache, progress=first)
    assert {"hashing", "decompressing"} <= first.labels()
    done, total, _ = [c for c in first.calls if c[2].startswith("decompressing")][-1]
    assert done == total == gz.stat().st_size
    cached = sorted(cache.glob("*.raw"))
    assert len(cached) == 1
    assert len(cached[0].stem) == 64  # sha256 hex digest
    assert cached[0].read_bytes() == content
    # sparse: far fewer blocks than the 8 MiB it holds
    assert cached[0].stat().st_blocks * 512 < 2 * MIB
    before = cached[0].stat()

    second = Recorder()
    disk1 = stage_image(gz, tmp_path / "vc", "node1", cache_dir=cache, progress=second)
    assert second.labels().isdisjoint({"hashing", "decompressing"})
    after = cached[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert disk0 != disk1
    assert qemu_info(disk1)["full-backing-filename"] == str(cached[0])


def test_same_content_elsewhere_shares_the_cache_entry(
    tmp_path: Path, gz_image: tuple[Path, bytes]
) -> None:
    gz, _ = gz_image
    cache = tmp_path / "cache"
    other = tmp_path / "other.img.gz"
    other.write_bytes(gz.read_bytes())
    stage_image(gz, tmp_path / "vc1", "n", cache_dir=cache)
    rec = Recorder()
    stage_image(other, tmp_path / "vc2", "n", cache_dir=cache, progress=rec)
    assert "hashing" in rec.labels()  # a new path is hashed ...
    assert "decompressing" not in rec.labels()  # ... but the content is already there
    assert len(list(cache.glob("*.raw"))) == 1


def test_changed_source_is_hashed_again(tmp_path: Path, gz_image: tuple[Path, bytes]) -> None:
    gz, _ = gz_image
    cache = tmp_path / "cache"
    stage_image(gz, tmp_path / "vc", "n0", cache_dir=cache)
    raw = tmp_path / "new.raw"
    new_content = make_raw(raw, 4 * MIB)
    gzip_file(raw, gz)
    os.utime(gz, ns=(1, 1))  # a different mtime for sure
    rec = Recorder()
    stage_image(gz, tmp_path / "vc2", "n0", cache_dir=cache, progress=rec)
    assert {"hashing", "decompressing"} <= rec.labels()
    contents = sorted(p.read_bytes() == new_content for p in cache.glob("*.raw"))
    assert contents == [False, True]


def test_overlays_per_node_are_small_qcow2_on_the_base(tmp_path: Path) -> None:
    base = tmp_path / "calit2.img"
    make_raw(base, 64 * MIB)
    disks = [
        stage_image(base, tmp_path / "vc", f"compute-{i}", cache_dir=tmp_path / "c")
        for i in range(3)
    ]
    assert [d.name for d in disks] == ["compute-0.qcow2", "compute-1.qcow2", "compute-2.qcow2"]
    for disk in disks:
        info = qemu_info(disk)
        assert info["format"] == "qcow2"
        assert info["full-backing-filename"] == str(base.resolve())
        assert info["backing-filename-format"] == "raw"
        assert info["virtual-size"] == 64 * MIB
        assert disk.stat().st_size < 1 * MIB
    assert not (tmp_path / "c").exists()  # nothing to cache for an uncompressed image


def test_n_overlays_on_one_base_cost_two_qemu_img_runs_in_all(tmp_path: Path) -> None:
    """The base's format is read once, not once per node; qemu-img creates one overlay
    and the other nodes get copies of it; a staged overlay's format is known without
    asking qemu-img again (inject needs it); a rewritten file is re-read."""
    base = tmp_path / "calit2.img"
    make_raw(base, 16 * MIB)
    before = tool_runs()
    disks = [
        stage_image(base, tmp_path / "vc", f"compute-{i}", cache_dir=tmp_path / "c")
        for i in range(4)
    ]
    assert [image_format(d) for d in disks] == ["qcow2"] * 4
    runs = tool_runs() - before
    assert runs["qemu-img"] == 1 + 1  # one `info` of the base, one `create` for all
    subprocess.run(  # the same path, now another format: detected again
        ["qemu-img", "convert", "-O", "qcow2", str(disks[0]), str(tmp_path / "x")], check=True
    )
    os.replace(tmp_path / "x", base)
    assert image_format(base) == "qcow2"


def test_copied_overlays_are_what_qemu_img_makes_and_hold_their_own_writes(
    tmp_path: Path,
) -> None:
    """Each node's overlay is byte for byte the file `qemu-img create` makes for it,
    `qemu-img check` finds it clean, and a write through one node's overlay is not seen
    through another's (each is its own file, not a link)."""
    base = tmp_path / "calit2.img"
    content = make_raw(base, 32 * MIB)
    disks = [
        stage_image(base, tmp_path / "vc", f"c{i}", cache_dir=tmp_path / "c") for i in range(3)
    ]
    own = tmp_path / "by-qemu-img.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            str(base.resolve()),
            "-F",
            "raw",
            str(own),
        ],
        check=True,
    )
    for disk in disks:
        assert disk.read_bytes() == own.read_bytes()
        subprocess.run(["qemu-img", "check", "-q", str(disk)], check=True)
        assert oct(disk.stat().st_mode & 0o777) == oct(0o644)
    assert len({d.stat().st_ino for d in disks}) == 3
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", str(disks[1])],
        check=True,
        capture_output=True,
    )
    subprocess.run(["qemu-img", "check", "-q", str(disks[1])], check=True)
    raw = {d: tmp_path / f"{d.stem}.raw" for d in disks}
    for disk, out in raw.items():
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(out)], check=True)
    assert raw[disks[0]].read_bytes() == content
    assert raw[disks[1]].read_bytes()[: 64 * 1024] == b"\x5a" * 64 * 1024
    assert raw[disks[2]].read_bytes() == content
    assert not list((tmp_path / "vc").glob(".staging-*"))


def test_a_changed_base_gets_a_new_overlay_not_a_stale_copy(tmp_path: Path) -> None:
    """The copied overlay is keyed by the base's identity: a base replaced by a bigger
    one at the same path gives overlays of the new size."""
    base = tmp_path / "calit2.img"
    make_raw(base, 16 * MIB)
    stage_image(base, tmp_path / "vc1", "n0", cache_dir=tmp_path / "c")
    make_raw(tmp_path / "new.img", 48 * MIB)
    os.replace(tmp_path / "new.img", base)
    disk = stage_image(base, tmp_path / "vc2", "n0", cache_dir=tmp_path / "c")
    assert qemu_info(disk)["virtual-size"] == 48 * MIB
    subprocess.run(["qemu-img", "check", "-q", str(disk)], check=True)


def test_qcow2_source_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    base = tmp_path / "really-qcow2.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    disk = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    assert qemu_info(disk)["backing-filename-format"] == "qcow2"


def test_staging_is_idempotent(tmp_path: Path) -> None:
    base = tmp_path / "calit2.img"
    make_raw(base)
    first = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    ino = first.stat().st_ino
    again = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    assert again == first and again.stat().st_ino == ino


def test_broken_destination_is_replaced(tmp_path: Path) -> None:
    base = tmp_path / "calit2.img"
    make_raw(base)
    (tmp_path / "vc").mkdir()
    (tmp_path / "vc" / "fe.qcow2").write_bytes(b"not an image")
    disk = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    assert qemu_info(disk)["full-backing-filename"] == str(base.resolve())


def test_a_fixed_disk_in_the_overlays_place_is_kept(tmp_path: Path) -> None:
    """virt-v2v leaves a standalone qcow2 where the overlay was: staging again keeps it."""
    base = tmp_path / "calit2.img"
    make_raw(base)
    disk = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    converted = tmp_path / "converted.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(converted), "8M"], check=True)
    converted.replace(disk)
    fixed = disk.read_bytes()
    again = stage_image(base, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    assert again == disk and again.read_bytes() == fixed
    assert qemu_info(again).get("backing-filename") is None


def test_an_overlay_on_another_base_is_refused_and_kept(tmp_path: Path) -> None:
    old = tmp_path / "old.img"
    make_raw(old)
    disk = stage_image(old, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    before = disk.read_bytes()
    new = tmp_path / "new.img"
    make_raw(new)
    with pytest.raises(StepError) as err:
        stage_image(new, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    assert str(old.resolve()) in err.value.message and "changed" in err.value.message
    assert err.value.hint is not None and "kept" in err.value.hint
    assert disk.read_bytes() == before


def test_copy_mode_makes_an_independent_sparse_raw(
    tmp_path: Path, gz_image: tuple[Path, bytes]
) -> None:
    gz, content = gz_image
    rec = Recorder()
    disk = stage_image(
        gz, tmp_path / "vc", "compute-0", mode="copy", cache_dir=tmp_path / "c", progress=rec
    )
    assert disk.name == "compute-0.raw"
    assert disk.read_bytes() == content
    assert qemu_info(disk).get("backing-filename") is None
    assert disk.stat().st_blocks * 512 < 2 * MIB
    assert "copying" in rec.labels()
    ino = disk.stat().st_ino
    again = stage_image(gz, tmp_path / "vc", "compute-0", mode="copy", cache_dir=tmp_path / "c")
    assert again.stat().st_ino == ino


def test_copy_mode_from_qcow2_converts_to_raw(tmp_path: Path) -> None:
    base = tmp_path / "fe.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    disk = stage_image(base, tmp_path / "vc", "fe", mode="copy", cache_dir=tmp_path / "c")
    info = qemu_info(disk)
    assert (info["format"], info["virtual-size"]) == ("raw", 16 * MIB)


def _assert_nothing_trusted(cache: Path) -> None:
    leftovers = [p.name for p in cache.iterdir() if p.name != "index.json"]
    assert leftovers == []


def test_truncated_gzip_fails_and_caches_nothing(
    tmp_path: Path, gz_image: tuple[Path, bytes]
) -> None:
    gz, _ = gz_image
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    with pytest.raises(StepError) as err:
        stage_image(gz, tmp_path / "vc", "n0", cache_dir=cache)
    assert err.value.stage == "ve_driver/stage"
    assert str(gz) in err.value.message
    assert "truncated or corrupt gzip" in err.value.message
    _assert_nothing_trusted(cache)
    assert not (tmp_path / "vc" / "n0.qcow2").exists()


def test_corrupt_gzip_fails_and_caches_nothing(
    tmp_path: Path, gz_image: tuple[Path, bytes]
) -> None:
    gz, _ = gz_image
    data = bytearray(gz.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    gz.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(StepError, match="truncated or corrupt gzip"):
        stage_image(gz, tmp_path / "vc", "n0", cache_dir=cache)
    _assert_nothing_trusted(cache)


def test_missing_image_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "repo" / "nope.img.gz"
    with pytest.raises(StepError) as err:
        stage_image(missing, tmp_path / "vc", "n0", cache_dir=tmp_path / "c")
    assert str(missing) in err.value.message
    assert "not found" in err.value.message


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "a.img"
    make_raw(base)
    with pytest.raises(StepError, match="'overlay' or 'copy'"):
        stage_image(base, tmp_path / "vc", "n", mode="link", cache_dir=tmp_path)  # type: ignore[arg-type]


def test_remove_staged_removes_node_disks_only(tmp_path: Path) -> None:
    base = tmp_path / "a.img"
    make_raw(base)
    vc = tmp_path / "vc"
    a = stage_image(base, vc, "n0", cache_dir=tmp_path / "c")
    b = stage_image(base, vc, "n1", mode="copy", cache_dir=tmp_path / "c")
    (vc / "console.log").write_text("keep me")
    assert remove_staged(vc) == sorted([a, b])
    assert [p.name for p in vc.iterdir()] == ["console.log"]
    assert base.exists()
    assert remove_staged(tmp_path / "absent") == []
