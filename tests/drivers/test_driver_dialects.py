"""Driver dialects: a site's folder is called exactly as the pragma_boot code it was written for.

tests/data/drivers_2013/pb2013_client is a test double of a 2013 (pragma_boot v0.2)
rocks6_client folder that ENFORCES that caller's conventions: pre_fix_driver and
post_fix_driver get one argument, the same disk path, and share ./yum.backup through
their working folder; pre_boot gets four, HOST being the frontend's public FQDN or a
compute's node name and KEY a file. Any other call exits 1, as the real scripts did.
The recipes run on test:///default with real disk staging (RealDiskEngine), so every
script really runs; the real-QEMU run is test_vm_dialects.py.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import libvirt
import pytest
from support.dialects import CALL, DATA, PB2013, calls  # noqa: F401
from support.diskengine import RealDiskEngine
from support.runenv import RunEnv, make_env

from pragmash.driver_api import NodePlan, StageContext
from pragmash.drivers.pragma_boot.dialects import TABLE, inspect_folder
from pragmash.drivers.pragma_boot.folder import ScriptFolderDriver, fix_driver_input
from pragmash.engine.run import session
from pragmash.engine.run.diskwork import DiskWork
from pragmash.errors import ConfigError, StepError
from pragmash.ui.cli import run as cli_run
from pragmash.vc.config.site import DIALECTS, load_site
from pragmash.vc.formats.vcout import ComputeOut, FrontendOut, VcOut, write_vc_out


def _copy_2013(root: Path, name: str = "pb2013_client") -> Path:
    folder = root / "drivers" / name
    shutil.copytree(PB2013, folder)
    return folder


def _node(name: str, role: str = "compute") -> NodePlan:
    return NodePlan(
        name=name,
        role=role,  # type: ignore[arg-type]
        index=None if role == "frontend" else 0,
        cpus=1,
        template_xml="<domain/>",
        macs=("7a:77:6e:00:00:01",),
        networks=("default",),
        disks=(),
        domain_type="qemu",
        authorized_keys=("ssh-ed25519 AAAAC3Nza test@site",),
    )


def _vc_out(path: Path) -> Path:
    write_vc_out(
        VcOut(
            frontend=FrontendOut(
                "vc-frontend", "vc.example.org", "192.0.2.10", "255.255.255.0", "192.0.2.1",
                "7a:77:6e:00:00:01", "10.1.1.1", "255.255.0.0", "7a:77:6e:00:00:02",
            ),
            computes=(ComputeOut("vc-compute-0", "7a:77:6e:00:00:03", "10.1.1.254", 1),),
            dns_ip="192.0.2.53", dns_search="local", dns_domain="",
        ),
        path,
    )  # fmt: skip
    return path


# -- the adapter, stage by stage ----------------------------------------------------------


def test_2013_stages_get_pragma_boot_v02_arguments(tmp_path: Path) -> None:
    folder = _copy_2013(tmp_path)
    driver = ScriptFolderDriver(folder, timeout=30, dialect="pragma_boot-2013")
    vc_out = _vc_out(tmp_path / "vc-out.xml")
    ctx = StageContext(vcname="vc", temp_dir=tmp_path / "tmp", vc_out_path=vc_out)
    ctx.temp_dir.mkdir()
    disk = tmp_path / "image.qcow2"
    disk.write_bytes(b"disk")
    frontend, compute = _node("vc-frontend", "frontend"), _node("vc-compute-0")
    for result in (
        driver.pre_fix(frontend, disk, ctx),
        driver.post_fix(frontend, disk, ctx),
        driver.pre_boot(frontend, disk, vc_out, ctx),
        driver.pre_boot(compute, disk, vc_out, ctx),
    ):
        assert result.outcome == "done", result
    logged = calls(folder)
    assert [(s, len(a)) for s, _, a in logged] == [
        ("pre_fix_driver", 1),
        ("post_fix_driver", 1),
        ("pre_boot", 4),
        ("pre_boot", 4),
    ]
    (_, fix_cwd, pre), (_, post_cwd, post) = logged[0], logged[1]
    assert pre == post == [str(disk)] and fix_cwd == post_cwd
    assert not (fix_cwd / "yum.backup").exists()  # post_fix found it and removed it
    assert logged[2][2][1:3] == [str(vc_out), "vc.example.org"]  # HOST: the public FQDN
    # a compute: the file it boots with, and its node name
    # named as the guest reads it: the script copies it into /root by its name
    own = ctx.temp_dir / "driver-work" / "vc-compute-0" / "vc-out.xml"
    assert logged[3][2][1:3] == [str(own), "vc-compute-0"]
    assert own.read_bytes() == (tmp_path / "vc-compute-0.xml").read_bytes()
    key = Path(logged[2][2][3])
    assert key.read_text() == "ssh-ed25519 AAAAC3Nza test@site\n"


DOMAIN = """<domain type='kvm'><name>t</name><devices>
  <disk type='file' device='cdrom'><source file='boot.iso'/></disk>
  <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='a.img'/></disk>
  <interface type='bridge'><source bridge='eth0.2'/></interface>
  <interface type='direct'><source dev='eth1'/></interface>
  <interface type='network'><source network='default'/></interface>
