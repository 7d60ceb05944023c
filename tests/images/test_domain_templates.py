"""Every kind of device a site's template may hold survives render_domain consistently.

Templates in tests/data/domains/ (written for these tests, one per kind of change) are
rendered for two nodes with sizes other than the template's, as allocation and --mem
give them; each result must be valid against libvirt's own schema (virt-xml-validate),
both nodes must define side by side on libvirt's test driver, and each change listed
in docs/vc-formats.md must be complete.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from pragmash.driver_api import HostInfo, NodePlan, UpTest
from pragmash.errors import VcFormatError
from pragmash.images.libvirt_xml.domain import render_domain
from pragmash.vc.formats.vcin import load_vc_in

DATA = Path(__file__).parents[1] / "data" / "domains"
HOST = HostInfo(emulator="/usr/bin/qemu-system-x86_64", kvm_usable=False, arches=("x86_64",))
TWO_INTERFACES = """<interface type='bridge'>
      <source bridge='eth0.2'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <source bridge='eth1'/>
      <model type='virtio'/>
    </interface>"""


def template(name: str) -> str:
    return (DATA / f"{name}.xml").read_text().replace("INTERFACES", TWO_INTERFACES)


def node(name: str, xml: str, number: int, **changes: object) -> NodePlan:
    disks = len(
        [
            d
            for d in etree.fromstring(xml).findall("devices/disk")
            if d.get("device", "disk") == "disk"
        ]
    )
    base = NodePlan(
        name=f"vc-node-{number}",
        role="frontend",
        index=None,
        cpus=1,
        template_xml=xml,
        macs=(f"7a:77:6e:00:0{number}:01", f"7a:77:6e:00:0{number}:02"),
        networks=("vc-private", "bridge:br-public"),
        disks=tuple(f"/var/tmp/pragmash/vc/vc-node-{number}-{i}.qcow2" for i in range(disks)),
        domain_type="qemu",
        console_log=f"/var/tmp/pragmash/vc/vc-node-{number}.console.log",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def rendered(name: str, number: int = 1, **changes: object) -> etree._Element:
    xml = render_domain(node(name, template(name), number, **changes), HOST)
    return etree.fromstring(xml.encode())


@pytest.fixture(scope="module")
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open("test:///default")
    yield c
    c.close()


TEMPLATES = sorted(p.stem for p in DATA.glob("*.xml"))


@pytest.mark.libvirt
@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("memory", [None, 512])
def test_two_nodes_are_schema_valid_and_define_side_by_side(
    name: str, memory: int | None, tmp_path: Path, conn: libvirt.virConnect
) -> None:
    defined = []
    try:
        for number in (1, 2):
            xml = render_domain(
                node(name, template(name), number, memory_mib=memory, cpus=number), HOST
            )
            assert shutil.which("virt-xml-validate"), "scripts/setup installs libvirt-clients"
            out = tmp_path / f"{number}.xml"
            out.write_text(xml)
            check = subprocess.run(
                ["virt-xml-validate", str(out), "domain"], capture_output=True, text=True
            )
            assert check.returncode == 0, check.stderr + xml
            defined.append(conn.defineXML(xml))
    finally:
        for dom in defined:
            dom.undefine()


def test_vcpus_carry_topology_numa_pins_and_current() -> None:
    root = rendered("numa-smp", cpus=1)
    assert root.findtext("vcpu") == "1"
    assert root.find("vcpu").get("current") is None  # type: ignore[union-attr]
    assert root.find("vcpus") is None
    assert [p.get("vcpu") for p in root.findall("cputune/vcpupin")] == ["0"]
    assert root.find("cputune/vcpusched").get("vcpus") == "0"  # type: ignore[union-attr]
    topology = root.find("cpu/topology")
    assert topology is not None
    assert [topology.get(a) for a in ("sockets", "dies", "cores", "threads")] == [
        "1",
        "1",
        "1",
        "1",
    ]
    cells = root.findall("cpu/numa/cell")
    assert [c.get("cpus") for c in cells] == ["0"]
    # the dropped cell's memory went to the kept one, and nothing names the dropped cell
    assert cells[0].get("memory") == "2097152"
    assert [s.get("id") for s in cells[0].findall("distances/sibling")] == ["0"]
    assert [m.get("cellid") for m in root.findall("numatune/memnode")] == ["0"]


def test_vcpus_that_fill_whole_sockets_keep_the_socket_shape() -> None:
    root = rendered("numa-smp", cpus=6)
    topology = root.find("cpu/topology")
    assert topology is not None
    assert (topology.get("sockets"), topology.get("cores")) == ("3", "2")
    assert [c.get("cpus") for c in root.findall("cpu/numa/cell")] == ["0-2", "3-5"]


def test_memory_carries_numa_cells_and_drops_hotplug() -> None:
    root = rendered("memory-hotplug", memory_mib=512)
    assert root.find("maxMemory") is None
    assert root.find("devices/memory") is None
    cells = root.findall("cpu/numa/cell")
    assert sum(int(c.get("memory", "0")) for c in cells) == 512 * 1024
    assert {c.get("unit") for c in cells} == {"KiB"}
    # without --mem the hot-plug set-up stays as the template wrote it
    kept = rendered("memory-hotplug")
    assert kept.find("maxMemory") is not None and kept.find("devices/memory") is not None


def test_every_uuid_goes_and_serials_are_the_nodes() -> None:
    root = rendered("identity")
    text = etree.tostring(root, encoding="unicode")
    assert "c7a5fdbd" not in text
    assert root.find("genid") is not None and not root.findtext("genid")
    serials = [e.text for e in root.iterfind("sysinfo/*/entry") if e.get("name") == "serial"]
    assert serials == ["vc-node-1", "vc-node-1"]
    assert root.findtext("sysinfo/system/entry[@name='manufacturer']") == "Fedora"


def test_graphics_stay_as_written_but_ports_and_sockets_are_per_node() -> None:
    root = rendered("graphics", graphics_listen="template")
    unix, spice, tcp = root.findall("devices/graphics")
    assert unix.get("socket") == "/var/run/vc/vc-node-1-vnc.sock"
    assert unix.find("listen") is None and unix.get("listen") is None
    assert [li.get("type") for li in spice.findall("listen")] == ["none"]
    assert spice.get("autoport") == "yes"
    assert tcp.get("port") is None and tcp.get("autoport") == "yes"
    assert tcp.get("websocket") == "-1"
    assert tcp.get("listen") == "0.0.0.0"  # the site keeps what the template wrote


def test_loopback_policy_changes_tcp_listeners_only() -> None:
    root = rendered("graphics")  # the default: graphics_listen = "loopback"
    unix, spice, tcp = root.findall("devices/graphics")
    assert unix.find("listen") is None and unix.get("listen") is None
    assert [li.get("type") for li in spice.findall("listen")] == ["none"]
    assert tcp.get("listen") == "127.0.0.1"
    assert [li.get("address") for li in tcp.findall("listen")] == ["127.0.0.1"]


def test_interface_type_change_takes_the_old_types_children_with_it() -> None:
    root = rendered("interfaces")
    hostdev, ovs = root.findall("devices/interface")
    assert hostdev.get("type") == "network" and hostdev.get("managed") is None
    assert [c.tag for c in hostdev] == ["mac", "source"]
    assert ovs.get("type") == "bridge"
    assert [c.tag for c in ovs] == ["mac", "source", "model", "mtu", "boot"]
    assert ovs.find("source").attrib == {"bridge": "br-public"}  # type: ignore[union-attr]


def test_disk_keeps_its_policy_and_loses_the_templates_chain() -> None:
    root = rendered("disks")
    first, data, cdrom = root.findall("devices/disk")
    source = first.find("source")
    assert source is not None
    assert {str(k): str(v) for k, v in source.attrib.items()} == {
        "file": "/var/tmp/pragmash/vc/vc-node-1-0.qcow2",
        "startupPolicy": "optional",
    }
    assert first.find("backingStore") is None
    driver = first.find("driver")
    assert driver is not None
    assert (driver.get("type"), driver.get("cache"), driver.get("discard")) == (
        "qcow2",
        "none",
        "unmap",
    )
    assert data.find("readonly") is not None
    assert cdrom.find("source").get("file") == "/srv/iso/tools.iso"  # type: ignore[union-attr]


def test_chardev_files_are_per_node_and_a_virtio_console_stays() -> None:
    root = rendered("chardevs", console_log=None)
    paths = [s.get("path") for s in root.iterfind("devices/*/source") if s.get("path")]
    assert paths == [
        "/var/log/vm/vc-node-1-serial.log",
        "/var/lib/libvirt/qemu/vc-node-1-f16x86_64.agent",
        "/tmp/vc-node-1-guestfwd.sock",
    ]
    assert root.find("devices/serial/log").get("file") == "/var/log/vm/vc-node-1-serial1.log"  # type: ignore[union-attr]
    consoles = root.findall("devices/console")
    assert [c.find("target").get("type") for c in consoles] == ["serial", "virtio"]  # type: ignore[union-attr]
    assert all(c.get("tty") is None for c in consoles)


def test_with_a_console_log_the_serial_console_is_pragmashs_and_the_virtio_one_stays() -> None:
    root = rendered("chardevs")
    consoles = root.findall("devices/console")
    assert [c.find("target").get("type") for c in consoles] == ["serial", "virtio"]  # type: ignore[union-attr]
    serials = root.findall("devices/serial")
    assert len(serials) == 1 and serials[0].find("log") is not None


def test_nvram_and_vsock_are_left_to_libvirt_per_node() -> None:
    root = rendered("firmware")
    nvram = root.find("os/nvram")
    assert nvram is not None and not nvram.text
    assert nvram.get("template") == "/usr/share/OVMF/OVMF_VARS.fd"
    cid = root.find("devices/vsock/cid")
    assert cid is not None and {str(k): str(v) for k, v in cid.attrib.items()} == {"auto": "yes"}


AGENT = (UpTest(kind="agent"),)


@pytest.mark.parametrize(
    ("domain_type", "channel"), [("qemu", True), ("kvm", True), ("xen", False), ("lxc", False)]
)
def test_the_agent_channel_only_where_the_domain_has_one(domain_type: str, channel: bool) -> None:
    root = rendered("graphics", domain_type=domain_type, up_tests=AGENT)
    names = [t.get("name") for t in root.findall("devices/channel/target")]
    assert (names == ["org.qemu.guest_agent.0"]) is channel
    assert rendered("graphics").find("devices/channel") is None  # no agent asked for


SEED = Path(__file__).parents[1] / "data" / "vcin" / "seed-vc-in.xml"

# what no node can be given, each with the element the refusal names
REFUSED = [
    (
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source></hostdev>",
        "devices/hostdev",
        "host device",
    ),
    (
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/>"
        "<product id='0xbeef'/></source></hostdev>",
        "devices/hostdev",
        "host device",
    ),
    (
        "<input type='evdev'><source dev='/dev/input/event1'/></input>",
        "devices/input[@type='evdev']",
        "evdev",
    ),
    (
        "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>",
        "devices/tpm/backend[@type='passthrough']",
        "TPM",
    ),
    (
        "<serial type='tcp'><source mode='bind' host='0.0.0.0' service='2445'/>"
        "<protocol type='raw'/><target port='1'/></serial>",
        "devices/serial[@type='tcp']/source",
        "same port",
    ),
    (
        "<disk type='block' device='lun'><source dev='/dev/sdb'/><target dev='sda' bus='scsi'/></disk>",
        "devices/disk[@device='lun']",
        "LUN",
    ),
    (
        "<disk type='file' device='disk'><source file='data.img'/><target dev='vdb' bus='virtio'/></disk>",
        "devices/disk",
        "second writable disk",
    ),
    (
        "<filesystem type='mount'><source dir='/srv/shared'/><target dir='shared'/></filesystem>",
        "devices/filesystem",
        "writable",
    ),
    (
        "<memory model='nvdimm'><source><path>/tmp/nvdimm</path></source>"
        "<target><size unit='KiB'>523264</size><node>0</node></target></memory>",
        "devices/memory[@model='nvdimm']/source/path",
        "NVDIMM",
    ),
]


def seed_with_device(device: str) -> str:
    text = SEED.read_text(encoding="utf-8")
    at = text.index("</devices>")  # the frontend's
    return text[:at] + device + text[at:]


@pytest.mark.parametrize(("device", "element", "words"), REFUSED)
def test_what_no_node_can_be_given_is_refused_when_the_vc_in_is_read(
    tmp_path: Path, device: str, element: str, words: str
) -> None:
    path = tmp_path / "vc-in.xml"
    path.write_text(seed_with_device(device), encoding="utf-8")
    with pytest.raises(VcFormatError) as info:
        load_vc_in(path)
    assert info.value.element == f"/vc/frontend/domain/{element}"
    assert words in info.value.message


@pytest.mark.parametrize(
    "device",
    [
        "<disk type='file' device='disk'><source file='data.img'/><target dev='vdb'/><readonly/></disk>",
        "<disk type='file' device='disk'><source file='data.img'/><target dev='vdb'/><shareable/></disk>",
        "<filesystem type='mount'><source dir='/srv/ro'/><target dir='ro'/><readonly/></filesystem>",
        "<serial type='tcp'><source mode='connect' host='127.0.0.1' service='2445'/><target port='1'/></serial>",
    ],
)
def test_what_nodes_may_share_is_accepted(tmp_path: Path, device: str) -> None:
    path = tmp_path / "vc-in.xml"
    path.write_text(seed_with_device(device), encoding="utf-8")
    load_vc_in(path)


@pytest.mark.parametrize(
    ("role", "interfaces"), [("frontend", 1), ("frontend", 3), ("compute", 0), ("compute", 2)]
)
def test_interface_count_is_refused_at_load_not_at_boot(
    tmp_path: Path, role: str, interfaces: int
) -> None:
    text = SEED.read_text(encoding="utf-8")
    start = text.index(f"<{role}>")
    end = text.index(f"</{role}>")
    part = text[start:end]
    iface = part[part.index("<interface") : part.index("</interface>") + len("</interface>")]
    body = part
    while "<interface" in body:
        a = body.index("<interface")
        b = body.index("</interface>", a) + len("</interface>")
        body = body[:a] + body[b:]
    at = body.index("</devices>")
    body = body[:at] + iface * interfaces + body[at:]
    path = tmp_path / "vc-in.xml"
    path.write_text(text[:start] + body + text[end:], encoding="utf-8")
    with pytest.raises(VcFormatError) as info:
        load_vc_in(path)
    assert info.value.element == f"/vc/{role}/domain/devices/interface"
    assert f"has {interfaces} <interface>" in info.value.message
