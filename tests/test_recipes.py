"""The bundled recipes: each checks clean, runs on the demo site, and travels between sites."""

from __future__ import annotations

import gc
import io
import re
import shutil
from pathlib import Path

import pytest

from pragmash.driver_api import NodePlan
from pragmash.drivers.distros.centos7 import Centos7
from pragmash.drivers.distros.ubuntu_cloud import UbuntuCloud, netplan_yaml
from pragmash.ui.cli.main import main
from pragmash.vc.formats.vcout import ComputeOut, FrontendOut, VcOut, read_vc_out
from pragmash.vc.repository.vcdb import demo_repository_path

ROOT = Path(__file__).parent.parent
RECIPES = ROOT / "recipes"
SITES = Path(__file__).parent / "data" / "sites"
BUNDLED = sorted(RECIPES.glob("*.prg"))

# Which demo VC (and which distro driver in its vc-in.xml) each bundled recipe is run with.
RUN_WITH = {
    "rocks6.prg": ("calit2", "rocks6_client"),
    "centos7.prg": ("calit2", "centos7"),
    "ubuntu.prg": ("calit2", "ubuntu_cloud"),
    "cloud.prg": ("calit2", "cloud_init"),
    "frontend-only.prg": ("tiny", "rocks6_client"),
}


@pytest.fixture(autouse=True)
def _fresh_test_engine() -> None:
    """test:///default forgets its domains once no connection is open; these tests count
    on that. An earlier test's failed run can leave its engine (and connection) in a
    reference cycle until the collector runs; collect now so its domains are gone."""
    gc.collect()


def cli(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process on a test:///default no earlier test's connection keeps alive.

    test:///default keeps its domains while any connection in the process is open; an
    earlier test's engine can linger in a reference cycle (a kept exception's traceback)
    until the collector runs, and would hand this run the last run's domains.
    """
    gc.collect()
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def repository_for(driver: str, dest: Path) -> Path:
    """The demo repository, copied, with every vc-in.xml naming ``driver``."""
    shutil.copytree(demo_repository_path(), dest)
    for vcin in dest.glob("*/vc-in.xml"):
        text = vcin.read_text(encoding="utf-8")
        text = re.sub(r"<driver>\w+</driver>", f"<driver>{driver}</driver>", text)
        text = re.sub(r"<distro driver='\w+'/>", f"<distro driver='{driver}'/>", text)
        vcin.write_text(text, encoding="utf-8")
    return dest


def written_vc_out(out: str) -> Path:
    match = re.search(r"finished; vc-out.xml written to (\S+)", out)
    assert match, out
    return Path(match.group(1))


def test_every_bundled_recipe_is_covered() -> None:
    assert {p.name for p in BUNDLED} == set(RUN_WITH)


@pytest.mark.parametrize("recipe", BUNDLED, ids=lambda p: p.name)
def test_recipe_opens_with_a_header_saying_images_and_site(recipe: Path) -> None:
    lines = recipe.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert header and header[0].startswith(f"# {recipe.name}:")
    assert "Images:" in text and "Site:" in text


@pytest.mark.parametrize("recipe", BUNDLED, ids=lambda p: p.name)
def test_check_is_clean_and_lists_parameters(recipe: Path) -> None:
    code, out, err = cli("check", str(recipe))
    assert code == 0, err
    assert f"{recipe}: ok" in out
    declared = re.findall(r"^param (\w+) = ", recipe.read_text(encoding="utf-8"), re.MULTILINE)
    assert declared, "a shared recipe takes its tunables as params"
    for name in declared:
        assert re.search(rf"^  {name}\s+default ", out, re.MULTILINE), out


@pytest.mark.parametrize("recipe", BUNDLED, ids=lambda p: p.name)
def test_recipe_runs_on_the_demo_site(recipe: Path, tmp_path: Path) -> None:
    vcname, driver = RUN_WITH[recipe.name]
    repo = repository_for(driver, tmp_path / "repo")
    code, out, err = cli(str(recipe), "--vcname", vcname, "--base_path", str(repo))
    assert code == 0, out + err
    assert "embedded demo site" in err
    vc_out = read_vc_out(written_vc_out(out))
    assert vc_out.frontend.public_ip == "137.110.119.222"
    expected_computes = 0 if recipe.name == "frontend-only.prg" else 2
    assert len(vc_out.computes) == expected_computes
    assert f"started {vcname}-frontend" in out


def test_unknown_set_name_is_refused(tmp_path: Path) -> None:
    code, _, err = cli(
        str(RECIPES / "centos7.prg"), "--vcname", "calit2", "--set", "fix_metod=none"
    )
    assert code == 2
    assert "fix_metod" in err and "fix_method" in err


def test_set_overrides_a_parameter(tmp_path: Path) -> None:
    code, out, err = cli(
        str(RECIPES / "centos7.prg"), "--vcname", "calit2", "--set", "num_compute=3"
    )
    assert code == 0, err
    assert "num_compute = 3 (given)" in out
    assert len(read_vc_out(written_vc_out(out)).computes) == 3


def _run_at(site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VcOut:
    """Run centos7.prg at one site, with that site's own state and cache folders."""
    monkeypatch.setenv("PRAGMASH_STATE_DIR", str(tmp_path / site / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / site / "cache"))
    repo = tmp_path / "repo"
    if not repo.exists():
        repository_for("centos7", repo)
    code, out, err = cli(
        str(RECIPES / "centos7.prg"),
        "--vcname",
        "calit2",
        "--base_path",
        str(repo),
        "--site",
        str(SITES / f"{site}.toml"),
    )
    assert code == 0, out + err
    assert "embedded demo site" not in err
    return read_vc_out(written_vc_out(out))


