"""A repository VC of the stock Debian 12 test guest, for the real-QEMU tests that boot it.

The guest is the disk scripts/build-distro-image makes (support/distroimage.py finds
it). Its templates are shaped like the seed's: a disk that boots by itself
(``<boot dev='hd'/>``), a frontend on the private and public bridges and a compute on
the private one. The interfaces are the busybox VC's (support/vmsite.py), user-mode on
the test site, so a guest that brings its links up still sends nothing off the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.vmsite import IFACE, vc_in_xml

# A 2013 site's templates also name the host's emulator and a console tty; pragmash
# replaces both (images/libvirt_xml/domain.py), which the converted-guest tests show.
TEMPLATE_HOST_DEVICES = """\
        <emulator>/usr/libexec/qemu-kvm</emulator>
"""
TEMPLATE_HOST_CONSOLE = """
        <console tty='/dev/pts/0'/>"""

DOMAIN = """\
    <domain type='kvm'>
      <name>{name}</name>
      <memory unit='MiB'>512</memory>
      <vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <features><acpi/><apic/></features>
      <devices>
{emulator}{interfaces}
        <disk type='file' device='disk'>
          <driver name='qemu' type='qcow2'/>
          <source file='debian12.qcow2'/>
          <target dev='vda' bus='virtio'/>
        </disk>{console}
      </devices>
    </domain>"""


def write_debian_vc(
    repo: Path,
    vcname: str,
    disk: Path,
    *,
    driver: str = "rocks6_client",
    template_host: bool = True,
) -> None:
    """VC ``vcname`` in ``repo``: a frontend and a compute template that boot ``disk``.

    The disk is linked, not copied. ``driver`` is the vc-in's distro driver (the seed's
    rocks6_client, or cloud_init for seeded cloud images); ``template_host`` keeps the
    emulator and console lines a 2013 site's templates carry.
    """
    vc = repo / vcname
    vc.mkdir(parents=True)
    (vc / "debian12.qcow2").symlink_to(disk)
    host = {
        "emulator": TEMPLATE_HOST_DEVICES if template_host else "",
        "console": TEMPLATE_HOST_CONSOLE if template_host else "",
    }
    frontend = DOMAIN.format(
        name=f"{vcname}-fe",
        interfaces="\n".join(
            [
                IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:01:07"),
                IFACE.format(bridge="eth1", mac="7a:77:6e:40:01:08"),
            ]
        ),
        **host,
    )
    compute = DOMAIN.format(
        name=f"{vcname}-c",
        interfaces=IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:01:0a"),
        **host,
    )
    (vc / "vc-in.xml").write_text(vc_in_xml(driver, frontend, compute))
    with (repo / "vcdb.txt").open("a") as db:
        db.write(f"{vcname},{vcname}/vc-in.xml\n")


def count_appliance_launches(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """libguestfs made to launch its appliance through a wrapper that counts each launch.

    Returns the file the wrapper appends a line to per launch (absent: none), for the
    tests that prove a VC of seeded cloud images never needs the appliance.
    """
    launches = folder / "appliance-launches"
    wrapper = folder / "count-hv"
    wrapper.write_text(f'#!/bin/sh\necho launch >> "{launches}"\nexec qemu-system-x86_64 "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("LIBGUESTFS_HV", str(wrapper))
    return launches
