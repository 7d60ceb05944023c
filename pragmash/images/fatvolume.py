"""Small FAT volumes made from files, in Python: seeds and config drives, no process each.

A NoCloud seed (label ``cidata``) and pragmash's config drive (label ``PRAGMASH``) are
both a few files on a volume the guest mounts read-only. FAT is one of the two file
systems cloud-init's NoCloud reads (ISO 9660 is the other), and every cloud kernel
mounts it (cloud images boot through an EFI system partition, which is FAT). The
volume is attached as a read-only virtio disk (:mod:`pragmash.images.libvirt_xml.domain`): unlike a
CD-ROM it needs no ATAPI or SATA driver in a slimmed cloud kernel.

Why written here and not by mkfs.vfat and mcopy: a VC makes one seed per node, and
three tool processes per seed were most of what a node cost before its boot (issue 25:
staging and seeding at N=16 must stay within 1.3x of N=1). A volume that is written
once, whole, and never changed is a small, fully specified thing (Microsoft's FAT
specification, "FAT: General Overview of On-Disk Format"): one boot sector, two copies
of the allocation table, a root folder, and each file's clusters one after another.
The tests read what is written here with the standard tools (``fsck.vfat``, ``blkid``,
mtools) and a real guest's cloud-init reads its seed from it.

The layout is always FAT16 with 512-byte clusters or larger: FAT16 is what a cluster
count of 4,085 to 65,524 means to every reader, so the volume is made at least that
big (a sparse file: the empty clusters take no room) and one table format is enough.
Names that are not upper-case 8.3 get VFAT long-name entries beside their short alias,
as mcopy writes them, so the guest sees ``network-config`` and ``meta-data`` as named.
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pragmash.errors import StepError

SECTOR = 512
ENTRY = 32  # bytes per folder entry
ROOT_ENTRIES = 512  # the root folder's fixed size (32 sectors), as mkfs.vfat makes it
RESERVED_SECTORS = 1
FATS = 2
MEDIA = 0xF8  # a fixed disk
MIN_CLUSTERS = 4085 + 64  # FAT16 from 4,085 clusters on: a margin keeps every reader sure
MAX_CLUSTERS = 65524 - 64
MIN_SECTORS = 8192  # 4 MiB (sparse): room for MIN_CLUSTERS one-sector clusters
END_OF_CHAIN = 0xFFFF
ATTR_READ_ONLY, ATTR_DIRECTORY, ATTR_ARCHIVE, ATTR_VOLUME_ID = 0x01, 0x10, 0x20, 0x08
ATTR_LONG_NAME = 0x0F
LFN_CHARS = 13  # UCS-2 characters per long-name entry
#: Characters a short (8.3) name may hold besides upper-case letters and digits.
_SHORT_OK = re.compile(r"[A-Z0-9!#$%&'()\-@^_`{}~]")
#: Characters no FAT name may hold (the long name's rules).
_LONG_BAD = set('"*/:<>?\\|')

FileSource = bytes | Path


@dataclass
class _Node:
    """A file or folder of the volume as it is laid out."""

    name: str
    data: bytes = b""
    children: dict[str, _Node] | None = None  # a folder's, by upper-cased name
    cluster: int = 0  # its first cluster (0: empty file, or the root)
    short: bytes = b""  # its 11-byte 8.3 alias
    entries: list[bytes] = field(default_factory=list)  # its folder's entries (a folder)

    @property
    def is_folder(self) -> bool:
        return self.children is not None


def make_fat_volume(
    dest: Path, label: str, files: Mapping[PurePosixPath, FileSource], *, stage: str
) -> Path:
    """``dest``: a FAT volume labelled ``label`` holding each file at its guest path.

    ``files`` maps an absolute guest path to its content (bytes, or a local file to
    read). Written under a temporary name and renamed, so a killed run never leaves a
    volume that lacks files.
    """
    root = _Node("", children={})
    for guest, source in files.items():
        _place(root, guest, source if isinstance(source, bytes) else _read(source, stage), stage)
    image = _layout(root, _label_bytes(label, stage), stage)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with open(part, "wb") as out:
            for offset, chunk in image.chunks:
                out.seek(offset)
                out.write(chunk)
            out.truncate(image.size)  # the free clusters stay a hole
        part.replace(dest)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise StepError(f"cannot write the FAT volume {dest}: {err}", stage=stage) from err
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _read(path: Path, stage: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise StepError(f"cannot read {path} to put on a FAT volume: {err}", stage=stage) from None


def _label_bytes(label: str, stage: str) -> bytes:
    """The 11-byte volume label, space-padded (as mkfs.vfat writes it, case kept)."""
    raw = label.encode("ascii", errors="replace")
    if not 0 < len(raw) <= 11 or any(b < 0x20 or chr(b) in _LONG_BAD | {"."} for b in raw):
        raise StepError(f"{label!r} cannot be a FAT volume label", stage=stage)
    return raw.ljust(11, b" ")


def _place(root: _Node, guest: PurePosixPath, data: bytes, stage: str) -> None:
    """Put ``data`` at ``guest`` under ``root``, making its folders."""
    parts = guest.parts[1:] if guest.is_absolute() else guest.parts
    if not parts:
        raise StepError(f"{guest}: a file on a FAT volume needs a name", stage=stage)
    folder = root
    for i, part in enumerate(parts):
        _check_name(part, guest, stage)
        assert folder.children is not None
        key = part.upper()  # FAT names are compared without case
        last = i == len(parts) - 1
        there = folder.children.get(key)
        if there is not None and (last or not there.is_folder):
            raise StepError(
                f"{guest}: {there.name!r} is already on the volume (FAT names ignore case)",
                stage=stage,
            )
        if last:
            folder.children[key] = _Node(part, data=data)
        else:
            if there is None:
                there = folder.children[key] = _Node(part, children={})
            folder = there


def _check_name(name: str, guest: PurePosixPath, stage: str) -> None:
    if (
        name in (".", "..")
        or len(name) > 255
        or name != name.rstrip(" .")
        or any(ch in _LONG_BAD or ord(ch) < 0x20 or ord(ch) > 0xFFFF for ch in name)
    ):
        raise StepError(f"{guest}: {name!r} cannot be a name on a FAT volume", stage=stage)


# --- names ------------------------------------------------------------------------------


def _plain_short(name: str) -> bytes | None:
    """The 8.3 entry name of ``name`` when it is one already (upper case, 8 + 3)."""
    base, dot, ext = name.partition(".")
    if "." in ext or not 0 < len(base) <= 8 or len(ext) > 3 or (dot and not ext):
        return None
    if not all(_SHORT_OK.fullmatch(ch) for ch in base + ext):
        return None
    return (base.ljust(8) + ext.ljust(3)).encode("ascii")


def _short_alias(name: str, taken: set[bytes]) -> bytes:
    """A unique ``BASE~N.EXT`` alias for a long name (the numeric-tail rule)."""
    upper = name.upper().lstrip(". ")
    base, _, ext = upper.rpartition(".") if "." in upper else (upper, "", "")

    def clean(text: str) -> str:
        return "".join(ch if _SHORT_OK.fullmatch(ch) else "_" for ch in text if ch != " ")

    base, ext = clean(base.replace(".", "")) or "_", clean(ext)[:3]
    for n in range(1, 1_000_000):
        tail = f"~{n}"
        short = (base[: 8 - len(tail)] + tail).ljust(8) + ext.ljust(3)
        encoded = short.encode("ascii")
        if encoded not in taken:
            return encoded
    raise AssertionError("no short name left")  # a folder cannot hold a million files


def _checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _long_entries(name: str, short: bytes) -> list[bytes]:
    """The VFAT long-name entries for ``name``, in the order they go (last piece first)."""
    units = name.encode("utf-16-le")
    chars = [units[i : i + 2] for i in range(0, len(units), 2)]
    count = -(-len(chars) // LFN_CHARS)
    padded = chars + ([b"\x00\x00"] if len(chars) % LFN_CHARS else [])
    padded += [b"\xff\xff"] * (count * LFN_CHARS - len(padded))
    check = _checksum(short)
    entries = []
    for seq in range(count, 0, -1):
        piece = padded[(seq - 1) * LFN_CHARS : seq * LFN_CHARS]
        order = seq | (0x40 if seq == count else 0)
        entries.append(
            bytes([order])
            + b"".join(piece[0:5])
            + bytes([ATTR_LONG_NAME, 0, check])
            + b"".join(piece[5:11])
            + b"\x00\x00"
            + b"".join(piece[11:13])
        )
    return entries


def _short_entry(short: bytes, attr: int, cluster: int, size: int, stamp: tuple[int, int]) -> bytes:
    day, clock = stamp
    return struct.pack(
        "<11sBBBHHHHHHHI", short, attr, 0, 0, clock, day, day, 0, clock, day, cluster, size
    )


def _dos_stamp(now: float) -> tuple[int, int]:
    """(date, time) as FAT keeps them: local time, two-second steps, from 1980."""
    t = time.localtime(now)
    year = min(max(t.tm_year, 1980), 2107)
    day = ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return day, (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)


# --- the layout -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    size: int
    #: (offset, bytes): everything else is zero, a hole of the new file (the free
    #: entries of the tables and folders, the free clusters: nothing is written there)
    chunks: list[tuple[int, bytes]]


def _layout(root: _Node, label: bytes, stage: str) -> _Image:
    """Allocate clusters for every folder and file, then write the tables and entries."""
    stamp = _dos_stamp(time.time())
    folders = _folders(root)
    # every folder's entries are known before clusters: sizes first, clusters after
    for folder in folders:
        _name_children(folder)
    payload_sectors = sum(-(-_node_bytes(n) // SECTOR) for n in _all_nodes(root) if n is not root)
    sectors, per_cluster, fat_sectors = _geometry(payload_sectors, stage)
    cluster_bytes = per_cluster * SECTOR
    root_sectors = ROOT_ENTRIES * ENTRY // SECTOR
    data_start = (RESERVED_SECTORS + FATS * fat_sectors + root_sectors) * SECTOR
    fat = [0xFF00 | MEDIA, END_OF_CHAIN]
    chunks: list[tuple[int, bytes]] = []
    nodes = [n for n in _all_nodes(root) if n is not root]
    for node in nodes:  # the clusters, in order
        length = _node_bytes(node)
        if length == 0:
            continue
        count = -(-length // cluster_bytes)
        node.cluster = len(fat)
        fat += [*range(node.cluster + 1, node.cluster + count), END_OF_CHAIN]
    clusters = (sectors * SECTOR - data_start) // cluster_bytes
    if len(fat) > fat_sectors * SECTOR // 2 or len(fat) - 2 > clusters:
        raise StepError("the files do not fit the FAT volume sized for them", stage=stage)
    for folder in folders:  # the entries, now that every cluster is known
        folder.entries = _folder_entries(folder, root, label, stamp)
    for node in nodes:
        content = b"".join(node.entries) if node.is_folder else node.data
        if content:
            chunks.append((data_start + (node.cluster - 2) * cluster_bytes, content))
    table = struct.pack(f"<{len(fat)}H", *fat)  # the free entries after it stay a hole
    for copy in range(FATS):
        chunks.append(((RESERVED_SECTORS + copy * fat_sectors) * SECTOR, table))
    root_bytes = b"".join(root.entries)
    if len(root_bytes) > ROOT_ENTRIES * ENTRY:
        raise StepError(
            f"too many files for a FAT volume's root folder (at most {ROOT_ENTRIES} entries)",
            stage=stage,
        )
    chunks.append(((RESERVED_SECTORS + FATS * fat_sectors) * SECTOR, root_bytes))
    chunks.insert(0, (0, _boot_sector(sectors, per_cluster, fat_sectors, label)))
    return _Image(sectors * SECTOR, sorted(chunks))


def _folders(root: _Node) -> list[_Node]:
    return [n for n in _all_nodes(root) if n.is_folder]


def _all_nodes(node: _Node) -> list[_Node]:
    """``node`` and everything under it, folders before their contents."""
    out = [node]
    for child in (node.children or {}).values():
        out += _all_nodes(child)
    return out


def _name_children(folder: _Node) -> None:
    """Give each child its 8.3 name (plain, or an alias with long-name entries)."""
    assert folder.children is not None
    taken: set[bytes] = set()
    plain = {k: _plain_short(c.name) for k, c in folder.children.items()}
    taken.update(s for s in plain.values() if s is not None)
    for key, child in folder.children.items():
        child.short = plain[key] or _short_alias(child.name, taken)
        taken.add(child.short)
    # the entry count sizes the folder: placeholders until the clusters are known
    folder.entries = [b""] * _entry_count(folder)


def _entry_count(folder: _Node) -> int:
    assert folder.children is not None
    own = 1 if folder.name == "" else 2  # the label in the root; "." and ".." elsewhere
    return own + sum(1 + _long_count(c.name) for c in folder.children.values())


def _long_count(name: str) -> int:
    """How many long-name entries ``name`` takes (none for a plain 8.3 name)."""
    if _plain_short(name) is not None:
        return 0
    return -(-len(name.encode("utf-16-le")) // (2 * LFN_CHARS))


def _node_bytes(node: _Node) -> int:
    """What a node takes in the data area (the root folder takes none: it has its own)."""
    if node.is_folder:
        return 0 if node.name == "" else len(node.entries) * ENTRY
    return len(node.data)


def _folder_entries(
    folder: _Node, root: _Node, label: bytes, stamp: tuple[int, int]
) -> list[bytes]:
    assert folder.children is not None
    if folder is root:
        entries = [_short_entry(label, ATTR_VOLUME_ID, 0, 0, stamp)]
    else:
        parent = _parent_cluster(root, folder)
        entries = [
            _short_entry(b".".ljust(11), ATTR_DIRECTORY, folder.cluster, 0, stamp),
            _short_entry(b"..".ljust(11), ATTR_DIRECTORY, parent, 0, stamp),
        ]
    for child in folder.children.values():
        if _plain_short(child.name) is None:
            entries += _long_entries(child.name, child.short)
        attr = ATTR_DIRECTORY if child.is_folder else ATTR_ARCHIVE
        size = 0 if child.is_folder else len(child.data)
        entries.append(_short_entry(child.short, attr, child.cluster, size, stamp))
    return entries


def _parent_cluster(root: _Node, folder: _Node) -> int:
    """The cluster of ``folder``'s parent folder (0 for the root, as FAT says)."""
    for candidate in _folders(root):
        if any(c is folder for c in (candidate.children or {}).values()):
            return candidate.cluster
    raise AssertionError("a folder without a parent")