def test_same_recipe_two_sites_differs_only_in_site_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _run_at("site-a", tmp_path, monkeypatch)
    b = _run_at("site-b", tmp_path, monkeypatch)
    # What the site decides differs ...
    assert (a.frontend.public_ip, b.frontend.public_ip) == ("137.110.119.222", "198.51.101.17")
    assert (a.frontend.public_fqdn, b.frontend.public_fqdn) == (
        "calit2-119-222.ucsd.edu",
        "vc17.cluster.example.net",
    )
    assert (a.frontend.public_netmask, b.frontend.public_netmask) == (
        "255.255.255.0",
        "255.255.254.0",
    )
    assert (a.frontend.public_gw, b.frontend.public_gw) == ("137.110.119.1", "198.51.100.1")
    assert (a.dns_ip, a.dns_search, a.dns_domain) == ("8.8.8.8", "local", "")
    assert (b.dns_ip, b.dns_search, b.dns_domain) == (
        "198.51.100.53",
        "cluster.example.net",
        "example.net",
    )
    macs_a = [a.frontend.public_mac, a.frontend.private_mac, *(c.mac for c in a.computes)]
    macs_b = [b.frontend.public_mac, b.frontend.private_mac, *(c.mac for c in b.computes)]
    assert all(m.startswith("7a:77:6e:") for m in macs_a)
    assert all(m.startswith("52:54:0a:") for m in macs_b)
    # ... and with those site values put back, the two are the same cluster.
    assert _without_site_values(a) == _without_site_values(b)


def _without_site_values(vc: VcOut) -> VcOut:
    fe = vc.frontend
    return VcOut(
        frontend=FrontendOut(
            name=fe.name,
            public_fqdn="",
            public_ip="",
            public_netmask="",
            public_gw="",
            public_mac=fe.public_mac[9:],
            private_ip=fe.private_ip,
            private_netmask=fe.private_netmask,
            private_mac=fe.private_mac[9:],
        ),
        computes=tuple(ComputeOut(c.name, c.mac[9:], c.ip, c.cpus) for c in vc.computes),
        dns_ip="",
        dns_search="",
        dns_domain="",
    )


# -- what the distro drivers would write into the images ------------------------------


@pytest.fixture
def allocated(tmp_path: Path) -> Path:
    """A real vc-out.xml from running rocks6.prg on the demo site."""
    code, out, err = cli(str(RECIPES / "rocks6.prg"), "--vcname", "calit2")
    assert code == 0, err
    return written_vc_out(out)