</devices></domain>"""


@pytest.mark.parametrize(
    ("dialect", "ifaces"), [("pragma_boot-2013", "eth0.2,eth1,,"), ("seed", "eth0.2,eth1,")]
)
def test_fix_driver_gets_the_domain_on_its_disk_and_ifaces_as_v02_joined_them(
    dialect: str, ifaces: str
) -> None:
    # v0.2 (@e147501:300-306): dev then bridge, each source followed by a comma; a
    # network source adds only the comma. The seed README writes eth0,eth1.
    xml, said = fix_driver_input(DOMAIN, Path("/t/image.qcow2"), dialect)
    assert said == ifaces
    disks = re.findall(r"<disk .*?</disk>", xml, re.DOTALL)
    assert "boot.iso" in disks[0]  # a cdrom is not the disk
    assert "<source file='/t/image.qcow2'/>" in disks[1].replace('"', "'")
    assert "type='qcow2'" in disks[1].replace('"', "'")


def test_post_fix_elsewhere_fails_as_the_real_script_would(tmp_path: Path) -> None:
    """The enforcing double really enforces: no ./yum.backup, no post_fix."""
    folder = _copy_2013(tmp_path)
    disk = tmp_path / "image.qcow2"
    disk.write_bytes(b"disk")
    driver = ScriptFolderDriver(folder, timeout=30, dialect="pragma_boot-2013")
    ctx = StageContext(vcname="vc", temp_dir=tmp_path / "tmp", vc_out_path=tmp_path / "o.xml")
    with pytest.raises(StepError) as info:
        driver.post_fix(_node("vc-frontend", "frontend"), disk, ctx)
    assert "no ./yum.backup" in " ".join(info.value.output_tail)


def test_seed_folder_given_as_2013_fails_on_pre_boot_arguments(tmp_path: Path) -> None:
    """A 2013 pre_boot called the seed's way (3 arguments) exits on its argument check."""
    folder = _copy_2013(tmp_path)
    driver = ScriptFolderDriver(folder, timeout=30)  # seed: the wrong dialect for it
    ctx = StageContext(vcname="vc", temp_dir=tmp_path / "tmp", vc_out_path=tmp_path / "o.xml")
    disk = tmp_path / "image.qcow2"
    disk.write_bytes(b"disk")
    with pytest.raises(StepError) as info:
        driver.pre_boot(_node("vc-compute-0"), disk, _vc_out(tmp_path / "vc-out.xml"), ctx)
    assert "should be invoked with 4 arguments" in " ".join(info.value.output_tail)


def test_every_dialect_the_site_accepts_is_known_to_the_adapter() -> None:
    assert tuple(TABLE) == DIALECTS


# -- inspection (pragmash check) ------------------------------------------------------------


