"""``fix TARGETS via METHOD``: each distinct image fixed once, every node an overlay on it.

pragma_boot's ``fix_driver`` converted "the VM image"; a VC's frontend and computes
usually share one. So the targets are grouped by the image their disk comes from,
each image goes through pre_fix → fix → post_fix once (or not at all, when the
fixed-image cache already holds it: :mod:`pragmash.images.basecache`), and each
node's disk becomes a copy-on-write overlay on the fixed base. pre_fix and post_fix
get the first node of the group: they prepare the image, not a node.

Re-running a fix (``resume``, ``retry``) is cheap and safe: a node already on a base
made by the same method and driver is kept; a node staged before the fix (an
overlay on the unfixed image) gets a new overlay on the fixed base. Under
``staging = "copy"`` a node's full copy does not say what it was copied from, so a
repeated fix copies the (cached) base again.

With a site's own VE driver folder as the engine (``[engine] driver = "scripts"``),
the engine's fix is the site's: ``via virt-v2v`` calls its ``fix_driver`` (the seed's
"ve_driver/fix_driver (use virt-v2v)") in pragmash's virt-v2v's place, as pragma_boot
v0.2 did: on the disk pre_fix was given, in their shared working folder
(:class:`SiteFix`). The base it leaves is cached like any other, keyed by the script's
digest too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pragmash import stages
from pragmash.driver_api import DistroDriver, FixIdentity, NodePlan, StageContext, StageResult
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.errors import StepError
from pragmash.images.basecache import FixedBase, FixKey, base_meta, fixed_base, is_fixed_base
from pragmash.images.fixing import METHODS, convert_v2v, customize
from pragmash.images.staging import (
    Mode,
    backing_of,
    content_digest,
    decompress_cached,
    image_info,
    stage_image,
    standalone_qcow2,
)
from pragmash.images.tools import accel_words

CallStage = Callable[..., StageResult]  # (stage name, driver method, *args) -> result

#: Where a site's fix_driver is given its disk, inside the fix's work folder (its TEMP).
SITE_FIX_DISK = "image.qcow2"


class SiteFix(Protocol):
    """A site's own engine's fix, done in virt-v2v's place (a script engine's fix_driver)."""

    def fix_identity(self) -> str: ...

    def fix_driver(
        self, node: NodePlan, disk: Path, temp: Path, ctx: StageContext
    ) -> StageResult: ...


def fix_identity(distro: DistroDriver) -> str:
    """What the driver's pre_fix/post_fix do, for the cache key; its class when it won't say."""
    if isinstance(distro, FixIdentity):
        return distro.fix_identity()
    cls = type(distro)
    return f"{cls.__module__}.{cls.__qualname__}"


def has_fix_hooks(distro: DistroDriver) -> bool:
    """Whether pre_fix/post_fix may change an image (assumed, unless the driver says not)."""
    return bool(distro.fix_hooks) if isinstance(distro, FixIdentity) else True


@dataclass
class FixReport:
    """What a fix step did: each node's disk now, the bases used, and a summary."""

    disks: dict[str, Path] = field(default_factory=dict)
    bases: list[FixedBase] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def conversions(self) -> int:
        return sum(1 for b in self.bases if b.made)


