"""One sender of a base to a pool host among a head node's processes (issue 27, item 6).

The lock was per process (a threading.Lock): a second process found the first one's
upload without its ``.done`` marker, took it for a cut upload and deleted it while it
was still being sent. The lock is now a file lock; another open file description (what
another process has) holding it keeps ``put_base`` from touching the pool.
"""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import Any

from pragmash.driver_api import HostVolume, StageContext
from pragmash.drivers.libvirt import storage as libvirt_storage
from pragmash.drivers.libvirt.storage import LibvirtStorage


class _Conn:
    def getURI(self) -> str:
        return "qemu+ssh://h2/system"


class _Vol:
    def path(self) -> str:
        return "/pool/base"


def test_a_base_upload_waits_for_another_process_sending_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    storage = LibvirtStorage(lambda: _Conn(), "pragmash", "/pool", work)  # type: ignore[arg-type,return-value]
    touched: list[str] = []
    storage.pool = lambda: None  # type: ignore[method-assign,assignment,return-value]
    storage._lookup = lambda pool, name: touched.append(f"lookup {name}")  # type: ignore[method-assign,assignment,func-returns-value]

    def upload(*_args: Any) -> _Vol:
        touched.append("upload")
        return _Vol()

    storage._upload = upload  # type: ignore[method-assign,assignment]
    storage._create = lambda *_args: None  # type: ignore[method-assign,assignment,return-value]
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
