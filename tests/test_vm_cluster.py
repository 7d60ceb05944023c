"""Tier 3: a real cluster on qemu:///system, checked from inside the guests.

Builds a tiny busybox image (gzip-compressed like the seed's), a repository and a
site config, runs a recipe of the rocks6 shape through the CLI, then reads each
node's serial console: every guest prints the name, IP and MAC it found for
itself in /root/vc-out.xml, and those must match the ledger. ``shutdown`` and
``clean`` must then leave no domain, overlay or lease behind. Guests send no
network traffic: user-mode interfaces whose links are never brought up.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import libvirt
import pytest
from vmimage import MARKER_SELF, MARKER_UP, TestImage, build_test_image

from pragmash.allocation import current_allocation
from pragmash.cli import main
from pragmash.ledger import Ledger
from pragmash.site import load_site

pytestmark = pytest.mark.vm

RECIPE = """\
# the rocks6 shape, on a real engine
allocate 2
fix all via none
boot frontend
wait frontend up timeout 5m
boot compute
wait compute up timeout 5m
"""

DOMAIN = """\
    <domain type='kvm'>
      <name>{name}</name>
      <memory unit='MiB'>192</memory>
      <vcpu>1</vcpu>
      <os>
        <type arch='x86_64'>hvm</type>
        <kernel>{kernel}</kernel>
        <initrd>{initrd}</initrd>
        <cmdline>console=ttyS0 root=/dev/vda1 rw quiet</cmdline>
      </os>
      <features><acpi/><apic/></features>
      <devices>
        <emulator>/usr/libexec/qemu-kvm</emulator>
{interfaces}
        <disk type='file' device='disk'>
          <driver name='qemu' type='raw'/>
          <source file='busybox.img.gz'/>
          <target dev='vda' bus='virtio'/>
        </disk>
        <console tty='/dev/pts/0'/>
      </devices>
    </domain>"""

IFACE = """\
        <interface type='bridge'>
          <source bridge='{bridge}'/>
          <mac address='{mac}'/>
          <model type='virtio'/>
        </interface>"""


def write_repository(root: Path, image: TestImage) -> Path:
    repo = root / "repo"
    vc = repo / "vmtest"
    vc.mkdir(parents=True)
    (vc / "busybox.img.gz").write_bytes(image.disk_gz.read_bytes())
    fe_ifaces = "\n".join(
        [
            IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:00:07"),
            IFACE.format(bridge="eth1", mac="7a:77:6e:40:00:08"),
        ]
    )
    frontend = DOMAIN.format(
        name="vmtest-fe", kernel=image.kernel, initrd=image.initrd, interfaces=fe_ifaces
    )
    compute = DOMAIN.format(
        name="vmtest-c",
        kernel=image.kernel,
        initrd=image.initrd,
        interfaces=IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:00:0a"),
    )
    (vc / "vc-in.xml").write_text(
        f"""<vc type='Local Beowulf'>
  <virtualization engine='kvm' type='hvm' arch='x86_64'/>
  <driver>rocks6_client</driver>
  <frontend>
{frontend}
  </frontend>
  <compute>
    <boot_dependency parent='frontend'><wait type='clock' value='300'/></boot_dependency>
{compute}
  </compute>
  <networks>
    <network name='private'><ipaddress>10.1.1.1</ipaddress><netmask>255.255.0.0</netmask></network>
    <frontend><public>eth1</public></frontend>
  </networks>
</vc>
"""
    )
    (repo / "vcdb.txt").write_text("vmtest,vmtest/vc-in.xml\n")
    return repo


def write_site(root: Path, repo: Path) -> Path:
    site = root / "site.toml"
    site.write_text(
        f"""[engine]
driver = "libvirt"
uri = "qemu:///system"
domain_type = "qemu"
boot_parallelism = 2

[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
dns = "192.0.2.53"
mac_prefix = "7a:77:6f"
vlans = [10, 20]
default_network = "user"
public = [ {{ ip = "192.0.2.10", fqdn = "vmtest.example.org" }} ]

[resources]
cpus = 8
reserve = 1

[paths]
temp = "{root / "tmp"}"
state = "{root / "state"}"
image_cache = "{root / "cache"}"
repository = "{repo}"
"""
    )
    return site


def console_lines(path: Path, marker: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        lines = [line.strip() for line in text.splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def test_cluster_boots_and_each_guest_knows_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    site_path = write_site(tmp_path, repo)
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    out, err = io.StringIO(), io.StringIO()
    conn = libvirt.open("qemu:///system")
    try:
        code = main([str(recipe), "--vcname", "vmtest", "--site", str(site_path)], out=out, err=err)
        assert code == 0, out.getvalue() + err.getvalue()
        site = load_site(site_path, {})
        held = current_allocation(Ledger(site), "vmtest")
        assert held is not None and len(held.nodes) == 3
        temp = tmp_path / "tmp" / "vmtest"
        consoles = {}
        for lease in held.nodes:
            console = temp / f"{lease.name}.console.log"
            assert console_lines(console, MARKER_UP), f"{lease.name} never printed {MARKER_UP}"
            selves = console_lines(console, MARKER_SELF)
            consoles[lease.name] = console.read_text(errors="replace")
            # each guest found itself in /root/vc-out.xml by its own MAC
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in (re.search(r"name=(\S*) ip=(\S*) mac=(\S*)", s) for s in selves)
                if m
            }
            if lease.role == "compute":
                assert found.get(lease.macs[0]) == (lease.name, lease.private_ip), selves
            else:  # the frontend reports its public fqdn as its name
                assert found.get(lease.macs[0]) == (held.public.fqdn, lease.private_ip), selves
                assert found.get(lease.macs[1]) == (held.public.fqdn, lease.public_ip), selves
            dom = conn.lookupByName(lease.name)
            assert dom.isActive()
            assert lease.macs[0] in dom.XMLDesc()
        keep = os.environ.get("PRAGMASH_KEEP_CONSOLES")
        if keep:  # for a human to read what the guests printed
            Path(keep).write_text(
                "\n".join(f"== {name} ==\n{text}" for name, text in consoles.items())
            )
        # every node has its own small overlay, not a copy
        overlays = sorted((temp / "disks").glob("*.qcow2"))
        assert [p.stem for p in overlays] == sorted(n.name for n in held.nodes)
        assert all(p.stat().st_blocks * 512 < 4 * 1024 * 1024 for p in overlays)
        # shutdown (busybox may ignore ACPI: then it says what did not stop), then clean
        main(["shutdown", "vmtest", "--site", str(site_path), "--timeout", "5"], out=out, err=err)
        assert main(["clean", "vmtest", "--site", str(site_path)], out=out, err=err) == 0
        assert current_allocation(Ledger(site), "vmtest") is None
        names = {d.name() for d in conn.listAllDomains()}
        assert not {n.name for n in held.nodes} & names
        assert not temp.exists()
    finally:
        for dom in conn.listAllDomains():
            if dom.name().startswith("vmtest-"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        conn.close()
