"""vc-out files are derived from the ledger: written without a sync, repaired before use.

A crash of the operating system can leave a file written without fsync empty,
missing or as it was before (pragmash.vc.formats.vcout's note on durability). Each
test plays that by damaging the files after the run wrote them: one compute's file cut
to nothing, another's deleted, the VC's own file cut in half. Then whatever hands a
file to a node, or carries the VC on in a new process, must find them right again:
the same bytes the allocation wrote.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.diskengine import _driver_env, _run
from support.runenv import BOOT_ALL, RunEnv

from pragmash import atomic_files

pytestmark = pytest.mark.libvirt

FILES = ("vc-out.xml", "calit2-compute-0.xml", "calit2-compute-1.xml")


def vc_folder(env: RunEnv) -> Path:
    return env.site().temp_dir / "calit2"


def contents(env: RunEnv) -> dict[str, bytes]:
    return {name: (vc_folder(env) / name).read_bytes() for name in FILES}


def damage(env: RunEnv) -> None:
    """What a crash can do to files renamed into place without a sync."""
    folder = vc_folder(env)
    (folder / "calit2-compute-0.xml").write_bytes(b"")
    (folder / "calit2-compute-1.xml").unlink()
    whole = folder / "vc-out.xml"
    whole.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])


def test_the_run_writes_vc_out_without_one_sync_per_file(
    env: RunEnv, testconn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(atomic_files, "fsync_path", synced.append)
    result = env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2")
    assert result.rc == 0, result.err
    assert set(contents(env)) == set(FILES)
    folder = vc_folder(env)
    assert [n for n in synced if folder in (Path(n), *Path(n).parents)] == []


def test_resume_repairs_what_a_crash_did_to_the_files(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    flag = env.root / "flag"
    recipe = env.recipe(f'allocate 2\nboot frontend\nrun sh -c "test -e {flag}"\nboot compute\n')
    failed = env.cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert failed.rc != 0
    written = contents(env)
    damage(env)
    flag.touch()
    resumed = env.cli("resume", "calit2")
    assert resumed.rc == 0, resumed.err
    assert contents(env) == written


def test_start_repairs_what_a_crash_did_to_the_files(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    assert env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2").rc == 0
    written = contents(env)
    assert env.cli("stop", "calit2", "--timeout", "10").rc == 0
    damage(env)
    started = env.cli("start", "calit2")
    assert started.rc == 0, started.err
    assert contents(env) == written


PRE_BOOT_COPIES = '#!/bin/sh\ncp "$2" {out}/"$3".xml\n'


def test_a_boot_that_injects_files_hands_each_node_its_right_file(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    """The damage is done by the run itself, between ``allocate`` and ``boot``: the
    files pre_boot is given (what goes into the disks) are the allocation's."""
    env, _log = _driver_env(tmp_path / "site")
    seen = env.root / "seen"
    seen.mkdir()
    pre_boot = env.root / "drivers" / "logdistro" / "pre_boot"
    pre_boot.write_text(PRE_BOOT_COPIES.format(out=seen))
    folder = env.site().temp_dir / "calit2"
    written = env.root / "written"
    crash = (
        f"mkdir {written}; cp {folder}/vc-out.xml {folder}/calit2-compute-?.xml {written}/; "
        f"truncate -s 0 {folder}/calit2-compute-0.xml; rm {folder}/calit2-compute-1.xml; "
        f"truncate -s 100 {folder}/vc-out.xml"
    )
    rc, output = _run(env, f'allocate 2\nrun sh -c "{crash}"\nboot all\n', allow_run=True)
    assert rc == 0, output
    assert sorted(p.name for p in written.iterdir()) == sorted(FILES)
    assert (seen / "calit2-frontend.xml").read_bytes() == (written / "vc-out.xml").read_bytes()
    for name in ("calit2-compute-0", "calit2-compute-1"):
        assert (seen / f"{name}.xml").read_bytes() == (written / f"{name}.xml").read_bytes()
    for name in FILES:
        assert (folder / name).read_bytes() == (written / name).read_bytes()