def _geometry(payload_sectors: int, stage: str) -> tuple[int, int, int]:
    """(total sectors, sectors per cluster, sectors per FAT) for a FAT16 volume with room
    for ``payload_sectors`` and a quarter more."""
    wanted = max(MIN_SECTORS, payload_sectors * 5 // 4 + 2048)
    root_sectors = ROOT_ENTRIES * ENTRY // SECTOR
    for per_cluster in (1, 2, 4, 8, 16, 32, 64):
        fat_sectors = -(-(wanted // per_cluster + 2) * 2 // SECTOR)
        data = wanted - RESERVED_SECTORS - FATS * fat_sectors - root_sectors
        clusters = data // per_cluster
        if MIN_CLUSTERS <= clusters <= MAX_CLUSTERS:
            return wanted, per_cluster, fat_sectors
    raise StepError(
        f"{payload_sectors * SECTOR} bytes are too many for a FAT16 volume", stage=stage
    )


def _boot_sector(sectors: int, per_cluster: int, fat_sectors: int, label: bytes) -> bytes:
    """The BIOS parameter block of a FAT16 volume (no boot code: it is never booted)."""
    small, large = (sectors, 0) if sectors < 0x10000 else (0, sectors)
    serial = int.from_bytes(os.urandom(4), "little")
    head = struct.pack(
        "<3s8sHBHBHHBHHHII",
        b"\xeb\x3c\x90",
        b"pragmash",
        SECTOR,
        per_cluster,
        RESERVED_SECTORS,
        FATS,
        ROOT_ENTRIES,
        small,
        MEDIA,
        fat_sectors,
        32,  # sectors per track, heads: what mkfs.vfat gives an image file
        64,
        0,
        large,
    )
    ext = struct.pack("<BBBI11s8s", 0x80, 0, 0x29, serial, label, b"FAT16   ")
    sector = head + ext
    return sector + bytes(SECTOR - 2 - len(sector)) + b"\x55\xaa"
