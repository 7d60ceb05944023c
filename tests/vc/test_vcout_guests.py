"""What PRAGMA guests make of the vc-out each node gets: vc-out-parser's decisions.

tests/support/vcoutreader.py follows vc-out-parser (pragmagrid/vc-out-parser, as
/work/shared/pragma_boot-code.md describes it). First it is held to pragma_boot's own
example files (its last code's whole-VC and per-compute forms, its 2013–2015 README's,
the seed README's); then to what pragmash writes: the frontend's file (the whole VC's)
and each compute's own file must configure every node completely, and the whole file
must still give the seed README's readers every attribute where they read it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxml import etree
from support.recording import Recorder, raw_disk
from support.seedreadme import seed_vc_out
from support.vcoutreader import GuestConfig, Interface, ParserCrash, parse

from pragmash.driver_api import ComputeVcOut, NodePlan, StageContext
from pragmash.drivers.distros.rocks6_client import Rocks6Client
from pragmash.engine.run.nodes import stage_context
from pragmash.errors import ConfigError, VcFormatError
from pragmash.images import inject
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcout import (
    ComputeOut,
    FrontendOut,
    VcOut,
    compute_vc_out_path,
    compute_vc_out_to_bytes,
    node_vc_out,
    node_vc_out_path,
    read_vc_out,
    vc_out_to_bytes,
    write_vc_out,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzbY2o0Ck6+0dTt0zmw1F0wkwFEDyCnbHMm4L7tFXnF test"

# pragma_boot's last code (xmlprocessor.py, XmlOutput.__str__): the frontend's file.
PRAGMA_BOOT_WHOLE = f"""<?xml version="1.0" ?>
<vc>
  <frontend fqdn="rocks-33.sdsc.edu" gw="198.202.88.1" name="rocks-33">
    <private ip="10.1.1.1" mac="7a:77:6e:40:00:09" mtu="1500" netmask="255.255.0.0" subnet="10.1.0.0"/>
    <public ip="198.202.88.33" mac="7a:77:6e:40:00:10" mtu="1500" netmask="255.255.255.0" subnet="198.202.88.0"/>
  </frontend>
  <compute count="2">
    <node cpus="2" gw="10.1.1.1" name="vm-rocks-33-0">
      <private ip="10.1.255.254" mac="7a:77:6e:40:00:15" mtu="1500" netmask="255.255.0.0" subnet="10.1.0.0"/>
    </node>
    <node cpus="1" gw="10.1.1.1" name="vm-rocks-33-1">
      <private ip="10.1.255.253" mac="7a:77:6e:40:00:14" mtu="1500" netmask="255.255.0.0" subnet="10.1.0.0"/>
    </node>
  </compute>
  <network>
    <dns domain="" ip="8.8.8.8" search="local"/>
  </network>
  <key>{KEY}</key>
</vc>
"""

# pragma_boot's last code (get_compute_vc_out): one compute's own file.
PRAGMA_BOOT_COMPUTE = f"""<?xml version="1.0" ?>
<vc>
  <frontend fqdn="rocks-33.sdsc.edu"/>
  <compute gw="10.1.1.1" name="vm-rocks-33-0">
    <private ip="10.1.255.254" mac="7a:77:6e:40:00:15" mtu="1500" netmask="255.255.0.0" subnet="10.1.0.0"/>
  </compute>
  <network>
    <dns domain="" ip="8.8.8.8" search="local"/>
  </network>
  <key>{KEY}</key>
</vc>
"""

# pragma_boot's README.rst@9da60aa (2013–2015): a compute's file, the older form.
README_2015_COMPUTE = f"""<vc>
  <frontend>
    <public fqdn="somehost.ucsd.edu"/>
  </frontend>
  <compute>
    <private fqdn="hosted-vm-0-1-0" ip="10.1.1.30" netmask="255.255.0.0" gw="10.1.1.1" mac="7a:77:6e:40:00:15"/>
  </compute>
  <network>
    <dns ip="8.8.8.8" search="local" domain=""/>
  </network>
  <key>{KEY}</key>
