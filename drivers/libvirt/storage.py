"""Images on a host that does not share the head node's disks, through libvirt's storage API.

No agent of ours and no scp: the host's libvirtd receives the bytes over the same
connection that boots the domains (a ``virStream`` into ``virStorageVol.upload``),
so whatever reaches the host's libvirt (``qemu+ssh://``, ``qemu+tls://``) is enough.

* The site's **pool** (a ``dir`` pool, name and folder from the site config) is
  defined, built and started on first need, and left running for the next VC.
* A **base** (the fixed image every node of a kind shares) goes once per host and
  content: its volume is named by the content digest, and a small ``.done`` marker
  volume is made only after the upload ended, so a cut upload is never trusted (it
  is deleted and sent again). Holes are not sent (a sparse stream).
* A node's **disk** is a qcow2 volume backed by the base volume: its overlay is made
  and filled (vc-out.xml, keys) on the head node, its header pointed at the base's
  path on the host, and uploaded (it is small). ``clean`` deletes these; bases stay,
  like the head node's own image cache, until ``cache prune`` finds no volume backed
  by them.
* A node's **seed** (its NoCloud ``cidata`` volume, where settings go as a seed) is
  uploaded beside its disk as ``NAME.cidata.img``; ``clean`` deletes it with the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from html import escape  # & < > as XML text needs; xml.sax.saxutils would load urllib
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pragmash import stages
from pragmash.driver_api import HostBase, HostVolume, StageContext
from pragmash.drivers.lazy_import import lazy_module
from pragmash.errors import StepError
from pragmash.images.rebase import rebased_copy
from pragmash.vc.formats.xmlsafe import parse_xml_bytes

if TYPE_CHECKING:
    import libvirt
else:
    libvirt = lazy_module("libvirt")

BASE_PREFIX = "pragmash-base-"
DONE_SUFFIX = ".done"
DIGEST_CHARS = 32  # of the sha256 in a base volume's name: plenty against collisions

Connect = Callable[[], "libvirt.virConnect"]


def _ignore_error(_ctx: object, _err: object) -> None:
    return None


def _message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def base_volume_name(digest: str, fmt: str) -> str:
    """``pragmash-base-<digest>.raw``: the content, not the file's name, picks the volume."""
    return f"{BASE_PREFIX}{digest[:DIGEST_CHARS]}.{fmt}"


def node_volume_name(node_name: str) -> str:
    return f"{node_name}.qcow2"


def node_seed_name(node_name: str) -> str:
    return f"{node_name}.cidata.img"


def pool_xml(name: str, path: str) -> str:
    return (
        f"<pool type='dir'><name>{escape(name, quote=False)}</name>"
        f"<target><path>{escape(path, quote=False)}</path></target></pool>"
    )


def _volume_xml(name: str, capacity: int) -> str:
    """A raw, sparse file of exactly the upload's size: the bytes sent decide its format
    (libvirt probes it again when the pool is refreshed)."""
    return (
        f"<volume><name>{escape(name, quote=False)}</name><capacity unit='bytes'>{capacity}</capacity>"
        "<allocation unit='bytes'>0</allocation><target><format type='raw'/></target></volume>"
    )


#: Under the site's state folder: one lock file per (host, pool, base) being sent.
BASE_LOCKS = "base-locks"
#: The lock files and their folder: the site's admins (the state folder's group) share
#: them, as they share the ledger; a lock file is only opened and locked, never written.
LOCK_FILE_MODE = 0o660
LOCK_FOLDER_MODE = 0o2770


