"""The ``cloud_init`` distro driver: cloud images that configure themselves at first boot.

Every current cloud image (Debian genericcloud, Ubuntu, Rocky, Alma, Fedora) runs
cloud-init, which reads a NoCloud seed: a small volume labelled ``cidata`` holding
``meta-data``, ``user-data`` and ``network-config``. This driver delivers a node's
settings that way (``delivery = "seed"``): before boot each node gets its own seed,
written on the head node in Python (:mod:`pragmash.images.fatvolume`) and attached read-only; no libguestfs
appliance starts and nothing is written into the image, whose overlay stays
untouched until the guest boots. What the seed holds is in docs/drivers.md ("What a
seeded node receives"); :mod:`pragmash.images.nocloud` writes it.

A site whose images of this kind lack cloud-init says ``[delivery] driver.cloud_init =
"disk"``: the same files (vc-out.xml, the hostname) then go into the disk as the other
bundled drivers do, and the image must configure its own network from vc-out.xml.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.driver_api import NodePlan
from pragmash.drivers.distros.base import GuestFilesDriver
from pragmash.images.inject import GuestContent
from pragmash.images.nocloud import node_hostname
from pragmash.vc.formats.vcout import read_vc_out


class CloudInit(GuestFilesDriver):
    """A NoCloud seed per node: network, hostname, keys and vc-out.xml, read by cloud-init."""

    name = "cloud_init"
    images = "cloud images"
    what = "hostname and vc-out.xml"
    delivery = "seed"  # the site may say "disk" ([delivery])

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """Written into the disk (beside its vc-out) when the site chose ``disk`` for
        images without cloud-init."""
        hostname = node_hostname(node, read_vc_out(vc_out))
        return {"/etc/hostname": (hostname + "\n").encode()}


def distro_driver() -> CloudInit:
    """Entry point used by the registry."""
    return CloudInit()
