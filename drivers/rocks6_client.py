"""The ``rocks6_client`` distro driver: Rocks 6 images as pragma_boot's sites built them.

Rocks 6 guests configure themselves at boot from ``/root/vc-out.xml`` (the Rocks
``vc-out`` reader in the image sets hostname, addresses and DNS from it), so the
only disk work this driver does is putting that file in place before boot. Nothing
is needed around the fix: the stages say so instead of pretending to work.
"""

from __future__ import annotations

from .base import GuestFilesDriver


class Rocks6Client(GuestFilesDriver):
    """Puts vc-out.xml at /root/vc-out.xml on the image's first partition."""

    name = "rocks6_client"
    images = "rocks6 images"
    what = "vc-out.xml"


def distro_driver() -> Rocks6Client:
    """Entry point used by the registry."""
    return Rocks6Client()
