"""The FAT volumes pragmash writes itself (seeds, config drives), read by the standard
tools: fsck.vfat finds nothing wrong, blkid sees the label, mtools read each file back
under its long name. A real guest's cloud-init reading one is tests/vm/test_vm_cloud_init.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from pragmash.errors import StepError
from pragmash.images.fatvolume import make_fat_volume
from pragmash.images.tools import tool_runs

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
P = PurePosixPath


def fsck(image: Path) -> str:
    """fsck.vfat's read-only check: its version and its summary, not a line more (it
    says what is wrong, such as a long name's bad checksum, and still exits 0)."""
    got = subprocess.run(["fsck.vfat", "-n", str(image)], capture_output=True, text=True)
    lines = got.stdout.splitlines()
    assert got.returncode == 0 and len(lines) == 2, got.stdout + got.stderr
    assert lines[1].startswith(f"{image}: ")
    return lines[1]


def geometry(image: Path) -> str:
    return subprocess.run(
        ["fsck.vfat", "-n", "-v", str(image)], capture_output=True, text=True, check=True
    ).stdout


def blkid(image: Path) -> dict[str, str]:
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", str(image)], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def mtype(image: Path, guest: str) -> bytes:
    return subprocess.run(
        ["mtype", "-i", str(image), f"::{guest}"], env=MTOOLS_ENV, capture_output=True, check=True
    ).stdout


def listing(image: Path, folder: str = "/") -> str:
    return subprocess.run(
        ["mdir", "-a", "-i", str(image), f"::{folder}"],
        env=MTOOLS_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_seed_shaped_volume_is_clean_labelled_and_reads_back(tmp_path: Path) -> None:
    files: dict[PurePosixPath, bytes | Path] = {
        P("/meta-data"): b"instance-id: calit2-fe-abc\n",
        P("/user-data"): b"#cloud-config\n" + b"x" * 5000,  # ten clusters
        P("/network-config"): b"version: 2\n",
        P("/README"): b"plain 8.3, no long name\n",
        P("/empty"): b"",
    }
    local = tmp_path / "local.txt"
    local.write_bytes(b"from a local file\n")
    files[P("/from-disk.txt")] = local
    before = tool_runs()
    image = make_fat_volume(tmp_path / "seeds" / "fe.img", "cidata", files, stage="s")
    assert tool_runs() == before  # no process
    assert fsck(image).endswith(" 14/8093 clusters")  # 10 for user-data, 1 each but the empty one
    found = blkid(image)
    assert (found["TYPE"], found["LABEL"], found["VERSION"]) == ("vfat", "cidata", "FAT16")
    for guest, content in files.items():
        want = content.read_bytes() if isinstance(content, Path) else content
        assert mtype(image, str(guest)) == want, guest
    names = listing(image)
    for long_name in ("meta-data", "user-data", "network-config", "from-disk.txt"):
        assert long_name in names
    assert not list(image.parent.glob("*.part"))
    assert image.stat().st_blocks * 512 < image.stat().st_size // 4  # sparse


def test_folders_many_entries_unicode_and_big_files(tmp_path: Path) -> None:
    """Folders nested (made on the way), a folder of 100 files (its entries span several
    clusters), a long Unicode name with spaces, and a file big enough for clusters of
    more than one sector."""
    files: dict[PurePosixPath, bytes | Path] = {
        P(f"/pragma/many/file-{i:03}.conf"): f"{i}\n".encode() for i in range(100)
    }
    files[P("/pragma/deep/a long name with spaces ünïcode.txt")] = b"u" * 70_000
    big = bytes(range(256)) * (48 * 4096)  # 48 MiB: more than 65,524 one-sector clusters
    files[P("/big.bin")] = big
    image = make_fat_volume(tmp_path / "cfg.img", "PRAGMASH", files, stage="s")
    fsck(image)
    report = geometry(image)
    assert "bytes per cluster" in report and "  512 bytes per cluster" not in report
    assert blkid(image)["LABEL"] == "PRAGMASH"
    for i in (0, 57, 99):
        assert mtype(image, f"/pragma/many/file-{i:03}.conf") == f"{i}\n".encode()
    assert mtype(image, "/pragma/deep/a long name with spaces ünïcode.txt") == b"u" * 70_000
    assert mtype(image, "/big.bin") == big
    assert "file-099.conf" in listing(image, "/pragma/many")


def test_names_the_same_but_for_case_get_distinct_aliases_or_are_refused(tmp_path: Path) -> None:
    same_alias = {P(f"/network-config-{i}"): str(i).encode() for i in range(12)}
    image = make_fat_volume(tmp_path / "a.img", "cidata", same_alias, stage="s")
    fsck(image)
    for guest, content in same_alias.items():
        assert mtype(image, str(guest)) == content
    with pytest.raises(StepError, match="already on the volume"):
        make_fat_volume(tmp_path / "b.img", "x", {P("/Data"): b"", P("/data"): b""}, stage="s")
    with pytest.raises(StepError, match="already on the volume"):
        make_fat_volume(tmp_path / "b.img", "x", {P("/d"): b"", P("/d/e"): b""}, stage="s")
    assert not (tmp_path / "b.img").exists()


@pytest.mark.parametrize("name", ["a:b", "what?", "tab\there", "dot.", "x" * 256, "back\\slash"])
def test_names_fat_cannot_hold_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StepError, match="cannot be a name on a FAT volume") as err:
        make_fat_volume(tmp_path / "c.img", "cidata", {P("/") / name: b"x"}, stage="pre")
    assert err.value.stage == "pre"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("label", ["", "twelve chars", "a.b", "été"])
def test_labels_fat_cannot_hold_are_refused(tmp_path: Path, label: str) -> None:
    with pytest.raises(StepError, match="cannot be a FAT volume label"):
        make_fat_volume(tmp_path / "c.img", label, {P("/a"): b"x"}, stage="s")


def test_a_missing_local_file_is_a_step_error_and_the_old_volume_stays(tmp_path: Path) -> None:
    dest = make_fat_volume(tmp_path / "v.img", "cidata", {P("/a"): b"old"}, stage="s")
    with pytest.raises(StepError, match="cannot read"):
        make_fat_volume(dest, "cidata", {P("/a"): tmp_path / "nope"}, stage="s")
    assert mtype(dest, "/a") == b"old"
