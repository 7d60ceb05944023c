"""A VC's own folder and what pragmash keeps in it, named in one place.

Under the site's temp folder each VC has a folder: its staged disks (``disks/``),
its nodes' NoCloud seed volumes (``seeds/``), the vc-out.xml its allocation wrote,
its nodes' console logs and the fix tools' logs. A run, ``scale``, ``start``, ``clean`` and the image cache all find these
files; :class:`VcFolder` is the one place that says where they are, so no caller
spells a path out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pragmash import stages
from pragmash.driver_api import NodePlan
from pragmash.errors import StepError
from pragmash.images.nocloud import seed_volume_path
from pragmash.images.staging import Mode, stage_image, staged_path
from pragmash.vc.config.site import SiteConfig

Progress = Callable[[float, float | None, str], None]


@dataclass(frozen=True)
class VcFolder:
    """The folder of one VC: ``<site temp folder>/<vcname>``."""

    path: Path

    @classmethod
    def of(cls, site: SiteConfig, vcname: str) -> VcFolder:
        return cls(site.temp_dir / vcname)

    @property
    def disks(self) -> Path:
        """Where the nodes' own disks are staged (overlays or copies)."""
        return self.path / "disks"

    @property
    def vc_out(self) -> Path:
        """The vc-out.xml the VC's allocation wrote (the whole VC's)."""
        return self.path / "vc-out.xml"

    def console_log(self, node: str) -> Path:
        """Where QEMU writes a node's serial console (on a host sharing our disks)."""
        return self.path / f"{node}.console.log"

    def fix_log(self, image: Path) -> Path:
        """The log of fixing one repository image (virt-v2v, virt-customize)."""
        return self.path / f"fix-{image.name.split('.')[0]}.log"

    def staged(self, node: str, mode: Mode) -> Path:
        """Where a node's own first disk is staged under ``mode``."""
        return staged_path(self.disks, node, mode)

    def seed(self, node: str) -> Path:
        """Where a node's NoCloud seed volume (its cloud-init settings) is written."""
        return seed_volume_path(self.path, node)

    def holds(self, disk: Path) -> bool:
        """Whether ``disk`` is a disk staged here (not a repository image)."""
        return disk.parent == self.disks

    def node_files(self, node: str) -> list[Path]:
        """Every file a node leaves here: its staged disk (either mode), seed volume and
        console log."""
        return [
            self.staged(node, "overlay"),
            self.staged(node, "copy"),
            self.seed(node),
            self.console_log(node),
        ]

    def make(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def stage(self, node: NodePlan, *, mode: Mode, cache_dir: Path, progress: Progress) -> Path:
        """The node's own first disk, staged here on first need (a COW overlay or a copy).

        Returns the disk; the caller records it in the node's plan (the run's nodes
        have one owner, :meth:`pragmash.engine.run.runtime.Runtime.set_disks`).
        """
        current = Path(node.disks[0]) if node.disks else None
        if current is None:
            raise StepError(f"{node.name} has no disk in its vc-in template", stage=stages.STAGE)
        if self.holds(current):
            return current
        return stage_image(
            current, self.disks, node.name, mode=mode, cache_dir=cache_dir, progress=progress
        )


def with_disks(node: NodePlan, disks: Sequence[str | Path]) -> NodePlan:
    """The node's plan on ``disks``: the one place a node's disks are changed (staged,
    fixed, reloaded), so a plan's disks are always a tuple of path strings."""
    return dataclasses.replace(node, disks=tuple(str(d) for d in disks))


def with_first_disk(node: NodePlan, disk: Path) -> NodePlan:
    """The node's plan with its first disk now ``disk`` (its own staged one)."""
    return with_disks(node, (disk, *node.disks[1:]))