class LibvirtStorage:
    """One host's pool for pragmash's images, over the engine's libvirt connection.

    ``connect`` returns the host's open connection (the engine's own, so one command
    keeps one connection per host). Safe to call from the boot step's workers: the
    pool is made once, and each base is sent by one worker while the others wait.
    ``lock_dir`` holds the base locks: the site's state folder, which every account
    running the site shares (its temp folder may be each user's own).
    """

    def __init__(
        self, connect: Connect, pool: str, pool_path: str, work_dir: Path, *, lock_dir: Path
    ) -> None:
        self._connect = connect
        self.pool_name = pool
        self.pool_path = pool_path
        self.work_dir = work_dir  # where rebased copies wait for their upload
        self.lock_dir = lock_dir
        self._lock = threading.Lock()
        self._bases: dict[str, threading.Lock] = {}
        libvirt.registerErrorHandler(_ignore_error, None)  # errors are raised, not printed

    # -- the pool -------------------------------------------------------------------

    def pool(self) -> libvirt.virStoragePool:
        """The site's pool on this host, made and started where it is missing."""
        with self._lock:
            conn = self._connect()
            made: libvirt.virStoragePool | None = None
            try:
                try:
                    pool = conn.storagePoolLookupByName(self.pool_name)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                        raise
                    pool = made = conn.storagePoolDefineXML(
                        pool_xml(self.pool_name, self.pool_path), 0
                    )
                    pool.build(0)  # a dir pool: makes the folder
                    pool.setAutostart(1)
                if not pool.isActive():
                    pool.create(0)
                pool.refresh(0)
            except libvirt.libvirtError as exc:
                if made is not None:  # defined by this call: not left half-made
                    with contextlib.suppress(libvirt.libvirtError):
                        made.undefine()
                raise StepError(
                    f"cannot make storage pool {self.pool_name} ({self.pool_path}) on "
                    f"{conn.getURI()}: {_message(exc)}",
                    stage=stages.STORAGE,
                    hint="check the host's [[hosts]] pool and pool_path settings",
                ) from exc
            return pool

    def _lookup(self, pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise StepError(
                f"cannot look up volume {name}: {_message(exc)}", stage=stages.STORAGE
            ) from exc

    # -- bases ----------------------------------------------------------------------

    def put_base(self, local: Path, digest: str, fmt: str, ctx: StageContext) -> HostVolume:
        """The base on this host, sent unless a complete copy is there (its ``.done``)."""
        name = base_volume_name(digest, fmt)
        with self._lock:
            lock = self._bases.setdefault(name, threading.Lock())
        with lock:
            with self._base_lock(name, shared=True):  # there already: the usual case
                pool = self.pool()
                vol = self._lookup(pool, name)
                if vol is not None and self._lookup(pool, name + DONE_SUFFIX) is not None:
                    return HostVolume(self.pool_name, name, vol.path(), fmt, uploaded=False)
            with self._base_lock(name):
                vol = self._lookup(pool, name)
                if vol is not None and self._lookup(pool, name + DONE_SUFFIX) is not None:
                    return HostVolume(self.pool_name, name, vol.path(), fmt, uploaded=False)
                if vol is not None:  # a cut upload: never trusted
                    ctx.note(f"{name} on {self.pool_name} is incomplete: sending it again")
                    _delete(vol, name)
                vol = self._upload(pool, name, local, ctx, f"sending base {local.name}")
                self._create(pool, name + DONE_SUFFIX, 0)
                return HostVolume(self.pool_name, name, vol.path(), fmt, uploaded=True)

    @contextlib.contextmanager
    def _base_lock(self, name: str, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """The lock of base ``name`` on this host's pool, across the site's processes:
        exclusive to send or remove the base, shared while a node's disk is put onto it.

        The threads' lock above is per process, and a second process found the first
        one's upload without its ``.done``, took it for a cut one and deleted it while it
        was still being sent. The lock is the kernel's (``flock``) on a file in the
        site's state folder (every account of the site shares it, as the ledger), named
        by the host's URI, the pool and the base. Yields False (``wait=False``) when
        another holds it.
        """
        with open_lock_file(self.base_lock_path(name)) as handle:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(handle, mode if wait else mode | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def base_lock_path(self, name: str) -> Path:
        """The lock file of base ``name`` on this host's pool (see :meth:`_base_lock`)."""
        key = f"{self._connect().getURI()}\0{self.pool_name}\0{name}"
        return self.lock_dir / BASE_LOCKS / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.lock"

    def _existing_pool(self) -> libvirt.virStoragePool | None:
        """The site's pool where this host has it running; never made (for ``prune``)."""
        conn = self._connect()
        try:
            pool = conn.storagePoolLookupByName(self.pool_name)
            if not pool.isActive():
                return None
            pool.refresh(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise StepError(
                f"cannot read storage pool {self.pool_name} on {conn.getURI()}: {_message(exc)}",
                stage=stages.STORAGE,
            ) from exc
        return pool

    def _users(self, pool: libvirt.virStoragePool) -> dict[str, list[str]]:
        """Backing path -> the volumes backed by it (libvirt reads their headers)."""
        users: dict[str, list[str]] = {}
        for vol in pool.listAllVolumes(0):
            if vol.name().startswith(BASE_PREFIX):
                continue
            root = parse_xml_bytes(vol.XMLDesc(0).encode("utf-8"), "volume XML")
            backing = (root.findtext("backingStore/path") or "").strip()
            if backing:
                users.setdefault(backing, []).append(vol.name())
        return users

    def bases(self) -> list[HostBase]:
        """The base volumes in this host's pool, each with the volumes backed by it."""
        pool = self._existing_pool()
        if pool is None:
            return []
        users = self._users(pool)
        return [
            HostBase(vol.name(), vol.info()[2], tuple(sorted(users.get(vol.path(), ()))))
            for vol in sorted(pool.listAllVolumes(0), key=lambda v: v.name())
            if vol.name().startswith(BASE_PREFIX) and not vol.name().endswith(DONE_SUFFIX)
        ]

    def remove_base(self, name: str) -> str | None:
        """Delete base ``name`` unless a volume is backed by it or a run is sending it or a
        node's disk onto it now (its lock is held): None when it is gone, else why kept.
        The ``.done`` marker goes first, so a removal cut short leaves a base that the
        next run takes for a cut upload and sends again."""
        with self._base_lock(name, wait=False) as held:
            if not held:
                return "a run is sending it, or a node's disk onto it, right now"
            pool = self._existing_pool()
            vol = None if pool is None else self._lookup(pool, name)
            if pool is None or vol is None:
                return None
            users = self._users(pool).get(vol.path())
            if users:
                return f"used by {', '.join(sorted(users))}"
            done = self._lookup(pool, name + DONE_SUFFIX)
            if done is not None:
                _delete(done, name + DONE_SUFFIX)
            _delete(vol, name)
            return None

    # -- node disks -----------------------------------------------------------------

    def put_node_disk(
        self, node_name: str, overlay: Path, base: HostVolume, ctx: StageContext
    ) -> HostVolume:
        """The node's overlay, pointed at ``base`` on this host, as its own volume."""
        name = node_volume_name(node_name)
        copy = rebased_copy(overlay, base.path, base.format, self.work_dir)
        try:
            with self._base_lock(base.name, shared=True):  # no prune of the base meanwhile
                return self._put_node_disk(node_name, name, copy, base, ctx)
        finally:
            copy.unlink(missing_ok=True)

    def _put_node_disk(
        self, node_name: str, name: str, copy: Path, base: HostVolume, ctx: StageContext
    ) -> HostVolume:
        pool = self.pool()
        if self._lookup(pool, base.name + DONE_SUFFIX) is None:
            raise StepError(
                f"base {base.name} left pool {self.pool_name} on {self._connect().getURI()} "
                f"before {node_name}'s disk was put onto it (a `pragmash cache prune` meanwhile?)",
                stage=stages.STORAGE,
                hint="resume the run: the base is sent again",
            )
        old = self._lookup(pool, name)
        if old is not None:
            _delete(old, name)
        vol = self._upload(pool, name, copy, ctx, f"sending {node_name}'s disk")
        pool.refresh(0)  # so libvirt reads the qcow2 header: format and backing store
        return HostVolume(self.pool_name, name, vol.path(), "qcow2", uploaded=True)

    def put_node_seed(self, node_name: str, seed: Path, ctx: StageContext) -> HostVolume:
        """The node's NoCloud seed volume (a small FAT image), replacing an older one."""
        name = node_seed_name(node_name)
        pool = self.pool()
        old = self._lookup(pool, name)
        if old is not None:
            _delete(old, name)
        vol = self._upload(pool, name, seed, ctx, f"sending {node_name}'s NoCloud seed")
        return HostVolume(self.pool_name, name, vol.path(), "raw", uploaded=True)

    def find_node_disk(self, node_name: str) -> HostVolume | None:
        name = node_volume_name(node_name)
        vol = self._lookup(self.pool(), name)
        return None if vol is None else HostVolume(self.pool_name, name, vol.path(), "qcow2")

    def remove_node_disks(self, node_names: Sequence[str]) -> list[str]:
        pool = self.pool()
        removed: list[str] = []
        for node in node_names:
            for name in (node_volume_name(node), node_seed_name(node)):
                vol = self._lookup(pool, name)
                if vol is not None:
                    _delete(vol, name)
                    removed.append(name)
        return removed

    def volume_backing(self, name: str) -> str | None:
        """The backing store path libvirt reads from the volume's header (None: none)."""
        vol = self._lookup(self.pool(), name)
        if vol is None:
            return None
        root = parse_xml_bytes(vol.XMLDesc(0).encode("utf-8"), "volume XML")
        path = root.findtext("backingStore/path")
        return path.strip() if path else None

    # -- the stream -----------------------------------------------------------------

    def _create(self, pool: libvirt.virStoragePool, name: str, size: int) -> libvirt.virStorageVol:
        try:
            return pool.createXML(_volume_xml(name, size), 0)
        except libvirt.libvirtError as exc:
            raise StepError(
                f"cannot create volume {name} in pool {self.pool_name}: {_message(exc)}",
                stage=stages.STORAGE,
            ) from exc

    def _upload(
        self, pool: libvirt.virStoragePool, name: str, local: Path, ctx: StageContext, label: str
    ) -> libvirt.virStorageVol:
        """``local`` into a new volume ``name``, holes skipped; nothing left on failure."""
        size = local.stat().st_size
        vol = self._create(pool, name, size)
        conn = self._connect()
        stream = conn.newStream(0)
        sent = [0]
        try:
            with local.open("rb", buffering=0) as source:  # lseek below: no buffer
                vol.upload(stream, 0, size, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
                stream.sparseSendAll(*_sparse_handlers(source, size, sent, ctx, label))
                stream.finish()
        except (libvirt.libvirtError, OSError) as exc:
            _abort(stream)
            _delete(vol, name)
            why = _message(exc) if isinstance(exc, libvirt.libvirtError) else str(exc)
            raise StepError(
                f"cannot send {local} to {conn.getURI()} as {name}: {why}", stage=stages.STORAGE
            ) from exc
        except BaseException:
            _abort(stream)
            _delete(vol, name)
            raise
        ctx.progress(size, size, label)
        ctx.note(f"{label}: {sent[0]} of {size} bytes sent to {self.pool_name} (holes skipped)")
        return vol


def open_lock_file(path: Path) -> IO[bytes]:
    """``path`` opened for ``flock``, made (with its folder) where missing so that the
    site's admins' group can lock it too; flock needs no write access, so a lock file
    another account made is opened read-only."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # made by another account first: theirs
            path.parent.chmod(LOCK_FOLDER_MODE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, LOCK_FILE_MODE)
    except FileExistsError:
        return open(path, "rb")
    with contextlib.suppress(OSError):
        os.fchmod(fd, LOCK_FILE_MODE)  # the umask may have taken the group's bits
    return os.fdopen(fd, "rb")


def read_tail(conn: libvirt.virConnect, path: str, nbytes: int) -> bytes | None:
    """The last ``nbytes`` of file ``path`` on the host, read through its storage pool.

    How the head node reads a console log that QEMU writes on a host it does not share
    disks with: the file lies in a pool's folder, so a refresh makes it a volume and
    ``virStorageVol.download`` reads it. None where no pool holds it.
    """
    folder, _, name = path.rpartition("/")
    try:
        pool = conn.storagePoolLookupByTargetPath(folder)
        pool.refresh(0)
        vol = pool.storageVolLookupByName(name)
        size = vol.info()[1]
        start = max(0, size - nbytes)
        stream = conn.newStream(0)
        vol.download(stream, start, size - start, 0)
        chunks: list[bytes] = []

        def sink(_stream: libvirt.virStream, data: bytes, _opaque: object) -> int:
            chunks.append(data)
            return 0

        stream.recvAll(sink, None)
        stream.finish()
    except libvirt.libvirtError:
        return None
    return b"".join(chunks)


def remove_file(conn: libvirt.virConnect, path: str) -> bool:
    """Delete file ``path`` from the pool that holds it (a console log); absent is fine."""
    folder, _, name = path.rpartition("/")
    try:
        pool = conn.storagePoolLookupByTargetPath(folder)
        pool.refresh(0)
        pool.storageVolLookupByName(name).delete(0)
    except libvirt.libvirtError:
        return False
    return True


def _sparse_handlers(
    source: IO[bytes], size: int, sent: list[int], ctx: StageContext, label: str
) -> tuple[object, ...]:
    """libvirt's three callbacks for a sparse upload, and their opaque argument.

    ``hole`` says whether the file is in data or in a hole at its position and for
    how long (``SEEK_DATA``/``SEEK_HOLE``); ``skip`` moves past a hole; ``read``
    hands over the next bytes and reports progress.
    """
    fd = source.fileno()

    def read(_stream: libvirt.virStream, nbytes: int, _opaque: object) -> bytes:
        if ctx.cancelled():
            raise OSError("cancelled")
        data = source.read(nbytes)
        sent[0] += len(data)
        ctx.progress(source.tell(), size, label)
        return data

    def hole(_stream: libvirt.virStream, _opaque: object) -> tuple[bool, int]:
        pos = source.tell()
        if pos >= size:
            return (True, 0)
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # no data after pos: a hole to the end
            return (False, size - pos)
        if data > pos:
            os.lseek(fd, pos, os.SEEK_SET)
            return (False, data - pos)
        end = os.lseek(fd, pos, os.SEEK_HOLE)
        os.lseek(fd, pos, os.SEEK_SET)
        return (True, end - pos)

    def skip(_stream: libvirt.virStream, length: int, _opaque: object) -> int:
        source.seek(length, os.SEEK_CUR)
        return 0

    return (read, hole, skip, None)


def _abort(stream: libvirt.virStream) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()


def _delete(vol: libvirt.virStorageVol, name: str) -> None:
    try:
        vol.delete(0)
    except libvirt.libvirtError as exc:
        raise StepError(
            f"cannot delete volume {name}: {_message(exc)}", stage=stages.STORAGE
        ) from exc
