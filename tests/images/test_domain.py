"""render_domain: a seed-like vc-in template becomes one node's domain for this host."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxml import etree

from pragmash.driver_api import LOGIN_PROMPT, HostInfo, NodePlan, UpTest
from pragmash.errors import StepError
from pragmash.images.libvirt_xml.domain import (
    disk_format,
    render_domain,
    resolve_domain_type,
    with_uuid,
)

# The seed's frontend <domain>, as pragma_boot's README ships it.
SEED_FRONTEND = """<domain type='kvm'>
  <name>calit2-119-222</name>
  <uuid>0b5d1b6e-3d5c-4a4e-9a53-2f1d3c3b0a11</uuid>
  <os>
    <type>hvm</type>
    <boot dev='network'/>
    <boot dev='hd'/>
    <bootmenu enable='yes'/>
  </os>
  <memory>1048576</memory>
  <vcpu>1</vcpu>
  <features>
          <acpi/>
          <apic/>
          <pae/>
  </features>
  <devices>
    <emulator>/usr/libexec/qemu-kvm</emulator>
    <interface type='bridge'>
      <source bridge='eth0.2'/>
      <mac address='7a:77:6e:40:00:07'/>
      <model type='virtio' />
    </interface>
    <interface type='bridge'>
      <source bridge='eth1'/>
      <mac address='7a:77:6e:40:00:08'/>
      <model type='virtio' />
    </interface>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='calit2-119-222.img.gz'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/srv/iso/boot.iso'/>
      <target dev='hdc' bus='ide'/>
    </disk>
    <graphics type='vnc' port='-1' listen='0.0.0.0'/>
    <console tty='/dev/pts/0'/>
  </devices>
