"""A worked example of a distro driver: the node's vc-out plus a login banner, before boot.

Images of this (made-up) distro configure themselves from /root/vc-out.xml, like
PRAGMA's Rocks images, and show /etc/motd at login. The driver's only disk work is
putting both files in place, in one libguestfs session.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.driver_api import NodePlan, StageContext, StageResult
from pragmash.vc.formats.vcout import node_vc_out


class MotdDriver:
    """Writes the node's vc-out at /root/vc-out.xml and an /etc/motd naming it before boot."""

    name = "motd_example"

    def __init__(self, *, timeout: float = 600.0) -> None:
        self.timeout = timeout

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, bytes | Path]:
        """What pre_boot writes, by guest path: kept apart so it can be tested without a disk.

        ``vc_out`` is the node's own vc-out file (``node_vc_out(ctx, node)``): the whole
        VC's for the frontend, the compute's own for a compute.
        """
        motd = f"{node.name}: {node.role} of a PRAGMA virtual cluster ({node.private_ip})\n"
        return {"/root/vc-out.xml": vc_out, "/etc/motd": motd.encode()}

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult("skipped", "nothing to prepare before the fix")

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult("skipped", "nothing to restore after the fix")

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        from pragmash.images.inject import inject_files

        files = self.guest_files(node, node_vc_out(ctx, node))
        log = ctx.temp_dir / f"{node.name}.inject.log"
        ctx.note(f"{node.name}: writing {', '.join(files)}")
        inject_files(disk, files, timeout=self.timeout, log_path=log, kvm_usable=ctx.kvm_usable)
        return StageResult("done", f"wrote {len(files)} files", products={"log": str(log)})


def distro_driver() -> MotdDriver:
    """What the registry calls (and what an entry point names)."""
    return MotdDriver()