def test_inspection_names_missing_and_non_executable_scripts(tmp_path: Path) -> None:
    folder = _copy_2013(tmp_path)
    (folder / "pre_boot").unlink()
    (folder / "post_fix_driver").chmod(0o644)
    problems = inspect_folder(folder, "pragma_boot-2013", "vc")
    assert problems == [
        f"{folder / 'post_fix_driver'}: not executable (chmod +x {folder / 'post_fix_driver'})",
        f"{folder / 'pre_boot'}: missing; pragma_boot-2013 calls it as "
        "`pre_boot DISK VC_OUT HOST KEY`",
    ]
    assert inspect_folder(PB2013, "pragma_boot-2013", "vc") == []


def test_inspection_says_when_the_scripts_fit_another_dialect(tmp_path: Path) -> None:
    ve = tmp_path / "kvm_rocks"
    ve.mkdir()
    for script in ("allocate", "fix_images", "boot"):
        (ve / script).write_text("#!/bin/sh\n")
        (ve / script).chmod(0o755)
    (problem,) = inspect_folder(ve, "pragma_boot-2013", "ve")
    assert "fix_driver: missing" in problem
    assert "fit pragma_boot-2015 or pragma_boot-2015-ipop" in problem
    assert inspect_folder(ve, "pragma_boot-2015", "ve") == []
    (vc_problem,) = inspect_folder(PB2013, "pragma_boot-2015", "vc")
    assert "called no vc driver script" in vc_problem


# -- site config -------------------------------------------------------------------------------


def _site(tmp_path: Path, drivers: str) -> Path:
    text = (DATA / "sites" / "site-a.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(text + "\n[drivers]\n" + drivers, encoding="utf-8")
    return path


def test_site_declares_dialects_per_folder(tmp_path: Path) -> None:
    site = load_site(
        _site(
            tmp_path,
            'folders = ["drivers"]\ndialect = "pragma_boot-2013"\n'
            'dialects = { kvm_rocks = "pragma_boot-2015-ipop" }\nve = "kvm_rocks"\n'
            'ipop_url = "file:///srv/ipop"\n',
        ),
        {},
    )
    assert site.dialect_of("rocks6_client") == "pragma_boot-2013"
    assert site.dialect_of("kvm_rocks") == "pragma_boot-2015-ipop"
    assert site.ve_folder == "kvm_rocks" and site.ipop_url == "file:///srv/ipop"
    assert load_site(_site(tmp_path, 'folders = ["d"]\n'), {}).dialect_of("x") == "seed"


@pytest.mark.parametrize(
    ("drivers", "key", "words"),
    [
        ('dialect = "pragma_boot-2014"\n', "[drivers] dialect", "'seed' or"),
        ('dialects = { x = "2013" }\n', "[drivers] dialects.x", "got a string ('2013')"),
        ('ve = "../kvm"\n', "[drivers] ve", "a driver folder's name"),
    ],
)
def test_bad_dialect_settings_name_the_key(
    tmp_path: Path, drivers: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_site(_site(tmp_path, drivers), {})
    assert info.value.key == key and words in info.value.message


# -- recipes on test:///default ---------------------------------------------------------------


def _env(root: Path, dialect: str = "pragma_boot-2013", extra: str = "") -> tuple[RunEnv, Path]:
    env = make_env(
        root,
        extra=f'\n[drivers]\nfolders = ["drivers"]\ndialects = {{ pb2013_client = "{dialect}" }}\n'
        + extra,
    )
    folder = _copy_2013(env.root)
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "pb2013_client"))
    return env, folder


def _run(env: RunEnv, text: str, key: str | None = None) -> tuple[int, str]:
    options = session.RunOptions(
        recipe=str(env.recipe(text)), vcname="calit2", site=str(env.site_path), key=key
    )
    prep = session.prepare(options)
    prep.runtime.engine = RealDiskEngine("test:///default")
    prep.runtime.disk_work = DiskWork.of(prep.runtime.engine, prep.runtime.site)
    run = session.start(prep)
    out, err = io.StringIO(), io.StringIO()
    rc = cli_run.finish(run, out, err)
    return rc, out.getvalue() + err.getvalue()