</domain>
"""

HOST = HostInfo(emulator="/usr/bin/qemu-system-x86_64", kvm_usable=False, arches=("x86_64",))


def plan(**changes: object) -> NodePlan:
    base = NodePlan(
        name="demo-fe",
        role="frontend",
        index=None,
        cpus=2,
        template_xml=SEED_FRONTEND,
        macs=("7a:77:6e:00:00:01", "7a:77:6e:00:00:02"),
        networks=("pragmash-vlan-5", "bridge:br-public"),
        disks=("/var/tmp/pragmash/demo/demo-fe.qcow2",),
        domain_type="qemu",
        console_log="/var/tmp/pragmash/demo/demo-fe.console.log",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def parse(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def test_identity_and_host_parts_are_replaced() -> None:
    root = parse(render_domain(plan(), HOST))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "demo-fe"
    assert root.find("uuid") is None
    assert root.findtext("vcpu") == "2"
    assert root.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    # what the VC author wrote and nobody decided otherwise is kept
    assert root.findtext("memory") == "1048576"
    assert [b.get("dev") for b in root.findall("os/boot")] == ["network", "hd"]
    assert root.find("features/pae") is not None


def test_interfaces_get_allocated_macs_and_networks_and_keep_model() -> None:
    root = parse(render_domain(plan(), HOST))
    ifaces = root.findall("devices/interface")
    assert [i.get("type") for i in ifaces] == ["network", "bridge"]
    assert [i.find("mac").get("address") for i in ifaces] == [  # type: ignore[union-attr]
        "7a:77:6e:00:00:01",
        "7a:77:6e:00:00:02",
    ]
    assert ifaces[0].find("source").attrib == {"network": "pragmash-vlan-5"}  # type: ignore[union-attr]
    assert ifaces[1].find("source").attrib == {"bridge": "br-public"}  # type: ignore[union-attr]
    assert [i.find("model").get("type") for i in ifaces] == ["virtio", "virtio"]  # type: ignore[union-attr]
    assert "eth0.2" not in render_domain(plan(), HOST)


def test_user_network_has_no_source() -> None:
    root = parse(render_domain(plan(networks=("user", "user")), HOST))
    for iface in root.findall("devices/interface"):
        assert iface.get("type") == "user"
        assert iface.find("source") is None
        assert iface.find("model") is not None


@pytest.mark.parametrize(
    ("macs", "networks"),
    [
        (("7a:77:6e:00:00:01",), ("user", "user")),
        (("7a:77:6e:00:00:01", "7a:77:6e:00:00:02"), ("user",)),
    ],
)
def test_interface_count_mismatch_is_a_boot_error(
    macs: tuple[str, ...], networks: tuple[str, ...]
) -> None:
    with pytest.raises(StepError) as info:
        render_domain(plan(macs=macs, networks=networks), HOST)
    assert info.value.stage == "ve_driver/boot"
    assert "2 <interface>" in info.value.message
    assert "demo-fe" in info.value.message


def test_disk_source_and_format_follow_the_staged_file() -> None:
    root = parse(render_domain(plan(), HOST))
    disks = root.findall("devices/disk")
    assert disks[0].find("source").get("file") == "/var/tmp/pragmash/demo/demo-fe.qcow2"  # type: ignore[union-attr]
    assert disks[0].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disks[0].find("driver").get("name") == "qemu"  # type: ignore[union-attr]
    # a cdrom is not one of the node's disks and stays as written
    assert disks[1].get("device") == "cdrom"
    assert disks[1].find("source").get("file") == "/srv/iso/boot.iso"  # type: ignore[union-attr]


def test_raw_disk_and_explicit_format() -> None:
    raw = parse(render_domain(plan(disks=("/d/fe.img",)), HOST))
    assert raw.find("devices/disk/driver").get("type") == "raw"  # type: ignore[union-attr]
    told = parse(render_domain(plan(disks=("/d/fe.img",)), HOST, formats=("qcow2",)))
    assert told.find("devices/disk/driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disk_format("X.QCOW2") == "qcow2"
    assert disk_format("x.img.gz") == "raw"


def test_disk_count_mismatch_is_a_boot_error() -> None:
    with pytest.raises(StepError, match="1 <disk device='disk'>"):
        render_domain(plan(disks=("/a.img", "/b.img")), HOST)


def test_no_host_emulator_removes_the_element() -> None:
    root = parse(render_domain(plan(), HostInfo(emulator=None, kvm_usable=False)))
    assert root.find("devices/emulator") is None


def test_console_tty_removed_and_a_logged_pty_console_added() -> None:
    root = parse(render_domain(plan(), HOST))
    consoles = root.findall("devices/console")
    assert len(consoles) == 1
    assert consoles[0].get("type") == "pty"  # `pragmash console` attaches to it
    assert consoles[0].get("tty") is None
    assert consoles[0].find("target").get("port") == "0"  # type: ignore[union-attr]
    log = "/var/tmp/pragmash/demo/demo-fe.console.log"
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "pty"
    assert serial.find("log").attrib == {"file": log, "append": "off"}  # type: ignore[union-attr]
    assert serial.find("target").get("port") == "0"  # type: ignore[union-attr]


def test_without_console_log_the_console_stays_without_the_template_hosts_tty() -> None:
    root = parse(render_domain(plan(console_log=None), HOST))
    consoles = root.findall("devices/console")
    assert len(consoles) == 1 and consoles[0].get("tty") is None
    assert root.find("devices/serial") is None


def test_vnc_listens_on_loopback_only() -> None:
    root = parse(render_domain(plan(), HOST))
    graphics = root.find("devices/graphics")
    assert graphics is not None
    assert graphics.get("type") == "vnc"
    assert graphics.get("listen") == "127.0.0.1"
    assert [li.get("address") for li in graphics.findall("listen")] == ["127.0.0.1"]
    assert "0.0.0.0" not in etree.tostring(root, encoding="unicode")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("<domain type='kvm'><name>x</name", "malformed XML"),
        ("<vc><domain/></vc>", "expected a <domain> element"),
        (
            "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY e 'x'>]>"
            "<domain><name>&e;</name></domain>",
            "DOCTYPE",
        ),
    ],
)
def test_bad_templates_are_boot_errors(template: str, expected: str) -> None:
    with pytest.raises(StepError) as info:
        render_domain(plan(template_xml=template), HOST)
    assert info.value.stage == "ve_driver/boot"
    assert expected in info.value.message


def test_missing_name_and_vcpu_are_added() -> None:
    template = (
        "<domain type='kvm'><memory>1024</memory><os><type>hvm</type></os>"
        "<devices><interface type='network'><source network='x'/></interface></devices></domain>"
    )
    node = plan(template_xml=template, macs=("7a:77:6e:00:00:09",), networks=("user",), disks=())
    root = parse(render_domain(node, HOST))
    assert root.findtext("name") == "demo-fe"
    assert root.findtext("vcpu") == "2"
    assert root.find("devices/interface/mac").get("address") == "7a:77:6e:00:00:09"  # type: ignore[union-attr]


def test_with_uuid_puts_the_uuid_after_the_name() -> None:
    xml = with_uuid(render_domain(plan(), HOST), "11111111-2222-3333-4444-555555555555")
    root = parse(xml)
    assert root[0].tag == "name"
    assert root[1].tag == "uuid"
    assert root[1].text == "11111111-2222-3333-4444-555555555555"


LIBVIRT_SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")


@pytest.mark.skipif(not LIBVIRT_SCHEMA.exists(), reason="libvirt's schemas are not installed")
@pytest.mark.parametrize("networks", [("user", "user"), ("pragmash-vlan-5", "bridge:br0")])
@pytest.mark.parametrize("console_log", [None, "/var/tmp/fe.console.log"])
def test_rendered_domain_is_valid_for_libvirts_own_schema(
    networks: tuple[str, ...], console_log: str | None
) -> None:
    schema = etree.RelaxNG(etree.parse(str(LIBVIRT_SCHEMA)))
    xml = with_uuid(
        render_domain(plan(networks=networks, console_log=console_log), HOST),
        "11111111-2222-3333-4444-555555555555",
    )
    doc = parse(xml)
    assert schema.validate(doc), str(schema.error_log)


@pytest.mark.parametrize(
    ("choice", "template", "kvm_usable", "expected"),
    [
        ("kvm", "kvm", False, "kvm"),
        ("qemu", "kvm", True, "qemu"),
        ("auto", "kvm", True, "kvm"),
        ("auto", "kvm", False, "qemu"),
        ("auto", "qemu", True, "kvm"),
        ("auto", "xen", False, "xen"),
    ],
)
def test_resolve_domain_type(choice: str, template: str, kvm_usable: bool, expected: str) -> None:
    host = HostInfo(emulator=None, kvm_usable=kvm_usable)
    assert resolve_domain_type(choice, template, host) == expected


def test_resolve_domain_type_refuses_unknown_choice() -> None:
    with pytest.raises(ValueError, match="kvm, qemu or auto"):
        resolve_domain_type("hyperv", "kvm", HostInfo(emulator=None, kvm_usable=True))


def test_agent_channel_only_where_the_node_is_held_to_the_agent() -> None:
    devices = parse(render_domain(plan(up_tests=(UpTest("agent"),)), HOST)).find("devices")
    assert devices is not None
    channels = devices.findall("channel")
    assert len(channels) == 1 and channels[0].get("type") == "unix"
    target = channels[0].find("target")
    assert target is not None
    assert (target.get("type"), target.get("name")) == ("virtio", "org.qemu.guest_agent.0")
    no_agent = plan(up_tests=(UpTest("console", LOGIN_PROMPT),))
    assert parse(render_domain(no_agent, HOST)).find("devices/channel") is None


def test_a_templates_own_agent_channel_is_kept_not_doubled() -> None:
    own = SEED_FRONTEND.replace(
        "</devices>",
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        "</devices>",
    )
    root = parse(render_domain(plan(template_xml=own, up_tests=(UpTest("agent"),)), HOST))
    assert len(root.findall("devices/channel")) == 1
