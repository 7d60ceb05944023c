"""``cache list`` and ``cache prune`` cover the repository images ``sync`` fetched (``fetched/``).

Before, the images a sync or a run fetched from a web repository were invisible to
both: "no cached images" after three were fetched. The repository is served by the
loopback http server of tests/support/httprepo.py; disks are real qcow2 files (qemu-img).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli
from support.httprepo import demo_copy, serve
from support.runenv import make_env

from pragmash.errors import EXIT_OK
from pragmash.images.fetch import lock_path_of
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.libvirt


def qcow2(path: Path, backing: Path | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*args, str(path), "16M"], check=True)
    return path


def test_images_sync_fetched_are_listed_and_pruned(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        code, _, err = cli("sync", web.url)
        assert code == EXIT_OK, err
    cache = load_site(None, os.environ).image_cache
    code, out, _ = cli("cache", "list")
    assert code == EXIT_OK
    rows = [line for line in out.splitlines() if " fetched " in line]
    assert len(rows) == 3, out
    for name in ("calit2-compute.img.gz", "calit2-frontend.img.gz", "tiny-frontend.img.gz"):
        assert any(f"{name} from a repository  used by: unused" in row for row in rows), name
    listed = json.loads(cli("cache", "list", "--json")[1])
    assert {e["kind"] for e in listed} == {"fetched"}
    paths = [Path(e["path"]) for e in listed]
    assert all(p.is_file() and p.is_relative_to(cache / "fetched") for p in paths)

    code, out, _ = cli("cache", "prune", "--dry-run")
    assert "3 removed, 0 kept; would free" in out
    assert all(p.exists() for p in paths)
    code, out, _ = cli("cache", "prune")
    assert code == EXIT_OK and "3 removed, 0 kept; freed" in out
    assert not any(p.exists() for p in paths)
    assert not any(p.parent.exists() for p in paths)  # the emptied key folder goes too
    assert "no cached images" in cli("cache", "list")[1]


def test_a_fetched_image_a_vc_builds_on_is_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path / "site")
    cache, temp = env.root / "cache", env.root / "tmp"
    fetched = qcow2(cache / "fetched" / ("ab" * 32) / "calit2-frontend.qcow2")
    base = qcow2(cache / "fixed" / "k1.qcow2")
    (cache / "fixed" / "k1.json").write_text(json.dumps({"source": str(fetched)}))
    qcow2(temp / "calit2" / "disks" / "calit2-frontend.qcow2", backing=base)
    other = qcow2(cache / "fetched" / ("cd" * 32) / "unused.qcow2")

    site = str(env.site_path)
    listed = {e["path"]: e for e in json.loads(cli("cache", "list", "--json", "--site", site)[1])}
    assert listed[str(fetched)]["used_by"] == ["calit2"]  # through the base made from it
    assert listed[str(base)]["used_by"] == ["calit2"]
    assert listed[str(other)]["used_by"] == []
    assert f"sha256 {'ab' * 32}" in listed[str(fetched)]["source"]

    pruned = json.loads(cli("cache", "prune", "--json", "--site", site)[1])
    assert [e["path"] for e in pruned["removed"]] == [str(other)]
    assert sorted(e["path"] for e in pruned["kept"]) == sorted([str(base), str(fetched)])
    assert fetched.exists() and not other.exists()


def test_an_image_being_fetched_is_not_pruned(tmp_path: Path) -> None:
    env = make_env(tmp_path / "site")
    image = qcow2(env.root / "cache" / "fetched" / ("ef" * 32) / "big.qcow2")
    lock = lock_path_of(image.parent)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as assemble() holds it while it writes
        code, out, _ = cli("cache", "prune", "--site", str(env.site_path))
    assert code == EXIT_OK
    assert "kept big.qcow2: a run is making or reading it right now" in out
    assert "0 removed, 1 kept" in out and image.exists()
    assert "1 removed, 0 kept" in cli("cache", "prune", "--site", str(env.site_path))[1]
    assert not image.exists()
