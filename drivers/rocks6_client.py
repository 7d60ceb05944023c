"""The ``rocks6_client`` distro driver: Rocks 6 images as pragma_boot's sites built them.

Rocks 6 guests configure themselves at boot from ``/root/vc-out.xml`` (the Rocks
``vc-out`` reader in the image sets hostname, addresses and DNS from it), so the
only disk work this driver does is putting that file in place before boot. Nothing
is needed around the fix: the stages say so instead of pretending to work.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.driver_api import LOGIN_PROMPT, NodePlan, StageContext, StageResult, UpTest
from pragmash.images.inject import GuestContent, inject_for_node
from pragmash.images.marker import marker_files_for


class Rocks6Client:
    """Puts vc-out.xml at /root/vc-out.xml on the image's first partition."""

    name = "rocks6_client"
    #: The image's own signs of life: its guest agent where installed, else the login
    #: prompt its getty prints on the serial console.
    up_tests = (UpTest("agent"), UpTest("console", LOGIN_PROMPT))
    guest_vc_out = "/root/vc-out.xml"

    def __init__(self, *, kvm_usable: bool = False, timeout: float = 600.0) -> None:
        self.kvm_usable = kvm_usable
        self.timeout = timeout

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult("skipped", "rocks6 images need no preparation before the fix")

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult("skipped", "rocks6 images need nothing restored after the fix")

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        files: dict[str, GuestContent] = {self.guest_vc_out: vc_out}
        marker = marker_files_for(node.up_tests)
        files.update(marker)
        return inject_for_node(
            node.name,
            disk,
            files,
            ctx,
            what="vc-out.xml" + (" and the PRAGMASH-UP unit" if marker else ""),
            timeout=self.timeout,
            kvm_usable=self.kvm_usable,
        )


def distro_driver() -> Rocks6Client:
    """Entry point used by the registry."""
    return Rocks6Client()
