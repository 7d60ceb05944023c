"""The ``ubuntu_cloud`` distro driver: Ubuntu cloud images, configured before they boot.

Ubuntu cloud images read their network from netplan (``/etc/netplan/*.yaml``) and
would let cloud-init overwrite it from a metadata service that a PRAGMA site does
not run (the seed's "no DHCP in the hosting environment"). So before boot this
driver writes (one libguestfs appliance launch for all the nodes of a ``boot`` step):

* ``/etc/netplan/50-pragmash.yaml``: the node's static addresses from vc-out.xml,
  matched by MAC so interface naming (``ens3`` or ``eth0``) does not matter;
* ``/etc/cloud/cloud.cfg.d/99-pragmash.cfg``: tells cloud-init to leave the network
  alone and not wait for a datasource;
* ``/etc/hostname`` and ``/root/vc-out.xml`` (PRAGMA images read the latter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pragmash.driver_api import NodePlan
from pragmash.images.inject import GuestContent
from pragmash.vc.vcout import VcOut, read_vc_out

from .base import GuestFilesDriver

NETPLAN_PATH = "/etc/netplan/50-pragmash.yaml"
CLOUD_CFG_PATH = "/etc/cloud/cloud.cfg.d/99-pragmash.cfg"

CLOUD_CFG = """\
# Written by pragmash: the network comes from /etc/netplan/50-pragmash.yaml.
network: {config: disabled}
datasource_list: [None]
"""


@dataclass(frozen=True)
class NodeInterface:
    """One interface of a node as vc-out.xml decided it (any distro writes these)."""

    device: str
    mac: str
    ip: str
    prefix: int
    gateway: str | None


def _prefix(netmask: str) -> int:
    return sum(bin(int(octet)).count("1") for octet in netmask.split("."))


def node_interfaces(node: NodePlan, vc_out: VcOut) -> list[NodeInterface]:
    """A node's interfaces: private first, then (frontend only) public with the site gateway.

    Computes route through the frontend's private address, as Rocks clusters do.
    """
    fe = vc_out.frontend
    private_prefix = _prefix(fe.private_netmask)
    if node.role == "frontend":
        return [
            NodeInterface("eth0", node.macs[0], fe.private_ip, private_prefix, None),
            NodeInterface(
                "eth1",
                node.macs[1] if len(node.macs) > 1 else fe.public_mac,
                fe.public_ip,
                _prefix(fe.public_netmask),
                fe.public_gw,
            ),
        ]
    return [NodeInterface("eth0", node.macs[0], node.private_ip, private_prefix, fe.private_ip)]


def netplan_yaml(node: NodePlan, vc_out: VcOut) -> str:
    """netplan v2 for the node: static addresses, DNS from the site, no DHCP."""
    lines = [
        f"# Written by pragmash for {node.name}; the values come from /root/vc-out.xml.",
        "network:",
        "  version: 2",
        "  ethernets:",
    ]
    for iface in node_interfaces(node, vc_out):
        lines += [
            f"    {iface.device}:",
            "      match:",
            f'        macaddress: "{iface.mac}"',
            f"      set-name: {iface.device}",
            "      dhcp4: false",
            f"      addresses: [{iface.ip}/{iface.prefix}]",
        ]
        if iface.gateway:
            lines += ["      routes:", f"        - {{to: default, via: {iface.gateway}}}"]
        search = [s for s in (vc_out.dns_search, vc_out.dns_domain) if s]
        lines += [
            "      nameservers:",
            f"        addresses: [{vc_out.dns_ip}]",
            f"        search: [{', '.join(search)}]",
        ]
    return "\n".join(lines) + "\n"


def hostname(node: NodePlan, vc_out: VcOut) -> str:
    """The frontend takes its public FQDN (as Rocks frontends do); computes their own name."""
    return vc_out.frontend.public_fqdn if node.role == "frontend" else node.name


class UbuntuCloud(GuestFilesDriver):
    """Writes netplan, a cloud-init override, the hostname and vc-out.xml before boot."""

    name = "ubuntu_cloud"
    images = "Ubuntu cloud images"
    what = "netplan, cloud-init override, hostname and vc-out.xml"

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """Every file pre_boot puts into the node's disk, by guest path."""
        decided = read_vc_out(vc_out)
        return {
            NETPLAN_PATH: netplan_yaml(node, decided).encode(),
            CLOUD_CFG_PATH: CLOUD_CFG.encode(),
            "/etc/hostname": (hostname(node, decided) + "\n").encode(),
        }


def distro_driver() -> UbuntuCloud:
    """Entry point used by the registry."""
    return UbuntuCloud()
