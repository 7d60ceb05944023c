"""A site's own VE driver folder as the engine (``[engine] driver = "scripts"``).

tests/data/drivers_ve holds test doubles of a site's VE folders that ENFORCE their
caller's conventions: pb2015_ve (fix_images VC_IN TEMP frontend,compute with its last
line read back, allocate NUM_CPUS VC_IN VC_OUT TEMP KEY writing TEMP/<compute>.xml,
boot DISK HOST TEMP VC_OUT [IPOP_URL 0|1]) and pb2013_ve (allocate NUM_CPUS VC_IN
VC_OUT, fix_driver TEMP/vc-in.xml IFACES TEMP between pre_fix_driver and
post_fix_driver in their working folder, boot DISK DOMAIN_XML HOST). Each allocates on its own: its names, addresses
and MACs, which pragmash reads back and records. No libvirt: the scripts are the
engine; disks are staged with qemu-img as on any real engine.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from support.dialects import PB2013, calls
from support.keys import KEY
from support.runenv import RunEnv, make_env

from pragmash.images.staging import image_info
from pragmash.store.allocation import current_allocation

DATA = Path(__file__).parents[1] / "data" / "drivers_ve"
VC_SEED = '#!/bin/sh\necho "pre_boot $# $*" >> "$(dirname "$0")/calls.log"\n'


def _env(root: Path, ve: str, dialect: str, extra: str = "") -> tuple[RunEnv, Path]:
    env = make_env(
        root,
        extra=f'\n[drivers]\nfolders = ["drivers"]\nve = "{ve}"\n'
        f'dialects = {{ {ve} = "{dialect}", pb2013_client = "pragma_boot-2013" }}\n' + extra,
    )
    site = env.site_path.read_text().replace("[engine]\n", '[engine]\ndriver = "scripts"\n')
    env.site_path.write_text(site.replace('uri = "test:///default"\n', ""))
    drivers = env.root / "drivers"
    shutil.copytree(DATA / ve, drivers / ve)
    shutil.copy(DATA / "pbtest.py", drivers / "pbtest.py")
    shutil.copytree(PB2013, drivers / "pb2013_client")
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "pb2013_client"))
    return env, drivers / ve


def test_a_2015_ve_folder_fixes_allocates_and_boots(tmp_path: Path) -> None:
    env, folder = _env(tmp_path / "site", "pb2015_ve", "pragma_boot-2015")
    key = env.root / "id.pub"
    key.write_text(KEY + "\n")
    recipe = env.recipe("ve_driver/fix_images\nallocate 3\nboot frontend\nboot compute\n")
    result = env.cli(str(recipe), "--vcname", "calit2", "--key", str(key))
    assert result.rc == 0, result
    temp = env.root / "tmp" / "calit2"
    logged = calls(folder)
    assert [s for s, _, _ in logged] == ["fix_images", "allocate", "boot", "boot", "boot"]
    assert logged[0][2] == [str(env.repo / "calit2" / "vc-in.xml"), str(temp), "frontend,compute"]
    assert logged[1][2][:4] == [
        "3",
        str(env.repo / "calit2" / "vc-in.xml"),
        str(temp / "vc-out.xml"),
        str(temp),
    ]
    assert Path(logged[1][2][4]).read_text() == KEY + "\n"
    # boot: the disks fix_images named, HOST the fqdn then each compute's name
    # (the frontend's step first; the computes boot in parallel)
    assert logged[2][2][:2] == [str(temp / "fe-fixed.img"), "hosted-vc.site.example.org"]
    assert sorted(a[:2] for _, _, a in logged[3:]) == [
        [str(temp / "compute-fixed.img"), "hosted-vm-0-0-0"],
        [str(temp / "compute-fixed.img"), "hosted-vm-0-1-0"],
    ]
    # the site's allocation is the ledger's: its names, addresses and MACs
    held = current_allocation(env.ledger(), "calit2")
    assert held is not None
    assert (held.public.ip, held.public.fqdn) == ("198.51.100.7", "hosted-vc.site.example.org")
    assert [(n.name, n.cpus, n.macs[0]) for n in held.computes] == [
        ("hosted-vm-0-0-0", 2, "7a:77:6e:40:00:20"),
        ("hosted-vm-0-1-0", 1, "7a:77:6e:40:00:21"),
    ]
    assert held.frontend.macs == ("7a:77:6e:40:00:15", "7a:77:6e:40:00:16")
    steps = env.steps()
    assert (
        steps[0].message
        == f"frontend disk {temp / 'fe-fixed.img'}, compute disk {temp / 'compute-fixed.img'}"
    )
    assert "by scripts:pb2015_ve's allocate" in (steps[1].message or "")
    # what a script engine cannot tell, status says; clean releases the leases
    status = env.cli("status", "calit2")
    assert status.rc == 0, status
    assert "unknown" in status.out
    clean = env.cli("clean", "calit2")
    assert clean.rc == 0, clean
    assert "hosted-vm-0-0-0: the site's VE driver folder" in clean.out + clean.err
    assert "cannot tell a node's state, nor stop or destroy it" in clean.out + clean.err
    assert "destroyed" not in clean.out + clean.err  # it did not, and does not say so
    assert current_allocation(env.ledger(), "calit2") is None


def test_ipop_boot_gets_the_url_and_the_client_flag(tmp_path: Path) -> None:
    env, folder = _env(
        tmp_path / "site", "pb2015_ve", "pragma_boot-2015-ipop", 'ipop_url = "file:///srv/ipop"\n'
    )
    (folder / "ipop").write_text("")
    result = env.cli(str(env.recipe("allocate 1\nboot all\n")), "--vcname", "calit2")
    assert result.rc == 0, result
    boots = [a for s, _, a in calls(folder) if s == "boot"]
    flags = {b[1]: b[4:] for b in boots}  # by HOST (boot all runs in parallel)
    assert flags == {
        "hosted-vc.site.example.org": ["file:///srv/ipop", "0"],
        "hosted-vm-0-0-0": ["file:///srv/ipop", "1"],
    }


def test_a_2013_ve_folder_with_a_2013_vc_folder(tmp_path: Path) -> None:
    env, folder = _env(tmp_path / "site", "pb2013_ve", "pragma_boot-2013")
    result = env.cli(
        str(env.recipe("allocate 2\nfix all via none\nboot all\n")), "--vcname", "calit2"
    )
    assert result.rc == 0, result
    logged = calls(folder)
    assert [(s, len(a)) for s, _, a in logged] == [("allocate", 3), ("boot", 3), ("boot", 3)]
    vc = calls(env.root / "drivers" / "pb2013_client")
    assert [s for s, _, _ in vc] == ["pre_fix_driver", "post_fix_driver", "pre_boot", "pre_boot"]
    assert {a[2] for s, _, a in logged if s == "boot"} == {
        "hosted-vc.site.example.org",
        "hosted-vm-0-0-0",
    }


MIB = 1024 * 1024


def test_fix_via_virt_v2v_is_a_2013_folders_fix_driver_as_v02_called_it(tmp_path: Path) -> None:
    env, folder = _env(tmp_path / "site", "pb2013_ve", "pragma_boot-2013")
    # two images (the demo's are one content, which the cache would fix once)
    compute_image = env.repo / "calit2" / "calit2-compute.img.gz"
    compute_image.write_bytes(gzip.compress(b"\1" * 2 * MIB))
    recipe = env.recipe("allocate 2\nfix all via virt-v2v\nboot all\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 0, result
    client = env.root / "drivers" / "pb2013_client"
    fixes = [(cwd, a) for s, cwd, a in calls(folder) if s == "fix_driver"]
    pres = [(cwd, a) for s, cwd, a in calls(client) if s == "pre_fix_driver"]
    posts = [(cwd, a) for s, cwd, a in calls(client) if s == "post_fix_driver"]
    assert len(fixes) == len(pres) == len(posts) == 2
    # per image: one disk in TEMP, TEMP/vc-in.xml naming it, one working folder (the
    # double refuses a call whose ./yum.backup pre_fix did not leave: the order too)
    for (cwd, (xml, _ifaces, temp)), (pre_cwd, pre), (post_cwd, post) in zip(
        fixes, pres, posts, strict=True
    ):
        assert cwd == pre_cwd == post_cwd
        assert xml == str(Path(temp) / "vc-in.xml")
        assert pre == post == [str(Path(temp) / "image.qcow2")]
    # IFACES: the frontend's two bridges, the compute's one, each with its comma
    assert sorted(a[1] for _, a in fixes) == ["eth0.2,", "eth0.2,eth1,"]
    # every node booted on the disk fix_driver left (1 MiB larger than its image)
    boots = {a[2]: a[0] for s, _, a in calls(folder) if s == "boot"}
    sizes = {host: image_info(Path(disk))["virtual-size"] for host, disk in boots.items()}
    assert sizes == {
        "hosted-vc.site.example.org": 2 * MIB,
        "hosted-vm-0-0-0": 3 * MIB,
    }
    fix_step = env.steps()[1]
    assert "via virt-v2v (the site's fix_driver, scripts:pb2013_ve)" in (fix_step.message or "")
    assert "fixed now by the site's fix_driver" in (fix_step.message or "")
    # the fixed base is cached under the script's digest: an edited fix_driver fixes anew
    assert env.cli("clean", "calit2").rc == 0
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    assert len([s for s, _, _ in calls(folder) if s == "fix_driver"]) == 2
    script = folder / "fix_driver"
    script.write_text(script.read_text() + "# edited\n")
    assert env.cli("clean", "calit2").rc == 0
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    assert len([s for s, _, _ in calls(folder) if s == "fix_driver"]) == 4


def test_a_failing_fix_driver_names_itself_its_exit_and_its_words(tmp_path: Path) -> None:
    env, folder = _env(tmp_path / "site", "pb2013_ve", "pragma_boot-2013")
    (folder / "fail-fix").write_text("")
    recipe = env.recipe("allocate 1\nfix all via virt-v2v\nboot all\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 3, result
    said = result.out + result.err
    assert f"{folder / 'fix_driver'}: fix_driver failed (exit 3)" in said
    assert "virt-v2v: error:" in said and "no operating system was found" in said
    assert "Traceback" not in said
    assert "boot" not in [s for s, _, _ in calls(folder)]
    assert current_allocation(env.ledger(), "calit2") is not None  # kept for resume


def test_a_2015_folder_has_no_fix_driver_and_the_fix_says_it_skipped(tmp_path: Path) -> None:
    env, folder = _env(tmp_path / "site", "pb2015_ve", "pragma_boot-2015")
    recipe = env.recipe("allocate 1\nfix all via virt-v2v\nboot all\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 0, result
    said = result.out + result.err
    assert f"ve_driver/fix: skipped: the site's VE driver folder {folder} (pragma_boot-2015)" in (
        said
    )
    assert "`ve_driver/fix_images` in the recipe" in said
    assert "via virt-v2v (done as none: no fix_driver)" in (env.steps()[1].message or "")
    client = calls(env.root / "drivers" / "pb2013_client")
    assert [s for s, _, _ in client][:2] == ["pre_fix_driver", "post_fix_driver"]


@pytest.mark.parametrize("change", ["+1", "-1"])
def test_a_vc_of_a_script_engine_is_not_scaled_and_nothing_is_taken(
    tmp_path: Path, change: str
) -> None:
    env, folder = _env(tmp_path / "site", "pb2013_ve", "pragma_boot-2013")
    recipe = env.recipe("allocate 2\nfix all via none\nboot all\n")
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    before = current_allocation(env.ledger(), "calit2")
    run = env.last_run("calit2")
    logged = (folder / "calls.log").read_text()
    result = env.cli("scale", "calit2", change)
    assert result.rc == 2, result
    assert "Traceback" not in result.err
    said = result.err
    assert f"scale {change}: calit2 runs on the site's own VE driver folder" in said
    assert '[engine] driver = "scripts", [drivers] ve = "pb2013_ve"' in said
    assert "nothing was taken" in said and '[engine] driver = "libvirt"' in said
    if change == "+1":
        assert "`allocate NUM_CPUS VC_IN VC_OUT`" in said and "a larger allocate" in said
    else:
        assert "stops, destroys or gives back a node" in said
    # nothing taken, nothing journaled, no script called
    assert current_allocation(env.ledger(), "calit2") == before
    last = env.last_run("calit2")
    assert last is not None and run is not None and last.id == run.id
    assert (folder / "calls.log").read_text() == logged


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (('mac="7a:77:6e:40:00:15"', ""), "/vc/frontend/private/@mac: missing"),
        (
            ('mac=f"7a:77:6e:40:00:{0x20 + i:02x}"', 'mac="7a:77:6e:40:00:16"'),
            "/vc/compute/node[1]: mac",
        ),
        (
            ("cpus=str(cpus)", "cpus=str(cpus + 1)"),
            "/vc/compute: the site's allocate was asked for 3",
        ),
        (
            ("ET.ElementTree(vc).write(path)", "open(path, 'w').write('<vc><frontend>')"),
            "vc-out.xml",
        ),
    ],
)
def test_a_malformed_or_inconsistent_vc_out_is_refused_naming_the_element(
    tmp_path: Path, edit: tuple[str, str], words: str
) -> None:
    env, _ = _env(tmp_path / "site", "pb2015_ve", "pragma_boot-2015")
    helper = env.root / "drivers" / "pbtest.py"
    text = helper.read_text()
    assert edit[0] in text
    helper.write_text(text.replace(edit[0], edit[1]))
    result = env.cli(str(env.recipe("allocate 3\n")), "--vcname", "calit2")
    assert result.rc != 0 and words in result.err, result
    assert "Traceback" not in result.err
    assert current_allocation(env.ledger(), "calit2") is None


def test_scripts_engine_without_a_ve_folder_is_a_config_error(tmp_path: Path) -> None:
    env = make_env(tmp_path / "site")
    env.site_path.write_text(
        env.site_path.read_text().replace('uri = "test:///default"\n', 'driver = "scripts"\n')
    )
    result = env.cli("check", str(env.recipe("allocate 1\n")), "--vcname", "calit2")
    assert result.rc == 2 and "needs [drivers] ve" in result.err


def test_waiting_on_a_script_engine_fails_at_once_saying_what_would_work(tmp_path: Path) -> None:
    env, _folder = _env(tmp_path / "site", "pb2015_ve", "pragma_boot-2015")
    recipe = env.recipe(
        "ve_driver/fix_images\nallocate 1\nboot frontend\nwait frontend up timeout 1h\n"
    )
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 3, result
    said = result.out + result.err
    assert "its state is unknown (the site's VE driver folder" in said
    assert "can never pass" in said and '[up] VCNAME = ["port:22"]' in said
