"""The ``rocks6_client`` distro driver: Rocks 6 images as pragma_boot's sites built them.

Rocks 6 guests configure themselves at boot from ``/root/vc-out.xml``: PRAGMA's
vc-out-parser in the image sets hostname, interfaces (by MAC), /etc/hosts, DNS, root's
key and (on the frontend) /tmp/machinefile from it. So the only disk work this
driver does is putting each node's own vc-out file there before boot: the frontend
the whole VC's, each compute its own. Nothing is needed around the fix: the stages
say so instead of pretending to work.
"""

from __future__ import annotations

from pragmash.drivers.distros.base import GuestFilesDriver


class Rocks6Client(GuestFilesDriver):
    """Puts each node's vc-out at /root/vc-out.xml on the image's first partition."""

    name = "rocks6_client"
    images = "rocks6 images"
    what = "vc-out.xml"


def distro_driver() -> Rocks6Client:
    """Entry point used by the registry."""
    return Rocks6Client()
