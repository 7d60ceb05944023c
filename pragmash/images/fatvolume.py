"""Small FAT volumes made from files, without root or an appliance: seeds and config drives.

A NoCloud seed (label ``cidata``) and pragmash's config drive (label ``PRAGMASH``) are
both a few files on a volume the guest mounts read-only. FAT is one of the two file
systems cloud-init's NoCloud reads (ISO 9660 is the other), and every cloud kernel
mounts it (cloud images boot through an EFI system partition, which is FAT).
dosfstools' ``mkfs.vfat -C`` makes the image file and mtools' ``mmd``/``mcopy`` put
files in it, as a user, with no loop device and no mount: the tools scripts/setup
installs anyway, so a seed needs no new dependency. The volume is attached as a
read-only virtio disk (:mod:`pragmash.images.libvirt_xml.domain`): unlike a CD-ROM it needs no
ATAPI or SATA driver in a slimmed cloud kernel, and FAT keeps its 512-byte sectors.

Files with the same folder and the same name on both sides go in with one ``mcopy``,
so a seed costs three processes however many files it holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pragmash.images.tools import run_tool

MIN_KIB = 1440  # FAT12 as mkfs.vfat likes it small: a floppy's size
_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def make_fat_volume(
    dest: Path,
    label: str,
    files: Sequence[tuple[Path, PurePosixPath]],
    *,
    stage: str,
    timeout: float = 60.0,
) -> Path:
    """``dest``: a FAT image labelled ``label`` holding each local file at its guest path.

    Written under a temporary name and renamed, so a killed run never leaves a volume
    that lacks files. Needs dosfstools (mkfs.vfat) and mtools (mmd, mcopy).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    payload = sum(local.stat().st_size for local, _ in files)
    size_kib = max(MIN_KIB, math.ceil(payload * 1.25 / 1024) + 512)
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    try:
        run_tool(
            ["mkfs.vfat", "-n", label, "-C", str(part), str(size_kib)],
            timeout=timeout,
            stage=stage,
        )
        made: set[PurePosixPath] = {PurePosixPath("/")}
        for folder in sorted({guest.parent for _, guest in files}, key=lambda p: len(p.parts)):
            for parent in [*reversed(folder.parents), folder]:
                if parent not in made:
                    run_tool(
                        ["mmd", "-D", "s", "-i", str(part), f"::{parent}"],
                        timeout=timeout,
                        env=_ENV,
                        stage=stage,
                    )
                    made.add(parent)
        together: dict[PurePosixPath, list[Path]] = {}
        for local, guest in files:
            if local.name == guest.name:
                together.setdefault(guest.parent, []).append(local)
            else:
                _mcopy(part, [local], f"::{guest}", timeout=timeout, stage=stage)
        for folder, locals_ in together.items():
            _mcopy(part, locals_, f"::{folder}", timeout=timeout, stage=stage)
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _mcopy(image: Path, sources: list[Path], target: str, *, timeout: float, stage: str) -> None:
    run_tool(
        ["mcopy", "-o", "-i", str(image), *map(str, sources), target],
        timeout=timeout,
        env=_ENV,
        stage=stage,
    )