</vc>
"""

# pragma_boot's README.rst@9da60aa: the frontend's file (no name anywhere).
README_2015_FRONTEND = """<vc>
  <frontend>
    <public fqdn="somehost.ucsd.edu" ip="123.123.123.123" netmask="255.255.255.0" gw="123.123.123.1" mac="7a:77:6e:40:00:10"/>
    <private ip="10.1.1.1" netmask="255.255.0.0" mac="7a:77:6e:40:00:09"/>
  </frontend>
  <compute count="2">
    <node name="hosted-vm-0-1-0" mac="7a:77:6e:40:00:15" ip="10.1.0.254" cpus="2"/>
    <node name="hosted-vm-0-0-0" mac="7a:77:6e:40:00:14" ip="10.1.0.253" cpus="2"/>
  </compute>
  <network>
    <dns ip="8.8.8.8" search="local" domain=""/>
  </network>
</vc>
"""

# The seed README's example, unchanged.
SEED = seed_vc_out()

LOCALHOST = "127.0.0.1\tlocalhost.localdomain localhost"


# --- the reader, held to pragma_boot's own files -------------------------------------


def test_pragma_boot_whole_form_configures_a_frontend() -> None:
    got = parse(PRAGMA_BOOT_WHOLE)
    assert got.role == "frontend"
    assert got.hostname == "rocks-33.sdsc.edu"
    assert got.interfaces == (
        Interface("private", "10.1.1.1", "255.255.0.0", "7a:77:6e:40:00:09", "1500", None),
        Interface(
            "public", "198.202.88.33", "255.255.255.0", "7a:77:6e:40:00:10", "1500", "198.202.88.1"
        ),
    )
    assert got.hosts == (
        LOCALHOST,
        "10.1.1.1\trocks-33.local rocks-33",
        "198.202.88.33\trocks-33.sdsc.edu",
        "10.1.255.254\tvm-rocks-33-0.local vm-rocks-33-0",
        "10.1.255.253\tvm-rocks-33-1.local vm-rocks-33-1",
    )
    assert got.machinefile == ("vm-rocks-33-0", "vm-rocks-33-0", "vm-rocks-33-1")
    assert got.key == KEY and got.dns == ("8.8.8.8",)


def test_pragma_boot_compute_form_configures_that_compute() -> None:
    got = parse(PRAGMA_BOOT_COMPUTE)
    assert got == GuestConfig(
        role="compute",
        hostname="vm-rocks-33-0.local",
        interfaces=(
            Interface(
                "private", "10.1.255.254", "255.255.0.0", "7a:77:6e:40:00:15", "1500", "10.1.1.1"
            ),
        ),
        hosts=(
            LOCALHOST,
            "10.1.255.254\tvm-rocks-33-0.local vm-rocks-33-0",
            "10.1.1.1\trocks-33.sdsc.edu rocks-33",
        ),
        machinefile=(),
        key=KEY,
        dns=("8.8.8.8",),
    )


def test_the_older_compute_form_falls_back_to_private_fqdn_and_gw() -> None:
    got = parse(README_2015_COMPUTE)
    assert (got.role, got.hostname) == ("compute", "hosted-vm-0-1-0.local")
    assert got.hosts[-1] == "10.1.1.1\tsomehost.ucsd.edu somehost"


@pytest.mark.parametrize("text", [README_2015_FRONTEND, SEED], ids=["readme-2015", "seed"])
def test_a_frontend_file_without_a_name_stops_the_parser(text: str) -> None:
    with pytest.raises(ParserCrash, match="'name'"):
        parse(text)


def test_a_compute_given_the_seed_form_takes_the_frontend_path_and_stops() -> None:
    """No ./compute/private: a compute would try to configure itself as the frontend."""
    with pytest.raises(ParserCrash, match="'name'"):
        parse(SEED, macs=["7a:77:6e:40:00:15"])


def test_interfaces_are_matched_by_the_guests_own_macs() -> None:
    got = parse(PRAGMA_BOOT_WHOLE, macs=["7A:77:6E:40:00:09"])
    assert [i.network for i in got.interfaces] == ["private"]
    assert got.unmatched == ("7a:77:6e:40:00:10",)
    assert "198.202.88.33\trocks-33.sdsc.edu" not in got.hosts  # skipped with its NIC


# --- what pragmash writes ----------------------------------------------------------------


def example(key: str | None = KEY) -> VcOut:
    return VcOut(
        frontend=FrontendOut(
            name="calit2-frontend",
            public_fqdn="calit2-119-222.ucsd.edu",
            public_ip="137.110.119.222",
            public_netmask="255.255.255.0",
            public_gw="137.110.119.1",
            public_mac="7a:77:6e:40:00:08",
            private_ip="10.1.1.1",
            private_netmask="255.255.0.0",
            private_mac="7a:77:6e:40:00:07",
        ),
        computes=(
            ComputeOut("calit2-compute-0", "7a:77:6e:40:00:0a", "10.1.1.254", 2),
            ComputeOut("calit2-compute-1", "7a:77:6e:40:00:0b", "10.1.1.253", 1),
        ),
        dns_ip="8.8.8.8",
        dns_search="local",
        dns_domain="",
        key=key,
    )


def test_the_frontend_configures_itself_from_pragmash_whole_file() -> None:
    got = parse(vc_out_to_bytes(example()), macs=["7a:77:6e:40:00:07", "7a:77:6e:40:00:08"])
    assert got.role == "frontend"
    assert got.hostname == "calit2-119-222.ucsd.edu"
    assert [(i.network, i.ip, i.mac, i.gateway) for i in got.interfaces] == [
        ("public", "137.110.119.222", "7a:77:6e:40:00:08", "137.110.119.1"),
        ("private", "10.1.1.1", "7a:77:6e:40:00:07", None),
    ]
    assert got.unmatched == ()
    assert got.hosts == (
        LOCALHOST,
        "137.110.119.222\tcalit2-119-222.ucsd.edu",
        "10.1.1.1\tcalit2-frontend.local calit2-frontend",
        "10.1.1.254\tcalit2-compute-0.local calit2-compute-0",
        "10.1.1.253\tcalit2-compute-1.local calit2-compute-1",
    )
    assert got.machinefile == ("calit2-compute-0", "calit2-compute-0", "calit2-compute-1")
    assert got.key == KEY and got.dns == ("8.8.8.8",)


@pytest.mark.parametrize("index", [0, 1])
def test_each_compute_configures_itself_from_its_own_file(index: int) -> None:
    node = example().computes[index]
    got = parse(compute_vc_out_to_bytes(example(), node.name), macs=[node.mac])
    assert got == GuestConfig(
        role="compute",
        hostname=f"{node.name}.local",
        interfaces=(Interface("private", node.ip, "255.255.0.0", node.mac, "1500", "10.1.1.1"),),
        hosts=(
            LOCALHOST,
            f"{node.ip}\t{node.name}.local {node.name}",
            "10.1.1.1\tcalit2-119-222.ucsd.edu calit2-119-222",
        ),
        machinefile=(),
        key=KEY,
        dns=("8.8.8.8",),
    )


def test_a_file_without_key_has_no_key_element() -> None:
    assert parse(vc_out_to_bytes(example(key=None))).key is None
    assert parse(compute_vc_out_to_bytes(example(key=None), "calit2-compute-0")).key is None


def test_the_whole_file_keeps_every_attribute_the_seed_readers_read() -> None:
    root = etree.fromstring(vc_out_to_bytes(example()))
    public = root.find("frontend/public")
    private = root.find("frontend/private")
    assert public is not None and private is not None
    assert {k: public.get(k) for k in ("fqdn", "ip", "netmask", "gw")} == {
        "fqdn": "calit2-119-222.ucsd.edu",
        "ip": "137.110.119.222",
        "netmask": "255.255.255.0",
        "gw": "137.110.119.1",
    }
    assert (private.get("ip"), private.get("netmask")) == ("10.1.1.1", "255.255.0.0")
    assert [(n.get("name"), n.get("mac"), n.get("ip")) for n in root.iterfind("compute/node")] == [
        ("calit2-compute-0", "7a:77:6e:40:00:0a", "10.1.1.254"),
        ("calit2-compute-1", "7a:77:6e:40:00:0b", "10.1.1.253"),
    ]


# --- reading other writers' whole files --------------------------------------------------


def test_read_vc_out_takes_pragma_boots_last_whole_form(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(PRAGMA_BOOT_WHOLE)
    got = read_vc_out(path)
    assert (got.frontend.name, got.frontend.public_fqdn, got.frontend.public_gw) == (
        "rocks-33",
        "rocks-33.sdsc.edu",
        "198.202.88.1",
    )
    assert (got.frontend.public_ip, got.frontend.private_mac) == (
        "198.202.88.33",
        "7a:77:6e:40:00:09",
    )
    assert [(c.name, c.mac, c.ip, c.cpus) for c in got.computes] == [
        ("vm-rocks-33-0", "7a:77:6e:40:00:15", "10.1.255.254", 2),
        ("vm-rocks-33-1", "7a:77:6e:40:00:14", "10.1.255.253", 1),
    ]
    assert got.key == KEY


def test_read_vc_out_takes_the_2015_readme_frontend_form(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(README_2015_FRONTEND)
    got = read_vc_out(path)
    assert got.frontend.name == "" and got.frontend.public_gw == "123.123.123.1"
    assert [c.cpus for c in got.computes] == [2, 2]


@pytest.mark.parametrize(
    ("change", "element", "words"),
    [
        ((' gw="198.202.88.1"', ""), "/vc/frontend", "gw is missing"),
        (
            ('<public ip="198.202.88.33"', '<private ip="198.202.88.33"'),
            "/vc/frontend/public",
            "0 <public>",
        ),
        (('ip="10.1.255.253" ', ""), "/vc/compute/node[2]/private", "'ip'"),
    ],
)
def test_read_vc_out_names_what_pragma_boots_form_lacks(
    tmp_path: Path, change: tuple[str, str], element: str, words: str
) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(PRAGMA_BOOT_WHOLE.replace(*change))
    with pytest.raises(VcFormatError) as info:
        read_vc_out(path)
    assert info.value.element == element and words in info.value.message


# --- the files beside vc-out.xml ---------------------------------------------------------


def test_write_puts_each_computes_own_file_beside_the_vcs(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    written = write_vc_out(example(), path)
    assert written == [tmp_path / "calit2-compute-0.xml", tmp_path / "calit2-compute-1.xml"]
    for node in example().computes:
        own = compute_vc_out_path(path, node.name)
        assert own.read_bytes() == compute_vc_out_to_bytes(example(), node.name)
        assert parse(own.read_bytes()).hostname == f"{node.name}.local"


def test_rewriting_for_fewer_computes_removes_the_gone_ones_files(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    (tmp_path / "unrelated.xml").write_text("<kept/>")
    fewer = dataclasses.replace(example(), computes=example().computes[:1])
    write_vc_out(fewer, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calit2-compute-0.xml",
        "unrelated.xml",
        "vc-out.xml",
    ]
    more = dataclasses.replace(
        example(),
        computes=(
            *example().computes,
            ComputeOut("calit2-compute-2", "7a:77:6e:40:00:0c", "10.1.1.252", 1),
        ),
    )
    write_vc_out(more, path)
    assert parse((tmp_path / "calit2-compute-2.xml").read_bytes()).hostname == (
        "calit2-compute-2.local"
    )


def test_compute_files_validate_against_their_shipped_schema() -> None:
    from importlib import resources

    xsd = (
        resources.files("pragmash.vc.formats")
        .joinpath("schemas", "vc-out-compute.xsd")
        .read_bytes()
    )
    schema = etree.XMLSchema(etree.fromstring(xsd))
    assert schema.validate(etree.fromstring(compute_vc_out_to_bytes(example(), "calit2-compute-1")))
    assert schema.validate(etree.fromstring(PRAGMA_BOOT_COMPUTE.split("?>", 1)[1].encode()))
    assert not schema.validate(etree.fromstring(vc_out_to_bytes(example())))


def test_an_unknown_compute_has_no_own_file() -> None:
    with pytest.raises(VcFormatError, match="no compute named 'nobody'"):
        compute_vc_out_to_bytes(example(), "nobody")


def plan(name: str, role: str) -> NodePlan:
    return NodePlan(name, role, None, 1, "<domain/>", (), (), (), "qemu")  # type: ignore[arg-type]


def uploaded_vc_outs(argv: list[str]) -> list[str]:
    """The local files a recorded guestfish command line uploads to /root/vc-out.xml."""
    return [
        argv[i + 1]
        for i, word in enumerate(argv[:-2])
        if word == "upload" and argv[i + 2] == "/root/vc-out.xml"
    ]


def test_which_file_each_node_boots_with(tmp_path: Path) -> None:
    whole = tmp_path / "vc-out.xml"
    assert node_vc_out_path(whole, "calit2-frontend", "frontend") == whole
    assert node_vc_out_path(whole, "calit2-compute-0", "compute") == tmp_path / (
        "calit2-compute-0.xml"
    )
    assert node_vc_out_path(whole, "calit2-compute-0", "compute", "whole") == whole
    ctx = StageContext("calit2", tmp_path, whole)
    assert node_vc_out(ctx, plan("calit2-frontend", "frontend")) == whole
    assert (
        node_vc_out(ctx, plan("calit2-compute-1", "compute")) == tmp_path / "calit2-compute-1.xml"
    )
    ctx.computes_vc_out = "whole"
    assert node_vc_out(ctx, plan("calit2-compute-1", "compute")) == whole


# --- the site chooses what computes boot with ----------------------------------------------

SITE = """
[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]
"""


@pytest.mark.parametrize(
    ("extra", "computes"), [("", "own"), ('[vc_out]\ncomputes = "whole"\n', "whole")]
)
def test_the_site_setting_defaults_to_each_computes_own_file(
    tmp_path: Path, extra: str, computes: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + extra)
    site = load_site(path, env={"HOME": "/nonexistent"})
    assert site.computes_vc_out == computes
    assert stage_context(site, "calit2").computes_vc_out == computes


def test_a_bad_setting_names_the_key_and_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + '[vc_out]\ncomputes = "seed"\n')
    with pytest.raises(ConfigError) as info:
        load_site(path, env={"HOME": "/nonexistent"})
    assert info.value.key == "[vc_out] computes"
    assert "own" in info.value.message and "whole" in info.value.message


@pytest.mark.parametrize("computes", ["own", "whole"])
def test_pre_boot_puts_the_chosen_file_into_each_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, computes: ComputeVcOut
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(inject, "run_tool", recorder)
    whole = tmp_path / "vc-out.xml"
    write_vc_out(example(), whole)
    ctx = StageContext("calit2", tmp_path, whole, computes_vc_out=computes)
    disks = {n: raw_disk(tmp_path / f"{n}.img") for n in ("fe", "c0", "c1")}
    Rocks6Client().pre_boot_many(
        [
            (plan("calit2-frontend", "frontend"), disks["fe"]),
            (plan("calit2-compute-0", "compute"), disks["c0"]),
            (plan("calit2-compute-1", "compute"), disks["c1"]),
        ],
        whole,
        ctx,
    )
    [(argv, _env)] = recorder.calls
    assert uploaded_vc_outs(argv) == (
        [str(whole)] * 3
        if computes == "whole"
        else [
            str(whole),
            str(tmp_path / "calit2-compute-0.xml"),
            str(tmp_path / "calit2-compute-1.xml"),
        ]
    )


def test_a_vc_allocated_before_own_files_gets_them_at_pre_boot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Resuming a run whose vc-out.xml was written without the computes' files still boots."""
    monkeypatch.setattr(inject, "run_tool", Recorder())
    whole = tmp_path / "vc-out.xml"
    whole.write_bytes(vc_out_to_bytes(example()))  # the VC's file alone
    ctx = StageContext("calit2", tmp_path, whole)
    disk = raw_disk(tmp_path / "c0.img")
    Rocks6Client().pre_boot_many([(plan("calit2-compute-0", "compute"), disk)], whole, ctx)
    own = tmp_path / "calit2-compute-0.xml"
    assert parse(own.read_bytes()).hostname == "calit2-compute-0.local"
