"""vc-out.xml: schema-validated, atomic writing; reading ours and the seed's example."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest
from lxml import etree
from support.seedreadme import seed_vc_out

from pragmash.errors import VcFormatError
from pragmash.vc.formats.vcout import (
    ComputeOut,
    FrontendOut,
    VcOut,
    read_vc_out,
    repair_vc_out,
    vc_out_to_bytes,
    write_vc_out,
)

# The seed README's vc-out.xml example, unchanged (no mac= on the frontend, no cpus=).
SEED_VC_OUT = seed_vc_out()


def example() -> VcOut:
    return VcOut(
        frontend=FrontendOut(
            name="calit2-119-222",
            public_fqdn="calit2-119-222.ucsd.edu",
            public_ip="137.110.119.222",
            public_netmask="255.255.255.0",
            public_gw="137.110.119.1",
            public_mac="7a:77:6e:40:00:07",
            private_ip="10.1.1.1",
            private_netmask="255.255.0.0",
            private_mac="7a:77:6e:40:00:08",
        ),
        computes=(
            ComputeOut(name="hosted-vm-0-1-0", mac="7a:77:6e:40:00:15", ip="10.1.1.254", cpus=1),
            ComputeOut(name="hosted-vm-0-0-0", mac="7a:77:6e:40:00:14", ip="10.1.1.253", cpus=2),
        ),
        dns_ip="8.8.8.8",
        dns_search="local",
        dns_domain="",
    )


OWN_FILES = ["hosted-vm-0-0-0.xml", "hosted-vm-0-1-0.xml"]


def find(root: etree._Element, path: str) -> etree._Element:
    node = root.find(path)
    assert node is not None, path
    return node


def attrs(node: etree._Element) -> dict[str, str]:
    return {str(key): str(value) for key, value in node.attrib.items()}


def test_bytes_match_the_documented_shape() -> None:
    root = etree.fromstring(vc_out_to_bytes(example()))
    assert root.tag == "vc"
    assert [child.tag for child in root] == ["frontend", "compute", "network"]
    assert [child.tag for child in find(root, "frontend")] == ["public", "private"]
    # vc-out-parser's attributes on <frontend>, the seed's on <public>: both
    assert attrs(find(root, "frontend")) == {
        "fqdn": "calit2-119-222.ucsd.edu",
        "name": "calit2-119-222",
        "gw": "137.110.119.1",
    }
    public = find(root, "frontend/public")
    assert attrs(public) == {
        "fqdn": "calit2-119-222.ucsd.edu",
        "ip": "137.110.119.222",
        "netmask": "255.255.255.0",
        "gw": "137.110.119.1",
        "mac": "7a:77:6e:40:00:07",
    }
    private = find(root, "frontend/private")
    assert attrs(private) == {
        "ip": "10.1.1.1",
        "netmask": "255.255.0.0",
        "mac": "7a:77:6e:40:00:08",
    }
    compute = find(root, "compute")
    assert compute.get("count") == "2"
    gw = {"gw": "10.1.1.1"}  # computes route through the frontend's private address
    assert [attrs(node) for node in compute] == [
        {"name": "hosted-vm-0-1-0", "mac": "7a:77:6e:40:00:15", "ip": "10.1.1.254", "cpus": "1"}
        | gw,
        {"name": "hosted-vm-0-0-0", "mac": "7a:77:6e:40:00:14", "ip": "10.1.1.253", "cpus": "2"}
        | gw,
    ]
    # each node's interface as a child, as vc-out-parser reads it
    assert [[(i.tag, attrs(i)) for i in node] for node in compute] == [
        [("private", {"ip": "10.1.1.254", "netmask": "255.255.0.0", "mac": "7a:77:6e:40:00:15"})],
        [("private", {"ip": "10.1.1.253", "netmask": "255.255.0.0", "mac": "7a:77:6e:40:00:14"})],
    ]
    dns = find(root, "network/dns")
    assert attrs(dns) == {"ip": "8.8.8.8", "search": "local", "domain": ""}


def test_output_is_indented_one_element_a_line() -> None:
    text = vc_out_to_bytes(example()).decode()
    assert '\n  <frontend fqdn="calit2-119-222.ucsd.edu" name="calit2-119-222"' in text
    assert '">\n    <public fqdn="calit2-119-222.ucsd.edu"' in text
    assert '\n    <node name="hosted-vm-0-0-0"' in text
    assert text.endswith("</vc>\n")


def test_written_file_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    from importlib import resources

    xsd = resources.files("pragmash.vc.formats").joinpath("schemas", "vc-out.xsd").read_bytes()
    schema = etree.XMLSchema(etree.fromstring(xsd))
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    assert schema.validate(etree.parse(str(path)))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    assert read_vc_out(path) == example()


def test_round_trip_without_computes(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    alone = dataclasses.replace(example(), computes=())
    write_vc_out(alone, path)
    assert b'<compute count="0"/>' in path.read_bytes()
    assert read_vc_out(path).computes == ()


def test_written_file_is_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_seed_example_reads(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(SEED_VC_OUT, encoding="utf-8")
    vc_out = read_vc_out(path)
    assert vc_out.frontend.public_fqdn == "calit2-119-222.ucsd.edu"
    assert vc_out.frontend.public_mac == ""
    assert vc_out.frontend.name == ""
    assert [(c.name, c.ip, c.cpus) for c in vc_out.computes] == [
        ("hosted-vm-0-1-0", "10.1.0.254", 1),
        ("hosted-vm-0-0-0", "10.1.0.253", 1),
    ]
    assert (vc_out.dns_ip, vc_out.dns_search, vc_out.dns_domain) == ("8.8.8.8", "local", "")


BAD_VALUES = [
    (lambda v: dataclasses.replace(v, dns_ip="eight"), "/vc/network/dns"),
    (
        lambda v: dataclasses.replace(
            v, frontend=dataclasses.replace(v.frontend, public_ip="137.110.119.999")
        ),
        "/vc/frontend/public",
    ),
    (
        lambda v: dataclasses.replace(v, frontend=dataclasses.replace(v.frontend, public_mac="")),
        "/vc/frontend/public",
    ),
    (
        lambda v: dataclasses.replace(
            v, frontend=dataclasses.replace(v.frontend, public_fqdn="bad fqdn")
        ),
        "/vc/frontend",  # <frontend fqdn> comes first
    ),
    (
        lambda v: dataclasses.replace(
            v, computes=(dataclasses.replace(v.computes[0], mac="zz:zz"),)
        ),
        "/vc/compute/node",
    ),
    (
        lambda v: dataclasses.replace(v, computes=(dataclasses.replace(v.computes[0], cpus=0),)),
        "/vc/compute/node",
    ),
    (
        lambda v: dataclasses.replace(v, computes=(v.computes[0], v.computes[0])),
        "/vc/compute/node[2]",
    ),
]


@pytest.mark.parametrize(("change", "element"), BAD_VALUES)
def test_invalid_values_are_refused_with_element_path(change: object, element: str) -> None:
    assert callable(change)
    with pytest.raises(VcFormatError) as info:
        vc_out_to_bytes(change(example()))
    assert info.value.element == element
    assert "vc-out.xsd" in info.value.message


def test_control_characters_are_refused() -> None:
    bad = dataclasses.replace(example(), dns_search="local\x00")
    with pytest.raises(VcFormatError, match="cannot be written as XML"):
        vc_out_to_bytes(bad)


def test_failed_validation_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    bad = dataclasses.replace(example(), dns_ip="eight")
    with pytest.raises(VcFormatError):
        write_vc_out(bad, path)
    assert os.listdir(tmp_path) == []

    write_vc_out(example(), path)
    before = path.read_bytes()
    with pytest.raises(VcFormatError):
        write_vc_out(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [*OWN_FILES, "vc-out.xml"]


def test_write_into_missing_folder_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_vc_out(example(), tmp_path / "missing" / "vc-out.xml")
    assert os.listdir(tmp_path) == []


def test_rewrite_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    smaller = dataclasses.replace(example(), computes=())
    write_vc_out(smaller, path)
    assert read_vc_out(path) == smaller
    assert os.listdir(tmp_path) == ["vc-out.xml"]  # the computes' own files went with them


@pytest.mark.parametrize(
    ("text", "element", "words"),
    [
        ("<cluster/>", "/vc", "expected <vc>"),
        (SEED_VC_OUT.replace('count="2"', 'count="3"'), "/vc/compute/@count", "equal"),
        (
            SEED_VC_OUT.replace("<network>", "<networks>").replace("</network>", "</networks>"),
            "/vc/networks",
            "vc-out.xsd",
        ),
        (SEED_VC_OUT.replace(' ip="10.1.0.253"', ""), "/vc/compute/node[2]", "ip"),
    ],
)
def test_read_errors_name_the_element(tmp_path: Path, text: str, element: str, words: str) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(VcFormatError) as info:
        read_vc_out(path)
    assert info.value.element == element
    assert info.value.file == str(path)
    assert words in info.value.message


def test_read_refuses_entities(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    path.write_text(
        '<!DOCTYPE vc [<!ENTITY x SYSTEM "file:///etc/passwd">]><vc>&x;</vc>', encoding="utf-8"
    )
    with pytest.raises(VcFormatError, match="DTDs and entities are not allowed"):
        read_vc_out(path)


def test_repair_rewrites_only_the_files_that_differ(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert repair_vc_out(example(), path) == []  # all right: nothing written

    own = sorted(n for n in written if n != "vc-out.xml")
    (tmp_path / own[0]).write_bytes(b"")  # what a crash can leave of an unsynced file
    (tmp_path / own[1]).unlink()
    before = path.stat().st_mtime_ns
    assert sorted(repair_vc_out(example(), path)) == [tmp_path / own[0], tmp_path / own[1]]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == written
    assert path.stat().st_mtime_ns == before  # the right file was left alone

    path.write_bytes(written["vc-out.xml"][:40])
    assert repair_vc_out(example(), path) == [path]
    assert read_vc_out(path) == example()


def test_writing_again_leaves_the_files_that_hold_their_bytes_alone(tmp_path: Path) -> None:
    path = tmp_path / "vc-out.xml"
    write_vc_out(example(), path)
    inodes = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    write_vc_out(example(), path)  # the same allocation: nothing to write
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir()} == inodes
    moved = dataclasses.replace(
        example(), computes=(dataclasses.replace(example().computes[0], ip="10.1.0.200"),)
    )
    write_vc_out(moved, path)  # one compute changed, the other gone: those two files
    assert read_vc_out(path) == moved
    assert sorted(p.name for p in tmp_path.iterdir()) == [OWN_FILES[1], "vc-out.xml"]
    assert (tmp_path / OWN_FILES[1]).stat().st_ino != inodes[OWN_FILES[1]]
