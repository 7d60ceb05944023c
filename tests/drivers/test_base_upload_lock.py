"""One sender of a base to a pool host among a head node's processes (issue 27, item 6).

The lock was per process (a threading.Lock): a second process found the first one's
upload without its ``.done`` marker, took it for a cut upload and deleted it while it
was still being sent. The lock is a file lock in the site's state folder; another open file description (what
another process has) holding it keeps ``put_base`` from touching the pool.
"""

from __future__ import annotations

import fcntl
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from support.multihost import Host, write_hosts_site

from pragmash.driver_api import HostVolume, StageContext
from pragmash.drivers.libvirt import storage as libvirt_storage
from pragmash.drivers.libvirt.storage import LibvirtStorage
from pragmash.engine.hosts.disks import HostDisks
from pragmash.engine.hosts.router import HostRouter
from pragmash.engine.run.registry import load_engine
from pragmash.vc.config.site import load_site


class _Conn:
    def getURI(self) -> str:
        return "qemu+ssh://h2/system"


class _Vol:
    def path(self) -> str:
        return "/pool/base"


def test_a_base_upload_waits_for_another_process_sending_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    connect: Any = _Conn
    storage = LibvirtStorage(connect, "pragmash", "/pool", work, lock_dir=tmp_path / "state")
    touched: list[str] = []
    storage.pool = lambda: None  # type: ignore[method-assign]
    storage._lookup = lambda pool, name: touched.append(f"lookup {name}")  # type: ignore[method-assign]

    def upload(*_args: Any) -> _Vol:
        touched.append("upload")
        return _Vol()

    storage._upload = upload  # type: ignore[method-assign,assignment]
    storage._create = lambda *_args: None  # type: ignore[method-assign]
    name = libvirt_storage.base_volume_name("ab" * 32, "raw")
    ctx = StageContext("t", tmp_path, tmp_path / "vc-out.xml")
    got: list[HostVolume] = []
    # the lock taken the way another process would: by its own open file description
    lock_path = storage.base_lock_path(name)
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        sender = threading.Thread(
            target=lambda: got.append(storage.put_base(tmp_path / "b.raw", "ab" * 32, "raw", ctx))
        )
        sender.start()
        sender.join(0.5)
        assert sender.is_alive() and touched == []  # waits: the pool is not looked at
        fcntl.flock(other, fcntl.LOCK_UN)
    sender.join(10)
    assert touched[-1] == "upload" and got and got[0].uploaded


@pytest.mark.libvirt
def test_two_accounts_with_their_own_temp_folders_share_one_base_lock(tmp_path: Path) -> None:
    """The lock is in the site's state folder (shared, as the ledger), not ``[paths] temp``
    (each account's own unless set): two temp folders, one lock, group-writable."""
    extra = '\n[[hosts]]\nname = "h2"\nuri = "test:///default"\nstorage = "pool"\n'
    text = write_hosts_site(tmp_path, [Host("h1", 2)], extra=extra).read_text()
    stores = []
    for account in ("alice", "bob"):
        path = tmp_path / f"site-{account}.toml"
        path.write_text(text.replace('temp = "tmp"', f'temp = "tmp-{account}"'))
        site = load_site(path)
        engine = load_engine(site)
        assert isinstance(engine, HostRouter)
        engine.check()
        disks = HostDisks(site, engine.host_of, engine.engine_of_host, site.temp_dir / "up")
        stores.append((site, disks.store(site.hosts[1])))
    (alice_site, alice), (bob_site, bob) = stores
    assert alice_site.temp_dir != bob_site.temp_dir
    name = libvirt_storage.base_volume_name("cd" * 32, "raw")
    assert isinstance(alice, LibvirtStorage) and isinstance(bob, LibvirtStorage)
    lock = alice.base_lock_path(name)
    assert lock == bob.base_lock_path(name)
    assert lock.is_relative_to(alice_site.state_dir)
    with (
        alice._base_lock(name),
        open(bob.base_lock_path(name), "rb") as other,
        pytest.raises(BlockingIOError),  # bob's sender would wait
    ):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert stat.S_IMODE(lock.stat().st_mode) == libvirt_storage.LOCK_FILE_MODE
    assert stat.S_IMODE(lock.parent.stat().st_mode) == libvirt_storage.LOCK_FOLDER_MODE