@dataclass
class ImageFixer:
    """Fixes a step's nodes image by image for one VC."""

    distro: DistroDriver
    cache_dir: Path
    folder: VcFolder  # the VC's: its nodes' disks are staged there, the fix logs kept
    staging: Mode
    ctx: StageContext
    call_stage: CallStage
    template_source: Callable[[NodePlan], Path]
    is_running: Callable[[str], bool]
    timeout: float = 3600.0
    #: the site's engine's own fix, which ``via virt-v2v`` then means (None: pragmash's)
    site_fix: SiteFix | None = None

    def _site_fix(self, method: str) -> SiteFix | None:
        return self.site_fix if method == "virt-v2v" else None

    def fix(self, nodes: Sequence[NodePlan], method: str) -> FixReport:
        if method not in METHODS:
            raise StepError(
                f"unknown fix method {method!r}: expected one of {', '.join(METHODS)}",
                stage=stages.FIX,
            )
        report = FixReport()
        identity = fix_identity(self.distro)
        site_fix = self._site_fix(method)
        if site_fix is not None:
            identity += f"; {site_fix.fix_identity()}"
        if method == "none" and not has_fix_hooks(self.distro):
            for node in nodes:
                report.disks[node.name] = self._plain(node)
            report.lines.append(
                f"nothing to fix: method none, and {self.distro.name} has no pre_fix/post_fix"
            )
            return report
        groups: dict[Path, list[NodePlan]] = {}
        for node in nodes:
            kept = self._already_fixed(node, method, identity)
            if kept is not None:
                report.disks[node.name] = kept
                continue
            groups.setdefault(self._source_of(node), []).append(node)
        if not groups:
            report.lines.append(f"every node is already on a base fixed via {method}")
        for source, members in groups.items():
            base = self._base_for(source, members[0], method, identity)
            report.bases.append(base)
            for node in members:
                report.disks[node.name] = self._overlay(node, base.path)
            how = (
                "fixed now by the site's fix_driver"
                if base.made and site_fix is not None
                else f"fixed now, appliance under {accel_words(self.ctx.kvm_usable)}"
                if base.made
                else f"from the cache after waiting {base.waited:.0f} s"
                if base.waited >= 1
                else "from the cache"
            )
            report.lines.append(
                f"{source.name} via {method}: {how}, for {', '.join(n.name for n in members)}"
            )
        return report

    # -- which image a node's fix starts from ---------------------------------------------

    def _staged(self, node: NodePlan) -> Path | None:
        path = self.folder.staged(node.name, self.staging)
        return path if path.is_file() else None

    def _fixed_base_of(self, node: NodePlan) -> Path | None:
        """The cached base the node's overlay sits on, if it sits on one."""
        staged = self._staged(node)
        if staged is None or self.staging != "overlay":
            return None
        backing = backing_of(staged)
        return backing if backing is not None and is_fixed_base(backing, self.cache_dir) else None

    def _already_fixed(self, node: NodePlan, method: str, identity: str) -> Path | None:
        """The node's disk when this very fix was done to it already, else None."""
        staged = self._staged(node)
        if staged is None:
            return None
        base = self._fixed_base_of(node)
        if base is not None:
            meta = base_meta(base)
            if meta.get("method") == method and meta.get("driver_identity") == identity:
                return staged
            return None
        if self.staging == "overlay" and backing_of(staged) is None:
            info = image_info(staged)
            if info.get("format") == "qcow2":
                # a standalone qcow2 in the overlay's place: a disk an earlier version of
                # pragmash fixed node by node; it is this node's fixed disk, kept as it is
                return staged
        return None

    def _source_of(self, node: NodePlan) -> Path:
        """A second fix starts from the first one's base; a first fix from the repository."""
        return self._fixed_base_of(node) or self.template_source(node)

    # -- one base per image -------------------------------------------------------------

    def _base_for(self, source: Path, first: NodePlan, method: str, identity: str) -> FixedBase:
        if not source.is_file():
            raise StepError(
                f"disk image {source} not found",
                stage=stages.STAGE,
                hint="check the <source file=...> of the vc-in.xml, relative to its folder",
            )
        if is_fixed_base(source, self.cache_dir):
            image_id = f"fixed:{source.stem}"  # a base's key already names its content
        else:
            image_id = content_digest(source, self.cache_dir, self.ctx.progress)
        key = FixKey(image_id, method, self.distro.name, identity)

        def make(work: Path) -> Path:
            return self._make(source, first, method, work)

        return fixed_base(
            self.cache_dir,
            key,
            source,
            make,
            owner=f"pid {os.getpid()} (VC {self.ctx.vcname})",
            progress=self.ctx.progress,
            cancelled=self.ctx.cancelled,
        )

    def _make(self, source: Path, first: NodePlan, method: str, work: Path) -> Path:
        """pre_fix → fix → post_fix in the work folder; the fixed disk it returns is standalone."""
        base = source
        if source.name.endswith(".gz"):
            base = decompress_cached(source, self.cache_dir, self.ctx.progress)
        site_fix = self._site_fix(method)
        if site_fix is not None:
            # pragma_boot v0.2's prepareImage: the image copied into TEMP (here the work
            # folder), pre_fix_driver DISK, fix_driver TEMP/vc-in.xml IFACES TEMP (the
            # XML naming DISK), post_fix_driver DISK: one path, fixed where it is
            self.ctx.note(f"fixing {source.name} with the site's fix_driver")
            fixed = standalone_qcow2(base, work / SITE_FIX_DISK)
            self.call_stage(stages.PRE_FIX, self.distro.pre_fix, first, fixed, self.ctx)
            self.call_stage(stages.FIX, site_fix.fix_driver, first, fixed, work, self.ctx)
            self.call_stage(stages.POST_FIX, self.distro.post_fix, first, fixed, self.ctx)
            return fixed
        log = self.folder.fix_log(source)
        self.ctx.note(
            f"fixing {source.name} via {method}, appliance under "
            f"{accel_words(self.ctx.kvm_usable)} (log: {log})"
        )

        def on_line(line: str) -> None:
            self.ctx.progress(0, None, line[-80:])

        if method == "virt-v2v":
            # pre_fix writes into an overlay: virt-v2v reads it and writes a new disk,
            # which then takes the overlay's path, so post_fix is given the very path
            # pre_fix was (pragma_boot's drivers were, and some rely on it)
            disk = stage_image(base, work, "input", mode="overlay", cache_dir=self.cache_dir)
            self.call_stage(stages.PRE_FIX, self.distro.pre_fix, first, disk, self.ctx)
            converted = convert_v2v(
                disk,
                work / "out",
                out_format="qcow2",
                timeout=self.timeout,
                log_path=log,
                on_line=on_line,
                kvm_usable=self.ctx.kvm_usable,
            )
            os.replace(converted, disk)
            fixed = disk
        else:
            fixed = standalone_qcow2(base, work / "image.qcow2")
            self.call_stage(stages.PRE_FIX, self.distro.pre_fix, first, fixed, self.ctx)
            if method == "virt-customize":
                customize(
                    fixed,
                    timeout=self.timeout,
                    log_path=log,
                    on_line=on_line,
                    kvm_usable=self.ctx.kvm_usable,
                )
        self.call_stage(stages.POST_FIX, self.distro.post_fix, first, fixed, self.ctx)
        return fixed

    # -- node disks -----------------------------------------------------------------------

    def _plain(self, node: NodePlan) -> Path:
        """The node's disk staged from its repository image (nothing to fix)."""
        staged = self._staged(node)
        if staged is not None:
            return staged
        return stage_image(
            self.template_source(node),
            self.folder.disks,
            node.name,
            mode=self.staging,
            cache_dir=self.cache_dir,
            progress=self.ctx.progress,
        )

    def _overlay(self, node: NodePlan, base: Path) -> Path:
        """The node's own disk on the fixed base; a disk staged before the fix is replaced."""
        staged = self._staged(node)
        if staged is not None:
            if self.staging == "overlay" and backing_of(staged) == base:
                return staged
            if self.is_running(node.name):
                raise StepError(
                    f"{node.name} is running on {staged}: its disk cannot be replaced by one "
                    "on the fixed image",
                    stage=stages.FIX,
                    hint="fix before boot, or shut the node down first",
                )
            self.ctx.note(f"{node.name}: its disk staged before the fix is replaced")
            staged.unlink()
        return stage_image(
            base,
            self.folder.disks,
            node.name,
            mode=self.staging,
            cache_dir=self.cache_dir,
            progress=self.ctx.progress,
        )
