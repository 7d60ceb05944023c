"""The ``ubuntu_cloud`` distro driver: Ubuntu cloud images.

Ubuntu cloud images run cloud-init, so by default this driver is the ``cloud_init``
driver: each node gets a NoCloud seed (network, hostname, keys, vc-out.xml) and no
appliance starts. For Ubuntu images without cloud-init (or whose cloud-init a site
wants left alone), ``[delivery] driver.ubuntu_cloud = "disk"`` keeps the behaviour it
had before seeds: Ubuntu reads its network from netplan (``/etc/netplan/*.yaml``), so
before boot the driver writes (one libguestfs appliance launch for all the nodes of a
``boot`` step):

* ``/etc/netplan/50-pragmash.yaml``: the node's static addresses from vc-out.xml,
  matched by MAC so interface naming (``ens3`` or ``eth0``) does not matter;
* ``/etc/cloud/cloud.cfg.d/99-pragmash.cfg``: tells cloud-init to leave the network
  alone and not wait for a datasource;
* ``/etc/hostname`` and ``/root/vc-out.xml`` (PRAGMA images read the latter).
"""

from __future__ import annotations

from pathlib import Path

from pragmash.driver_api import NodePlan
from pragmash.drivers.distros.cloud_init import CloudInit
from pragmash.images.inject import GuestContent
from pragmash.images.nocloud import node_hostname, node_interfaces
from pragmash.vc.formats.vcout import VcOut, read_vc_out

NETPLAN_PATH = "/etc/netplan/50-pragmash.yaml"
CLOUD_CFG_PATH = "/etc/cloud/cloud.cfg.d/99-pragmash.cfg"

CLOUD_CFG = """\
# Written by pragmash: the network comes from /etc/netplan/50-pragmash.yaml.
network: {config: disabled}
datasource_list: [None]
"""


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


hostname = node_hostname  # where earlier code and tests import it from


class UbuntuCloud(CloudInit):
    """A NoCloud seed; with ``disk`` delivery netplan, a cloud-init override, the hostname
    and vc-out.xml written before boot."""

    name = "ubuntu_cloud"
    images = "Ubuntu cloud images"
    what = "netplan, cloud-init override, hostname and vc-out.xml"

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """Every file pre_boot puts into the node's disk (``disk`` delivery), by guest path."""
        decided = read_vc_out(vc_out)
        return {
            NETPLAN_PATH: netplan_yaml(node, decided).encode(),
            CLOUD_CFG_PATH: CLOUD_CFG.encode(),
            "/etc/hostname": (hostname(node, decided) + "\n").encode(),
        }


def distro_driver() -> UbuntuCloud:
    """Entry point used by the registry."""
    return UbuntuCloud()
