"""The ``pragmash`` command on the embedded demo site (tier 2: real libvirt, test:///default)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from pragmash import __version__
from pragmash.errors import EXIT_BUSY, EXIT_OK, EXIT_STEP_FAILED, EXIT_USER
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcout import read_vc_out

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")

pytestmark = pytest.mark.libvirt


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def demo_domains() -> dict[str, str]:
    conn = libvirt.open("test:///default")
    return {d.name(): d.XMLDesc() for d in conn.listAllDomains() if d.name().startswith("calit2-")}


def _remove_calit2(conn: libvirt.virConnect) -> None:
    for dom in conn.listAllDomains():
        if dom.name().startswith("calit2-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()


@pytest.fixture(autouse=True)
def _test_driver() -> Iterator[None]:
    """test:///default lives while a connection to it is open, shared by the whole process.

    Hold one open for the test, so what a run defined can be read back after it, and
    start each test without calit2's domains.
    """
    conn = libvirt.open("test:///default")
    _remove_calit2(conn)
    yield
    _remove_calit2(conn)
    conn.close()


def test_demo_run_boots_calit2_with_allocated_names_and_macs() -> None:
    code, out, err = run(ROCKS6, "--vcname", "calit2", "--num_compute", "3")
    assert code == EXIT_OK, out + err
    assert "embedded demo site" in err
    lines = out.splitlines()
    # one line per step: outcome, location, statement, duration
    assert any(
        line.startswith("ok ") and "rocks6.prg:14:1" in line and "allocate $num_compute" in line
        for line in lines
    )
    assert any(
        line.startswith("skip") and "fix all via" in line and "simulated" in line for line in lines
    )
    assert "vc-out.xml written to" in lines[-1]
    site = load_site(None)
    held = current_allocation(Ledger(site), "calit2")
    assert held is not None
    assert [n.name for n in held.nodes] == [
        "calit2-frontend",
        "calit2-compute-0",
        "calit2-compute-1",
        "calit2-compute-2",
    ]
    domains = demo_domains()
    assert set(domains) == {n.name for n in held.nodes}
    conn = libvirt.open("test:///default")
    for lease in held.nodes:
        dom = conn.lookupByName(lease.name)
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        for mac in lease.macs:
            assert f"address='{mac}'" in domains[lease.name]
    vc_out = read_vc_out(site.temp_dir / "calit2" / "vc-out.xml")
    assert vc_out.frontend.public_ip == held.public.ip
    assert [c.name for c in vc_out.computes] == [c.name for c in held.computes]
    assert [c.mac for c in vc_out.computes] == [c.macs[0] for c in held.computes]


def test_second_run_reuses_the_allocation() -> None:
    assert run(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    site = load_site(None)
    first = current_allocation(Ledger(site), "calit2")
    _remove_calit2(libvirt.open("test:///default"))
    assert run(ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    assert current_allocation(Ledger(site), "calit2") == first


def test_card_line_runs_as_written(tmp_path: Path) -> None:
    recipe = tmp_path / "card.prg"
    recipe.write_text("allocate 4; fix all via virt-v2v; boot frontend; wait 300; boot compute\n")
    code, out, err = run(str(recipe), "--vcname", "calit2")
    assert code == EXIT_OK, out + err
    assert len(demo_domains()) == 5
    assert "wait 300" in out and "skipped: the engine is simulated" in out


def test_dry_run_changes_nothing() -> None:
    code, out, _ = run(ROCKS6, "--vcname", "calit2", "--dry-run", "--num_compute", "2")
    assert code == EXIT_OK
    assert "calit2-compute-1: vc_driver/pre_boot" in out
    assert "dry run" in out
    assert demo_domains() == {}
    assert current_allocation(Ledger(load_site(None)), "calit2") is None


def test_check_lists_parameters() -> None:
    code, out, _ = run("check", ROCKS6)
    assert code == EXIT_OK
    assert "ok" in out and "num_compute" in out and "fix_method" in out


def test_set_overrides_a_parameter_and_unknown_names_are_refused() -> None:
    code, out, err = run(ROCKS6, "--vcname", "calit2", "--set", "fix_method=none")
    assert code == EXIT_OK, err
    assert "fix all via $fix_method" in out and "via none" in out
    code, _, err = run(ROCKS6, "--vcname", "calit2", "--set", "nosuch=1")
    assert code == EXIT_USER
    assert "no parameter 'nosuch'" in err and "fix_method" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "allocate 2\nboot compute[5]\n",
            "bad.prg:2:6: compute[5] does not exist: the VC has 2 computes",
        ),
        ("allocate 2\necho $nope\n", "bad.prg:2:6: unknown variable '$nope'"),
        ("allocate 2\nve_driver/bot frontend\n", "bad.prg:2:11: unknown command 've_driver/bot'"),
        (
            "boot frontend\n",
            "bad.prg:1:1: 'boot frontend' works on nodes, but nothing is allocated before it",
        ),
        ("allocate 2\nfix all via magic\n", "bad.prg:2:13: unknown fix method 'magic'"),
        ("allocate 2\nwait frontend\n", "bad.prg:2:"),
        ("allocate 2\nwait frontend upp\n", "bad.prg:2:15: unknown state 'upp'"),
        # a timeout held in a variable is checked too: a week is the most anyone waits
        (
            "param t = 200h\nallocate 2\nwait frontend up timeout $t\n",
            "bad.prg:3:26: timeout: '200h' is longer than a week (168h)",
        ),
        ("allocate 2\nwait 8000000\n", "bad.prg:2:6: wait '8000000' is longer than a week"),
        (
            'allocate 2\nset p = ""\nwait frontend console $p\n',
            "bad.prg:3:23: expected the console text to wait for, got an empty one",
        ),
    ],
)
def test_bad_recipes_fail_before_anything_runs(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "bad.prg"
    recipe.write_text(text)
    code, out, err = run(str(recipe), "--vcname", "calit2")
    assert code == EXIT_USER
    assert expected in err
    assert "^" in err and "Traceback" not in err
    assert out == ""
    assert current_allocation(Ledger(load_site(None)), "calit2") is None


def test_unknown_vc_lists_known_ones() -> None:
    code, _, err = run(ROCKS6, "--vcname", "nosuch")
    assert code == EXIT_USER
    assert "no VC named 'nosuch'" in err and "calit2" in err


def test_bad_site_config_names_the_key(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[network]\nnetmask = "255.255.255.0"\ngateway = "10.0.0.1"\npublic = []\nbogus = 1\n'
    )
    code, _, err = run(ROCKS6, "--vcname", "calit2", "--site", str(site))
    assert code == EXIT_USER
    assert str(site) in err and "bogus" in err


def test_shortage_is_a_refusal_that_takes_nothing(tmp_path: Path) -> None:
    code, _, err = run(ROCKS6, "--vcname", "calit2", "--num_compute", "100")
    assert code == EXIT_USER
    assert "not enough CPUs" in err
    assert "rocks6.prg:14:1" in err and "ve_driver/allocate" in err
    assert current_allocation(Ledger(load_site(None)), "calit2") is None


def test_libvirt_define_refused_is_reported_with_libvirts_words(tmp_path: Path) -> None:
    import shutil

    from pragmash.vc.repository.vcdb import demo_repository_path

    repo = tmp_path / "repo"
    shutil.copytree(demo_repository_path(), repo)
    vc_in = repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("bus='ide'", "bus='nonsensebus'"))
    code, _, err = run(ROCKS6, "--vcname", "calit2", "--base_path", str(repo))
    assert code == EXIT_STEP_FAILED
    assert "ve_driver/boot" in err and "rocks6.prg:16:1" in err
    assert "nonsensebus" in err  # libvirt's own words
    assert "pragmash resume calit2" in err and "pragmash clean calit2" in err
    held = current_allocation(Ledger(load_site(None)), "calit2")
    assert held is not None  # nothing lost: leases are kept for debugging


def test_busy_vc_is_refused_with_its_holder() -> None:
    from pragmash.store.journal import acquire_lock, process_started

    site = load_site(None)
    ledger = Ledger(site)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        acquire_lock(ledger, "calit2")
        with ledger.transaction() as conn:
            conn.execute(
                "UPDATE locks SET pid=?, started=? WHERE vcname='calit2'",
                (holder.pid, process_started(holder.pid)),
            )
        code, _, err = run(ROCKS6, "--vcname", "calit2")
        assert code == EXIT_BUSY
        assert f"pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()


def test_help_version_and_usage_errors() -> None:
    code, out, _ = run("--help")
    assert code == EXIT_OK and "exit status" in out and "--num_compute" in out
    version = run("--version")[1]
    assert version.startswith(f"pragmash {__version__}\n")
    assert all(f"  {k}" in version for k in ("python", "libvirt", "libguestfs", "qemu-img"))
    code, _, err = run(ROCKS6)
    assert code == EXIT_USER and "--vcname" in err and "Traceback" not in err
    code, _, err = run("/nonexistent.prg", "--vcname", "calit2")
    assert code == EXIT_USER and "no such recipe file" in err


def test_installed_wheel_works_from_any_folder(tmp_path: Path) -> None:
    """`pip install .` (not editable) ships grammar, drivers, recipes and the demo."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "whl"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "whl").glob("pragmash-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "pragmash/grammar/pragmash.lark",
        "pragmash/drivers/libvirt/engine.py",
        "pragmash/drivers/distros/rocks6_client.py",
        "pragmash/recipes/rocks6.prg",
        "pragmash/demo/site.toml",
        "pragmash/demo/repository/vcdb.txt",
        "pragmash/demo/repository/calit2/vc-in.xml",
        "pragmash/vc/formats/schemas/vc-out.xsd",
    ):
        assert needed in names, needed
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pragmash.ui.cli.main; sys.exit(pragmash.ui.cli.main.main())",
            str(site / "pragmash" / "recipes" / "rocks6.prg"),
            "--vcname",
            "calit2",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        str(site / "pragmash")
        in subprocess.run(
            [sys.executable, "-c", "import pragmash.grammar as g; print(g.__file__)"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_check_says_what_up_means_and_who_chose_it(tmp_path: Path) -> None:
    code, out, _ = run("check", ROCKS6, "--vcname", "calit2")
    assert code == EXIT_OK
    assert (
        "'wait … up': calit2's nodes are up when running and the QEMU guest agent answers, "
        "or a login prompt on the serial console (chosen by the distro driver rocks6_client)"
    ) in out
    site = tmp_path / "site.toml"
    small = (ROOT / "tests" / "data" / "sites" / "small.toml").read_text()
    site.write_text(small + '\n[up]\ncalit2 = ["port:22", "marker"]\n')
    demo = str(ROOT / "pragmash" / "demo" / "repository")
    code, out, err = run(
        "check", ROCKS6, "--vcname", "calit2", "--site", str(site), "--base_path", demo
    )
    assert code == EXIT_OK, err
    assert (
        "up when running and TCP port 22 answers, or the PRAGMASH-UP line on the serial "
        f"console (chosen by the site's [up] calit2 ({site}))"
    ) in out


def test_wait_console_on_the_demo_engine_is_taken_as_running(tmp_path: Path) -> None:
    recipe = tmp_path / "console.prg"
    recipe.write_text('allocate 1\nboot frontend\nwait frontend console "login:" timeout 5s\n')
    code, out, err = run(str(recipe), "--vcname", "calit2")
    assert code == EXIT_OK, err
    assert "1 node(s) showing 'login:' on its console after" in out
    assert "(simulated engine: 'console' taken as 'running')" in out


def test_dry_run_shows_a_driver_call_as_the_statement_it_means(tmp_path: Path) -> None:
    """``ve_driver/boot`` is ``boot`` (pre_boot included); ``ve_driver/fix``'s method is no node."""
    recipe = tmp_path / "seed.prg"
    recipe.write_text(
        "ve_driver/allocate 1\nve_driver/fix_driver all virt-customize\nve_driver/boot frontend\n"
    )
    code, out, _ = run(str(recipe), "--vcname", "calit2", "--dry-run")
    assert code == EXIT_OK
    assert "calit2-frontend: vc_driver/pre_boot" in out
    assert "calit2-compute-0: stage image, vc_driver/pre_fix, fix via virt-customize" in out
    assert "virt-customize on" not in out and "ve_driver/fix on" not in out