@pytest.mark.libvirt
def test_a_2013_folder_runs_a_recipe_as_pragma_boot_v02_ran_it(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, folder = _env(tmp_path / "site")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 admin@site"
    rc, output = _run(env, "allocate 2\nfix all via none\nboot all\n", key=key)
    assert rc == 0, output
    logged = calls(folder)
    fixes = [c for c in logged if c[0] != "pre_boot"]
    # one image, fixed once: pre_fix then post_fix on the same path, in the same folder
    assert [(s, a) for s, _, a in fixes] == [
        ("pre_fix_driver", fixes[0][2]),
        ("post_fix_driver", fixes[0][2]),
    ]
    assert (
        fixes[0][1]
        == fixes[1][1]
        == env.root / "tmp" / "calit2" / "driver-work" / ("fix-calit2-frontend")
    )
    boots = {a[2]: a for s, _, a in logged if s == "pre_boot"}
    # HOST: the frontend's public FQDN (from vc-out), then each compute's node name
    assert sorted(boots) == ["calit2-compute-0", "calit2-compute-1", "vc-a.example.org"]
    vc_out = env.root / "tmp" / "calit2" / "vc-out.xml"
    for host, (disk, given_vc_out, _, key_path) in boots.items():
        work = vc_out.parent / "driver-work" / host / "vc-out.xml"
        own = vc_out if host == "vc-a.example.org" else work
        assert given_vc_out == str(own)
        assert Path(disk).parent == env.root / "tmp" / "calit2" / "disks"
        assert Path(key_path).read_text() == key + "\n"
    assert Path(boots["vc-a.example.org"][0]).stem == "calit2-frontend"


@pytest.mark.libvirt
def test_a_2013_folder_declared_seed_fails_with_the_scripts_words(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, _ = _env(tmp_path / "site", dialect="seed")
    rc, output = _run(env, "allocate 1\nboot frontend\n")
    assert rc != 0
    assert "This script should be invoked with 4 arguments" in output


@pytest.mark.libvirt
def test_check_refuses_a_vc_folder_without_pre_boot(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, folder = _env(tmp_path / "site")
    (folder / "pre_boot").unlink()
    recipe = env.recipe("allocate 1\nboot all\n")
    result = env.cli("check", str(recipe), "--vcname", "calit2")
    assert result.rc == 2, result
    assert f"{folder / 'pre_boot'}: missing" in result.err
    assert "pre_boot DISK VC_OUT HOST KEY" in result.err
    assert "Traceback" not in result.err
    # the seed dialect lets pre_fix/post_fix be absent, never pre_boot
    env2, folder2 = _env(tmp_path / "site2", dialect="seed")
    (folder2 / "pre_boot").unlink()
    result = env2.cli("check", str(env2.recipe("allocate 1\n")), "--vcname", "calit2")
    assert result.rc == 2 and "pre_boot: missing" in result.err


@pytest.mark.libvirt
def test_any_script_of_a_folder_is_called_by_name(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env, folder = _env(tmp_path / "site")
    hello = folder / "hello"
    hello.write_text('#!/bin/sh\necho "hello $# [$1] [$2] in $PWD"\n')
    hello.chmod(0o755)
    recipe = env.recipe('allocate 1\nvc_driver/hello "two words" $vcname\n')
    result = env.cli(str(recipe), "--vcname", "calit2")  # the demo engine: no disk needed
    assert result.rc == 0, result
    work = env.root / "tmp" / "calit2" / "driver-work"
    assert f"hello 2 [two words] [calit2] in {work}" in result.out + result.err
    check = env.cli("check", str(env.recipe("vc_driver/nosuch\n", "bad.prg")), "--vcname", "calit2")
    assert check.rc == 2 and "vc_driver commands:" in check.err and "hello" in check.err
