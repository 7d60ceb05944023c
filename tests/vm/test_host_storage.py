"""Images reach a host that does not share the head node's disks: libvirt's storage API only.

The host is tests/support/secondhost.py's second libvirtd, reached over ``qemu+ssh://``; its
``/var/lib/libvirt`` is a tmpfs in its own mount namespace, so the head node cannot
see the pool's folder at all: what is there came through the connection. Checked
through the same API: the bytes read back (``virStorageVol.download``) equal the
image's, the base goes once per content, a cut upload is sent again, and a node's
volume is a qcow2 whose backing store libvirt reads as the base volume.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from support import secondhost
from support.secondhost import SecondHost

from pragmash.driver_api import HostImages, StageContext
from pragmash.drivers.libvirt.storage import (
    BASE_LOCKS,
    DONE_SUFFIX,
    LibvirtStorage,
    base_volume_name,
)
from pragmash.errors import StepError

pytestmark = pytest.mark.vm

POOL = "pragmash"
POOL_PATH = f"{secondhost.POOL_DIR}"


@pytest.fixture(scope="module")
def host2() -> Iterator[SecondHost]:
    why = secondhost.missing()
    if why is not None:
        pytest.skip(why)
    with SecondHost() as host:
        yield host


@pytest.fixture
def conn(host2: SecondHost) -> Iterator[libvirt.virConnect]:
    connection = libvirt.open(host2.uri)
    yield connection
    try:  # every test starts from no pool
        pool = connection.storagePoolLookupByName(POOL)
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        pool.undefine()
    except libvirt.libvirtError:
        pass
    connection.close()


class Seen:
    """A StageContext's notes and progress, kept."""

    def __init__(self, tmp: Path) -> None:
        self.notes: list[str] = []
        self.progress: list[tuple[float, float | None, str]] = []
        self.ctx = StageContext(
            "h2test",
            tmp,
            tmp / "vc-out.xml",
            note=self.notes.append,
            progress=lambda d, t, label: self.progress.append((d, t, label)),
        )


def _image(path: Path) -> Path:
    """A 16 MiB raw file: some data, holes between (a real base is mostly holes)."""
    with path.open("wb") as out:
        out.truncate(16 << 20)
        for offset in (0, 5 << 20, (16 << 20) - 4096):
            out.seek(offset)
            out.write(hashlib.sha256(str(offset).encode()).digest() * 128)
    return path


def _download(conn: libvirt.virConnect, vol: libvirt.virStorageVol) -> bytes:
    stream = conn.newStream(0)
    vol.download(stream, 0, 0, 0)
    chunks: list[bytes] = []

    def keep(_stream: object, data: bytes, _opaque: object) -> int:
        chunks.append(data)
        return 0

    stream.recvAll(keep, None)
    stream.finish()
    return b"".join(chunks)


def test_base_goes_once_and_arrives_whole(
    host2: SecondHost, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    image = _image(tmp_path / "base.raw")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    storage = LibvirtStorage(lambda: conn, POOL, POOL_PATH, tmp_path / "work", lock_dir=tmp_path)
    assert isinstance(storage, HostImages)
    seen = Seen(tmp_path)

    first = storage.put_base(image, digest, "raw", seen.ctx)

    assert first.uploaded
    assert first.name == base_volume_name(digest, "raw")
    assert first.path == f"{POOL_PATH}/{first.name}"
    assert not Path(first.path).exists(), "the head node must not see the host's pool"
    pool = conn.storagePoolLookupByName(POOL)
    assert pool.isActive() and pool.autostart()
    vol = pool.storageVolLookupByName(first.name)
    assert _download(conn, vol) == image.read_bytes()
    assert seen.progress[-1][:2] == (16 << 20, 16 << 20)
    sent = [n for n in seen.notes if "bytes sent" in n]
    assert sent and int(sent[0].split(": ")[1].split()[0]) < 1 << 20, sent  # holes skipped

    again = Seen(tmp_path)
    second = LibvirtStorage(
        lambda: conn, POOL, POOL_PATH, tmp_path / "work", lock_dir=tmp_path
    ).put_base(image, digest, "raw", again.ctx)
    assert not second.uploaded and second.path == first.path
    assert again.progress == [], "a base already on the host is not sent again"


def test_cut_upload_is_sent_again(conn: libvirt.virConnect, tmp_path: Path) -> None:
    image = _image(tmp_path / "base.raw")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    storage = LibvirtStorage(lambda: conn, POOL, POOL_PATH, tmp_path / "work", lock_dir=tmp_path)
    storage.put_base(image, digest, "raw", Seen(tmp_path).ctx)
    pool = conn.storagePoolLookupByName(POOL)
    pool.storageVolLookupByName(base_volume_name(digest, "raw") + DONE_SUFFIX).delete(0)

    seen = Seen(tmp_path)
    vol = storage.put_base(image, digest, "raw", seen.ctx)

    assert vol.uploaded
    assert any("incomplete: sending it again" in n for n in seen.notes), seen.notes
    assert _download(conn, pool.storageVolLookupByName(vol.name)) == image.read_bytes()


def test_node_disk_is_a_qcow2_backed_by_the_base_and_clean_removes_it(
    conn: libvirt.virConnect, tmp_path: Path
) -> None:
    image = _image(tmp_path / "base.raw")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    overlay = tmp_path / "compute-0-0.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "raw", str(overlay)],
        check=True,
    )
    subprocess.run(  # what pre_boot would have written into the node's own disk
        ["qemu-io", "-c", "write -P 0x5a 1M 64k", str(overlay)], check=True, capture_output=True
    )
    storage = LibvirtStorage(lambda: conn, POOL, POOL_PATH, tmp_path / "work", lock_dir=tmp_path)
    seen = Seen(tmp_path)
    base = storage.put_base(image, digest, "raw", seen.ctx)

    disk = storage.put_node_disk("compute-0-0", overlay, base, seen.ctx)

    assert disk.format == "qcow2" and disk.path == f"{POOL_PATH}/compute-0-0.qcow2"
    assert storage.volume_backing("compute-0-0.qcow2") == base.path
    local = subprocess.run(
        ["qemu-img", "info", "--output=json", str(overlay)], check=True, capture_output=True
    ).stdout
    assert str(image).encode() in local, "the head node's own overlay is left as it was"
    # the base's upload lock (a file per host, pool and base) stays; nothing else does
    left = [p.name for p in (tmp_path / "work").iterdir() if p.name != BASE_LOCKS]
    assert left == [], "no rebased copy left behind"
    # sent again (a resumed boot): replaced, not refused
    storage.put_node_disk("compute-0-0", overlay, base, seen.ctx)

    found = storage.find_node_disk("compute-0-0")
    assert found is not None and found.path == disk.path
    assert storage.remove_node_disks(["compute-0-0", "compute-0-1"]) == ["compute-0-0.qcow2"]
    assert storage.find_node_disk("compute-0-0") is None
    names = {v.name() for v in conn.storagePoolLookupByName(POOL).listAllVolumes(0)}
    assert names == {base.name, base.name + DONE_SUFFIX}, "bases stay for the next VC"


def test_a_pool_that_cannot_be_made_is_named(conn: libvirt.virConnect, tmp_path: Path) -> None:
    storage = LibvirtStorage(
        lambda: conn, POOL, "/proc/pragmash-no", tmp_path / "work", lock_dir=tmp_path
    )
    with pytest.raises(StepError, match=f"cannot make storage pool {POOL} \\(/proc/pragmash-no\\)"):
        storage.pool()
    assert conn.listAllStoragePools(0) == [], "a pool that could not be made is not left defined"
