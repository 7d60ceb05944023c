"""The skeleton the bundled distro drivers share: nothing around the fix, files before boot.

A PRAGMA distro driver mostly says *which files* a node needs in its disk before it
boots (network configuration, a hostname); writing them is the same for every
distro: all the nodes of a ``boot`` step in one libguestfs appliance launch, each
node's own vc-out file at ``/root/vc-out.xml`` (the frontend the whole VC's, each
compute its own: :func:`pragmash.vc.formats.vcout.node_vc_out`), as PRAGMA images' vc-out-parser
reads it. So a driver subclasses :class:`GuestFilesDriver` and writes
:meth:`~GuestFilesDriver.guest_files`; pre_fix and post_fix say plainly that the
distro needs nothing around the fix, and the fixed-image cache knows they change
nothing (``fix_hooks = False``). The appliance uses KVM where the run's engine judged
it usable (``ctx.kvm_usable``) and TCG elsewhere.

A node planned with a seed (``node.seed``: the site or the driver chose ``seed``
delivery) gets the same files another way, with no appliance at all: a NoCloud
``cidata`` volume whose user-data has cloud-init write them at first boot
(:meth:`~GuestFilesDriver.seed_files`, :meth:`~GuestFilesDriver.cloud_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pragmash import outcomes
from pragmash.driver_api import (
    LOGIN_PROMPT,
    NodePlan,
    StageContext,
    StageResult,
    UpTest,
)
from pragmash.images.inject import GuestContent, InjectJob, inject_for_nodes
from pragmash.images.marker import marker_files_for
from pragmash.images.nocloud import (
    Seed,
    instance_nonce,
    node_seed,
    read_cloud_config,
    write_seed,
)
from pragmash.vc.formats.vcout import node_vc_out, read_vc_out, write_vc_out

GUEST_VC_OUT = "/root/vc-out.xml"


class GuestFilesDriver:
    """A distro driver whose only disk work is putting files into each node before boot.

    Subclasses set ``name`` (the ``<driver>`` of vc-in.xml), ``images`` (how the
    messages name the distro's images) and ``what`` (how they name the files), and
    define :meth:`guest_files`. Every node also gets its own vc-out file at
    ``/root/vc-out.xml``.
    """

    name = "guest_files"
    images = "these images"
    what = "vc-out.xml"
    partition = "/dev/sda1"  # the / file system, as the disk alone would show it
    fix_hooks = False  # pre_fix and post_fix leave the image as it is
    #: The image's own signs of life: its guest agent where installed, else the login
    #: prompt its getty prints on the serial console.
    up_tests: tuple[UpTest, ...] = (UpTest("agent"), UpTest("console", LOGIN_PROMPT))

    def __init__(self, *, timeout: float = 600.0) -> None:
        self.timeout = timeout

    def guest_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """The files pre_boot puts into the node's disk besides its vc-out, by guest path.

        ``vc_out`` is the whole VC's vc-out.xml, whatever the node boots with.
        """
        return {}

    def seed_files(self, node: NodePlan, vc_out: Path) -> dict[str, GuestContent]:
        """The files a seeded node receives through cloud-init's ``write_files`` besides
        its vc-out: cloud-init configures the network, hostname and keys itself (from the
        seed's network-config and user-data), so none by default."""
        return {}

    def cloud_config(self, node: NodePlan, vc_out: Path) -> dict[str, Any]:
        """cloud-config keys this driver adds to a seeded node's user-data (none)."""
        return {}

    def fix_identity(self) -> str:
        """What pre_fix/post_fix do, for the fixed-image cache's key: nothing, in any version."""
        return f"{self.name}: pre_fix and post_fix change nothing"

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult(outcomes.SKIPPED, f"{self.images} need no preparation before the fix")

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return StageResult(outcomes.SKIPPED, f"{self.images} need nothing restored after the fix")

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        return self.pre_boot_many([(node, disk)], vc_out, ctx)[node.name]

    def pre_boot_many(
        self, nodes: Sequence[tuple[NodePlan, Path]], vc_out: Path, ctx: StageContext
    ) -> dict[str, StageResult]:
        """Every node's files into its disk, in one appliance launch for all of them;
        seeded nodes get their seed volume instead (no appliance).

        Where the VC's ``up`` tests include ``marker``, the PRAGMASH-UP boot unit goes in too.
        """
        results = self.seed_many([(n, d) for n, d in nodes if n.seed is not None], vc_out, ctx)
        jobs = [
            InjectJob(
                node.name,
                disk,
                {
                    **self.guest_files(node, vc_out),
                    GUEST_VC_OUT: own_vc_out(node, vc_out, ctx),
                    **marker_files_for(node.up_tests),
                },
                self.partition,
                node.authorized_keys,
            )
            for node, disk in nodes
            if node.seed is None
        ]
        marker = any(marker_files_for(node.up_tests) for node, _ in nodes)
        results.update(
            inject_for_nodes(
                jobs,
                ctx,
                what=self.what + (" and the PRAGMASH-UP unit" if marker else ""),
                timeout=self.timeout,
                kvm_usable=ctx.kvm_usable,
            )
        )
        return results

    def seed_many(
        self, nodes: Sequence[tuple[NodePlan, Path]], vc_out: Path, ctx: StageContext
    ) -> dict[str, StageResult]:
        """Each node's NoCloud seed volume at ``node.seed.path``, its own vc-out in it:
        written on the head node by :mod:`pragmash.images.fatvolume`, the disk untouched."""
        if not nodes:
            return {}
        decided = read_vc_out(vc_out)
        nonce = instance_nonce(ctx.temp_dir)
        recipe_configs: dict[str, dict[str, Any]] = {}
        seeds: list[tuple[NodePlan, Seed]] = []
        for node, _disk in nodes:  # the contents: Python, cheap, in order
            assert node.seed is not None
            extra = self.cloud_config(node, vc_out)
            added = node.seed.cloud_config
            if added:
                if added not in recipe_configs:
                    recipe_configs[added] = read_cloud_config(Path(added))
                extra = _merged(extra, recipe_configs[added])
            files = {
                **self.seed_files(node, vc_out),
                GUEST_VC_OUT: own_vc_out(node, vc_out, ctx),
                **marker_files_for(node.up_tests),
            }
            seeds.append(
                (node, node_seed(node, decided, f"{node.name}-{nonce}", files, extra=extra))
            )
        # the volumes: written in Python (fatvolume), a fraction of a millisecond each
        results: dict[str, StageResult] = {}
        for done, (node, seed) in enumerate(seeds):
            write_seed(Path(seed_path(node)), seed)
            ctx.progress(done + 1, len(seeds), f"made {node.name}'s NoCloud seed")
            results[node.name] = StageResult(
                outcomes.DONE,
                "NoCloud seed made (meta-data, user-data, network-config; no appliance)",
                products={"seed": seed_path(node)},
            )
        ctx.progress(len(nodes), len(nodes), "seeds made")
        return results  # in the nodes' order


def seed_path(node: NodePlan) -> str:
    """Where ``node``'s seed volume goes (its plan names it: a seeded node)."""
    assert node.seed is not None
    return node.seed.path


def own_vc_out(node: NodePlan, vc_out: Path, ctx: StageContext) -> Path:
    """The vc-out file ``node`` boots with, beside ``vc_out`` (the whole VC's).

    A VC allocated before computes had files of their own has only the whole VC's:
    theirs are written from it then, so resuming such a run still boots.
    """
    own = node_vc_out(ctx, node)
    if not own.is_file() and Path(vc_out).is_file():
        write_vc_out(read_vc_out(vc_out), vc_out)
    return own


def _merged(driver: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe's cloud-config over the driver's; their write_files and runcmd both kept."""
    out = {**driver, **recipe}
    for key in ("write_files", "runcmd", "packages"):
        if key in driver and key in recipe:
            out[key] = [*driver[key], *recipe[key]]
    return out