def _plan(vc: VcOut, role: str) -> NodePlan:
    if role == "frontend":
        fe = vc.frontend
        return NodePlan(
            "calit2-frontend", "frontend", None, 1, "<domain/>",
            (fe.private_mac, fe.public_mac), ("default", "default"), (), "qemu",
            private_ip=fe.private_ip, public_ip=fe.public_ip,
        )  # fmt: skip
    node = vc.computes[0]
    return NodePlan(
        node.name, "compute", 0, node.cpus, "<domain/>", (node.mac,), ("default",), (), "qemu",
        private_ip=node.ip,
    )  # fmt: skip


def test_ubuntu_driver_writes_netplan_where_ubuntu_reads_it(allocated: Path) -> None:
    vc = read_vc_out(allocated)
    files = UbuntuCloud().guest_files(_plan(vc, "frontend"), allocated)
    assert set(files) == {
        "/etc/netplan/50-pragmash.yaml",
        "/etc/cloud/cloud.cfg.d/99-pragmash.cfg",
        "/etc/hostname",
    }  # /root/vc-out.xml is the node's own file, which pre_boot adds for every driver
    netplan = files["/etc/netplan/50-pragmash.yaml"]
    assert isinstance(netplan, bytes)
    text = netplan.decode()
    assert f"addresses: [{vc.frontend.private_ip}/16]" in text
    assert f"addresses: [{vc.frontend.public_ip}/24]" in text
    assert f"via: {vc.frontend.public_gw}" in text
    assert f'macaddress: "{vc.frontend.public_mac}"' in text
    assert files["/etc/hostname"] == f"{vc.frontend.public_fqdn}\n".encode()
    compute = netplan_yaml(_plan(vc, "compute"), vc)
    assert f"addresses: [{vc.computes[0].ip}/16]" in compute
    assert f"via: {vc.frontend.private_ip}" in compute


def test_centos7_driver_writes_network_scripts(allocated: Path) -> None:
    vc = read_vc_out(allocated)
    files = Centos7().guest_files(_plan(vc, "compute"), allocated)
    ifcfg = files["/etc/sysconfig/network-scripts/ifcfg-eth0"]
    assert isinstance(ifcfg, bytes)
    lines = ifcfg.decode().splitlines()
    assert f"IPADDR={vc.computes[0].ip}" in lines
    assert f"HWADDR={vc.computes[0].mac}" in lines
    assert "PREFIX=16" in lines and "BOOTPROTO=none" in lines
    assert f"GATEWAY={vc.frontend.private_ip}" in lines
    assert files["/etc/resolv.conf"] == b"search local\nnameserver 8.8.8.8\n"
    assert "/root/vc-out.xml" not in files  # the node's own file: pre_boot adds it
    assert "/etc/sysconfig/network-scripts/ifcfg-eth1" not in files


@pytest.mark.vm
def test_ubuntu_pre_boot_writes_every_file_in_one_session(allocated: Path, tmp_path: Path) -> None:
    import subprocess

    from support.vmimage import build_test_image

    from pragmash.driver_api import StageContext

    image = build_test_image(tmp_path / "img")
    vc = read_vc_out(allocated)
    ctx = StageContext(vcname="calit2", temp_dir=tmp_path, vc_out_path=allocated)
    result = UbuntuCloud().pre_boot(_plan(vc, "frontend"), image.disk_raw, allocated, ctx)
    assert result.outcome == "done"
    log = Path(result.products["log"]).read_text(encoding="utf-8")
    assert log.count("$ guestfish") == 1  # one libguestfs session for all four files
    out = subprocess.run(
        ["guestfish", "--ro", "--format=raw", "-a", str(image.disk_raw), "-m", "/dev/sda1",
         "--", "cat", "/etc/netplan/50-pragmash.yaml", ":", "cat", "/root/vc-out.xml"],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    assert f"addresses: [{vc.frontend.public_ip}/24]" in out
    assert vc.frontend.public_fqdn in out
