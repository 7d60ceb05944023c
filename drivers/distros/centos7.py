"""The ``centos7`` distro driver: CentOS 7 images with static network-scripts.

CentOS 7 configures interfaces from ``/etc/sysconfig/network-scripts/ifcfg-*``
(NetworkManager reads them too) and takes its default route and hostname from
``/etc/sysconfig/network`` and ``/etc/hostname``. Before boot this driver writes
those, ``/etc/resolv.conf`` and ``/root/vc-out.xml`` (one libguestfs appliance launch
for all the nodes of a ``boot`` step).
Interfaces are bound by ``HWADDR`` so the allocated MACs decide which is which.

CentOS images built for another hypervisor need their initramfs rebuilt with
virtio drivers: that is the fix stage's job (``fix all via virt-v2v``), and it
needs nothing from this driver around it.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.driver_api import NodePlan
from pragmash.drivers.distros.base import GuestFilesDriver
from pragmash.images.inject import GuestContent
from pragmash.images.nocloud import node_hostname as hostname
from pragmash.images.nocloud import node_interfaces
from pragmash.vc.formats.vcout import VcOut, read_vc_out

SCRIPTS = "/etc/sysconfig/network-scripts"


def ifcfg(device: str, mac: str, ip: str, prefix: int, gateway: str | None) -> str:
    """One ``ifcfg-DEVICE`` file: static, on at boot, bound to its MAC."""
    lines = [
        "# Written by pragmash from /root/vc-out.xml.",
        f"DEVICE={device}",
        f"HWADDR={mac}",
        "TYPE=Ethernet",
        "BOOTPROTO=none",
        "ONBOOT=yes",
        f"IPADDR={ip}",
        f"PREFIX={prefix}",
    ]
    if gateway:
        lines.append(f"GATEWAY={gateway}")
    return "\n".join(lines) + "\n"


def network_files(node: NodePlan, vc_out: VcOut) -> dict[str, bytes]:
    """The network configuration CentOS 7 reads at boot, by guest path."""
    files: dict[str, bytes] = {}
    gateway = None
    for iface in node_interfaces(node, vc_out):
        files[f"{SCRIPTS}/ifcfg-{iface.device}"] = ifcfg(
            iface.device, iface.mac, iface.ip, iface.prefix, iface.gateway
        ).encode()
        gateway = gateway or iface.gateway
    name = hostname(node, vc_out)
    network = ["NETWORKING=yes", f"HOSTNAME={name}"]
    if gateway:
        network.append(f"GATEWAY={gateway}")
    files["/etc/sysconfig/network"] = ("\n".join(network) + "\n").encode()
    files["/etc/hostname"] = (name + "\n").encode()
    resolv = [f"nameserver {vc_out.dns_ip}"]
    search = " ".join(s for s in (vc_out.dns_search, vc_out.dns_domain) if s)
    if search:
        resolv.insert(0, f"search {search}")
    files["/etc/resolv.conf"] = ("\n".join(resolv) + "\n").encode()
    return files


class Centos7(GuestFilesDriver):
    """Writes ifcfg files, the hostname and resolv.conf (and the node's vc-out) before boot."""

    name = "centos7"
    images = "CentOS 7 images"
    what = "network-scripts, hostname, resolv.conf and vc-out.xml"

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """Every file pre_boot puts into the node's disk, by guest path."""
        return dict(network_files(node, read_vc_out(vc_out)))


def distro_driver() -> Centos7:
    """Entry point used by the registry."""
    return Centos7()
