"""vc-in.xml reading: the seed's example unchanged, both driver forms, element-path errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from support.seedreadme import SEED_README

from pragmash.errors import VcFormatError
from pragmash.vc.formats.vcin import load_vc_in
from pragmash.vc.formats.xmlsafe import parse_xml_bytes
from pragmash.vc.repository.vcdb import load_repository

DATA = Path(__file__).parents[1] / "data" / "vcin"
SEED = DATA / "seed-vc-in.xml"


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "vc-in.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(path: Path, element: str | None) -> VcFormatError:
    with pytest.raises(VcFormatError) as info:
        load_vc_in(path)
    assert info.value.element == element, info.value.message
    assert info.value.file == str(path.absolute())
    return info.value


def test_seed_copy_is_the_readme_block_unchanged() -> None:
    readme = SEED_README.read_text(encoding="utf-8")
    assert seed_text() in readme
    assert seed_text().startswith(" <vc type='Local Beowulf'>")


def test_seed_example_reads_unchanged() -> None:
    vc = load_vc_in(SEED)
    assert vc.path == SEED.absolute()
    assert vc.vc_type == "Local Beowulf"
    assert (vc.engine, vc.virt_type, vc.arch) == ("kvm", "hvm", "x86_64")
    assert vc.driver == "rocks6_client"
    assert vc.boot_wait_seconds == 300
    assert (vc.private_ip, vc.private_netmask) == ("10.1.1.1", "255.255.0.0")
    assert vc.frontend_public_iface == "eth1"

    front = vc.frontend
    assert front.role == "frontend"
    assert front.name == "calit2-119-222"
    assert front.domain_type == "kvm"
    assert front.vcpus == 1
    assert front.memory_kib == 1048576
    assert [(i.type, i.source, i.mac, i.model) for i in front.interfaces] == [
        ("bridge", "eth0.2", "7a:77:6e:40:00:07", "virtio"),
        ("bridge", "eth1", "7a:77:6e:40:00:08", "virtio"),
    ]
    assert front.disk_sources == ("calit2-119-222.img.gz",)
    assert front.disk_paths == (DATA.absolute() / "calit2-119-222.img.gz",)

    assert vc.compute is not None
    assert vc.compute.role == "compute"
    assert vc.compute.name == "compute-0-0-0"
    assert len(vc.compute.interfaces) == 1
    assert vc.compute.disk_paths == (DATA.absolute() / "hosted-vm-0-0-1.img.gz",)


def test_domain_xml_is_the_domain_element_unchanged() -> None:
    vc = load_vc_in(SEED)
    domain = etree.fromstring(vc.frontend.domain_xml)
    assert domain.tag == "domain"
    assert domain.get("type") == "kvm"
    assert domain.findtext("name") == "calit2-119-222"
    assert domain.findtext("devices/emulator") == "/usr/libexec/qemu-kvm"
    assert domain.find("features/pae") is not None
    # Nothing from around the domain (the <frontend>'s comments) leaks in.
    assert "end libvirt xml format" not in vc.frontend.domain_xml
    assert vc.compute is not None
    assert "boot_dependency" not in vc.compute.domain_xml


def test_driver_as_distro_attribute(tmp_path: Path) -> None:
    text = seed_text().replace("<driver>rocks6_client</driver>", "<distro driver='rocks6_client'/>")
    assert load_vc_in(write(tmp_path, text)).driver == "rocks6_client"


def test_driver_forms_that_agree_are_fine_and_disagree_are_not(tmp_path: Path) -> None:
    agree = seed_text().replace(
        "<driver>rocks6_client</driver>",
        "<driver>rocks6_client</driver><distro driver='rocks6_client'/>",
    )
    assert load_vc_in(write(tmp_path, agree)).driver == "rocks6_client"
    disagree = agree.replace("<distro driver='rocks6_client'/>", "<distro driver='centos7'/>")
    error = expect_error(write(tmp_path, disagree, "b.xml"), "/vc/driver")
    assert "disagree" in error.message


def test_no_driver_is_an_error(tmp_path: Path) -> None:
    text = seed_text().replace("<driver>rocks6_client</driver>", "")
    error = expect_error(write(tmp_path, text), "/vc/driver")
    assert "<driver>NAME</driver>" in error.message


@pytest.mark.parametrize("bad", ["../evil", "rocks 6", "-x", "a/b"])
def test_unsafe_driver_name_is_refused(tmp_path: Path, bad: str) -> None:
    text = seed_text().replace("<driver>rocks6_client</driver>", f"<driver>{bad}</driver>")
    error = expect_error(write(tmp_path, text), "/vc/driver")
    assert "driver name" in error.message


def _remove(text: str, pattern: str) -> str:
    new, count = re.subn(pattern, "", text, count=1, flags=re.DOTALL)
    assert count == 1, pattern
    return new


# Each required element, removed from the seed, and the path the error must name.
MISSING = [
    (r"<frontend>.*?</frontend>\s*<compute>", "/vc/frontend", "<compute>"),
    (r"<domain type='kvm'>\s*<name>calit2-119-222.*?</domain>", "/vc/frontend/domain", ""),
    (r"<memory>1048576</memory>", "/vc/frontend/domain/memory", ""),
    (r"<disk type='file' device='disk'>.*?</disk>", "/vc/frontend/domain/devices/disk", ""),
    (r"<domain type='kvm'>\s*<name>compute-0-0-0.*?</domain>", "/vc/compute/domain", ""),
    (r"<networks>.*</networks>", "/vc/networks", ""),
    (r"<network name='private'>.*?</network>", "/vc/networks/network[@name='private']", ""),
    (
        r"<ipaddress>10.1.1.1</ipaddress>",
        "/vc/networks/network[@name='private']/ipaddress",
        "",
    ),
    (
        r"<netmask>255.255.0.0</netmask>",
        "/vc/networks/network[@name='private']/netmask",
        "",
    ),
    (r"<wait type='clock' value='300'/>", "/vc/compute/boot_dependency/wait", ""),
]


@pytest.mark.parametrize(("pattern", "element", "replacement"), MISSING)
def test_missing_element_names_its_path(
    tmp_path: Path, pattern: str, element: str, replacement: str
) -> None:
    text, count = re.subn(pattern, replacement, seed_text(), count=1, flags=re.DOTALL)
    assert count == 1
    error = expect_error(write(tmp_path, text), element)
    assert "expected" in error.message
    assert str(tmp_path) in str(error)


@pytest.mark.parametrize(
    ("old", "new", "element"),
    [
        ("<vcpu>1</vcpu>", "<vcpu>0</vcpu>", "/vc/frontend/domain/vcpu"),
        ("<vcpu>1</vcpu>", "<vcpu>two</vcpu>", "/vc/frontend/domain/vcpu"),
        ("<memory>1048576</memory>", "<memory>lots</memory>", "/vc/frontend/domain/memory"),
        (
            "<memory>1048576</memory>",
            "<memory unit='parsecs'>1</memory>",
            "/vc/frontend/domain/memory",
        ),
        ("<domain type='kvm'>", "<domain>", "/vc/frontend/domain/@type"),
        (
            "<ipaddress>10.1.1.1</ipaddress>",
            "<ipaddress>10.1.1.300</ipaddress>",
            "/vc/networks/network[@name='private']/ipaddress",
        ),
        (
            "<netmask>255.255.0.0</netmask>",
            "<netmask>255.0.255.0</netmask>",
            "/vc/networks/network[@name='private']/netmask",
        ),
        (
            "value='300'",
            "value='five minutes'",
            "/vc/compute/boot_dependency/wait/@value",
        ),
        (  # a digit to str.isdigit, a ValueError to int(): was a traceback
            "value='300'",
            "value='\u00b2'",
            "/vc/compute/boot_dependency/wait/@value",
        ),
        (
            "calit2-119-222.img.gz",
            "../../etc/shadow",
            "/vc/frontend/domain/devices/disk/source/@file",
        ),
        (
            "calit2-119-222.img.gz",
            "/var/lib/images/x.img",
            "/vc/frontend/domain/devices/disk/source/@file",
        ),
    ],
)
def test_wrong_values_name_their_path(tmp_path: Path, old: str, new: str, element: str) -> None:
    text = seed_text()
    assert old in text
    expect_error(write(tmp_path, text.replace(old, new, 1)), element)


def test_two_frontend_domains_are_refused(tmp_path: Path) -> None:
    text = seed_text().replace(
        "</domain>\n     <!-- end", "</domain><domain type='kvm'/>\n<!-- end", 1
    )
    error = expect_error(write(tmp_path, text), "/vc/frontend/domain")
    assert "exactly one" in error.message


def test_error_message_carries_the_line(tmp_path: Path) -> None:
    text = seed_text().replace("<vcpu>1</vcpu>", "<vcpu>0</vcpu>", 1)
    error = expect_error(write(tmp_path, text), "/vc/frontend/domain/vcpu")
    line = seed_text().splitlines().index("       <vcpu>1</vcpu>") + 1
    assert f"(line {line})" in error.message


@pytest.mark.parametrize(
    ("memory", "kib"),
    [
        ("<memory>2048</memory>", 2048),
        ("<memory unit='KiB'>2048</memory>", 2048),
        ("<memory unit='MiB'>512</memory>", 512 * 1024),
        ("<memory unit='G'>2</memory>", 2 * 1024 * 1024),
        ("<memory unit='MB'>1</memory>", 977),  # 1,000,000 bytes, rounded up
        ("<memory unit='bytes'>1</memory>", 1),
    ],
)
def test_memory_unit_is_honoured(tmp_path: Path, memory: str, kib: int) -> None:
    text = seed_text().replace("<memory>1048576</memory>", memory, 1)
    assert load_vc_in(write(tmp_path, text)).frontend.memory_kib == kib


def test_frontend_only_vc(tmp_path: Path) -> None:
    text = _remove(seed_text(), r"<compute>.*</compute>")
    vc = load_vc_in(write(tmp_path, text))
    assert vc.compute is None
    assert vc.boot_wait_seconds is None
    assert vc.frontend.name == "calit2-119-222"


def test_no_boot_dependency_means_no_default_wait(tmp_path: Path) -> None:
    text = _remove(seed_text(), r"<boot_dependency.*?</boot_dependency>")
    vc = load_vc_in(write(tmp_path, text))
    assert vc.boot_wait_seconds is None
    assert vc.compute is not None


def test_disk_paths_resolve_against_the_vc_in_folder(tmp_path: Path) -> None:
    sub = tmp_path / "vcs" / "calit2"
    sub.mkdir(parents=True)
    text = seed_text().replace("calit2-119-222.img.gz", "images/front.img", 1)
    vc = load_vc_in(write(sub, text))
    assert vc.frontend.disk_sources == ("images/front.img",)
    assert vc.frontend.disk_paths == (sub / "images" / "front.img",)


def test_wrong_root_element(tmp_path: Path) -> None:
    error = expect_error(write(tmp_path, "<cluster/>"), "/vc")
    assert "expected <vc>" in error.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VcFormatError, match="file not found"):
        load_vc_in(tmp_path / "nope.xml")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = seed_text().replace("</vcpu>", "</vcpus>", 1)
    path = write(tmp_path, text)
    with pytest.raises(VcFormatError) as info:
        load_vc_in(path)
    assert str(path) in str(info.value)
    line = seed_text().splitlines().index("       <vcpu>1</vcpu>") + 1
    assert f"at line {line}," in info.value.message


DTD_ATTACKS = [
    # External entity reading a local file.
    b'<?xml version="1.0"?>\n<!DOCTYPE vc [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    b"<vc><driver>&x;</driver></vc>",
    # Internal entity expansion (billion laughs, first rung).
    b'<!DOCTYPE vc [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><vc>&b;</vc>',
    # External DTD over the network.
    b'<!DOCTYPE vc SYSTEM "http://127.0.0.1:9/vc.dtd"><vc/>',
    # Lower-case and spaced markup.
    b"<!doctype vc><vc/>",
    # UTF-16, which a byte scan cannot read.
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE vc [<!ENTITY x "y">]><vc>&x;</vc>'.encode(
        "utf-16"
    ),
]


@pytest.mark.parametrize("data", DTD_ATTACKS)
def test_dtds_and_entities_are_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "vc-in.xml"
    path.write_bytes(data)
    with pytest.raises(VcFormatError, match="DTDs and entities are not allowed") as info:
        load_vc_in(path)
    assert "root:" not in str(info.value)  # /etc/passwd's content never shows up


def test_doctype_mentioned_in_a_comment_is_fine() -> None:
    root = parse_xml_bytes(b"<vc><!-- no <!DOCTYPE here --></vc>", "x.xml")
    assert root.tag == "vc"


def test_demo_repository_vc_ins_read() -> None:
    repo = load_repository(None)
    calit2 = load_vc_in(repo.vc_in_path("calit2"))
    assert calit2.driver == "rocks6_client"
    assert len(calit2.frontend.interfaces) == 2
    assert calit2.compute is not None
    assert len(calit2.compute.interfaces) == 1
    assert calit2.boot_wait_seconds == 300
    assert [p.name for p in calit2.frontend.disk_paths] == ["calit2-frontend.img.gz"]
    assert [p.name for p in calit2.compute.disk_paths] == ["calit2-compute.img.gz"]
    for path in (*calit2.frontend.disk_paths, *calit2.compute.disk_paths):
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    tiny = load_vc_in(repo.vc_in_path("tiny"))
    assert tiny.compute is None
    assert tiny.frontend.memory_kib == 256 * 1024
    assert tiny.frontend.disk_paths[0].is_file()


def test_unknown_element_is_caught_by_the_shipped_schema(tmp_path: Path) -> None:
    text = seed_text().replace("<driver>", "<colour>blue</colour><driver>", 1)
    error = expect_error(write(tmp_path, text), "/vc/colour")
    assert "vc-in.xsd" in error.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<name>calit2-119-222</name>", "<name>Test-Mig-VM-1 (01ce57d0-aa)</name>"),
        ("<name>calit2-119-222</name>", "<name>../etc</name>"),
        ("<name>calit2-119-222</name>", ""),
        ("<vcpu>1</vcpu>", ""),
    ],
)
def test_what_every_node_replaces_is_not_refused(tmp_path: Path, old: str, new: str) -> None:
    """A template's name (each node gets its own) and a missing <vcpu> (libvirt's default
    is one) are no reason to refuse a vc-in.xml."""
    text = seed_text().replace(old, new, 1)
    vcin = load_vc_in(write(tmp_path, text))
    assert vcin.frontend.vcpus == 1
