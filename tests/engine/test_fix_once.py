"""``fix`` works per image, not per node; ``clean`` keeps shared bases; ``cache`` lists and prunes.

The run uses the real libvirt engine on test:///default told it is not simulated
(as in test_failures), the product's own staging and fixed-image cache, and a
site's seed-style driver folder whose pre_fix_driver, post_fix_driver and pre_boot
scripts log each call. The demo VC's frontend and compute images are two files
with the same content: one fixed base serves all three nodes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import libvirt
import pytest
from support.diskengine import SCRIPT, RealDiskEngine, _driver_env, _run  # noqa: F401
from support.runenv import RunEnv

from pragmash.images.staging import backing_of
from pragmash.ui.cli import main as cli

pytestmark = pytest.mark.libvirt


def _cache(env: RunEnv, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["cache", *args, "--site", str(env.site_path)], out=out, err=err)
    assert rc == 0, err.getvalue()
    return out.getvalue()


def test_one_fix_per_image_then_clean_keeps_the_base_and_prune_frees_it(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, log = _driver_env(tmp_path / "site")
    rc, output = _run(env, "allocate 2\nfix all via none\nboot all\n")
    assert rc == 0, output
    calls = log.read_text().splitlines()
    # pre_fix and post_fix once for the one image; pre_boot (a script: per node) three times
    assert [c.split()[0] for c in calls].count("pre_fix_driver") == 1
    assert [c.split()[0] for c in calls].count("post_fix_driver") == 1
    assert sorted(c.split()[-1] for c in calls if c.startswith("pre_boot")) == [
        "calit2-compute-0",
        "calit2-compute-1",
        "calit2-frontend",
    ]
    fixed = sorted((env.root / "cache" / "fixed").glob("*.qcow2"))
    assert len(fixed) == 1
    disks = sorted((env.root / "tmp" / "calit2" / "disks").glob("*.qcow2"))
    assert [d.stem for d in disks] == ["calit2-compute-0", "calit2-compute-1", "calit2-frontend"]
    assert {backing_of(d) for d in disks} == {fixed[0]}
    # pre_fix worked on the image being fixed, not on a node's disk
    pre_fix_disk = Path(calls[0].split()[1])
    assert pre_fix_disk.parent.name.startswith(".work-") and not pre_fix_disk.exists()

    listed = json.loads(_cache(env, "list", "--json"))
    by_kind = {entry["kind"]: entry for entry in listed}
    assert by_kind["fixed"]["path"] == str(fixed[0])
    assert by_kind["fixed"]["used_by"] == ["calit2"] and by_kind["fixed"]["method"] == "none"
    assert by_kind["decompressed"]["used_by"] == []  # the fixed base stands alone
    pruned = json.loads(_cache(env, "prune", "--json"))
    assert [e["path"] for e in pruned["kept"]] == [str(fixed[0])]
    assert [e["kind"] for e in pruned["removed"]] == ["decompressed"]
    assert fixed[0].exists()

    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["clean", "calit2", "--site", str(env.site_path)], out=out, err=err) == 0
    assert not (env.root / "tmp" / "calit2").exists()
    assert fixed[0].exists()  # clean removes the VC's overlays, not the shared base
    text = _cache(env, "prune")
    assert f"removed {fixed[0]}" in text and "1 removed, 0 kept" in text
    assert not fixed[0].exists()
    assert "no cached images" in _cache(env, "list")


def test_a_running_node_keeps_its_disk_and_later_fixes_reuse_the_base(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, log = _driver_env(tmp_path / "site")
    rc, output = _run(env, "allocate 1\nboot all\nfix compute via none\n")
    # booting first staged the compute on the repository image: a running node's disk
    # is not swapped under it (the base was made, and stays cached)
    assert rc == 3 and "is running on" in output, output
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["clean", "calit2", "--site", str(env.site_path)], out=out, err=err) == 0
    # a new run and a repeated fix step both take the cached base: no second pre_fix
    rc, output = _run(env, "allocate 1\nfix all via none\nfix all via none\n")
    assert rc == 0, output
    assert [c.split()[0] for c in log.read_text().splitlines()].count("pre_fix_driver") == 1
    messages = [step.message or "" for step in env.steps()]
    assert "from the cache" in messages[1] and "0 fixed now" in messages[1]
    assert "already on a base fixed via none" in messages[2]


def test_editing_a_fix_script_makes_a_new_base(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, log = _driver_env(tmp_path / "site")
    assert _run(env, "allocate 1\nfix all via none\n")[0] == 0
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["clean", "calit2", "--site", str(env.site_path)], out=out, err=err) == 0
    script = env.root / "drivers" / "logdistro" / "post_fix_driver"
    script.write_text(script.read_text() + "# changed\n")
    assert _run(env, "allocate 1\nfix all via none\n")[0] == 0
    assert len(list((env.root / "cache" / "fixed").glob("*.qcow2"))) == 2
    assert [c.split()[0] for c in log.read_text().splitlines()].count("pre_fix_driver") == 2
