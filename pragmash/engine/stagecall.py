"""Calling one driver stage: errors named by stage, skips said, the distro stages by name.

A driver is someone else's code (a bundled module, a site's script folder, a
package): an OSError from it must still end as a StepError that names the stage
(``vc_driver/pre_boot: …``), and a stage that skipped says so in the step's output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pragmash.driver_api import BatchPreBoot, DistroDriver, NodePlan, StageContext, StageResult
from pragmash.engine.interpreter import StepReporter
from pragmash.errors import PragmashError, StepError
from pragmash.images.inject import MAX_DRIVES


def call_stage(
    stage: str, reporter: StepReporter, call: Callable[..., StageResult], *args: Any
) -> StageResult:
    """Run one driver stage; an OSError becomes a StepError naming the stage."""
    try:
        result = call(*args)
    except (PragmashError, KeyboardInterrupt):
        raise
    except OSError as err:
        raise StepError(f"{stage}: {err}", stage=stage) from err
    if result.outcome == "skipped" and result.message:
        reporter.note(f"{stage}: skipped: {result.message}")
    return result


def call_distro_stage(
    op: str,
    distro: DistroDriver,
    node: NodePlan,
    disk: Path,
    vc_out: Path,
    ctx: StageContext,
    reporter: StepReporter,
) -> StageResult:
    """``vc_driver/pre_fix``, ``post_fix`` or ``pre_boot`` called directly on one node."""
    if op == "pre_fix":
        return call_stage("vc_driver/pre_fix", reporter, distro.pre_fix, node, disk, ctx)
    if op == "post_fix":
        return call_stage("vc_driver/post_fix", reporter, distro.post_fix, node, disk, ctx)
    return call_stage("vc_driver/pre_boot", reporter, distro.pre_boot, node, disk, vc_out, ctx)


def call_distro_stages(
    op: str,
    distro: DistroDriver,
    nodes: Sequence[tuple[NodePlan, Path]],
    vc_out: Path,
    ctx: StageContext,
    reporter: StepReporter,
) -> None:
    """A distro stage called directly on several nodes (``vc_driver/pre_boot compute``).

    ``pre_boot`` on a driver that can prepare many disks at once goes in one call per
    ``MAX_DRIVES`` nodes (one appliance launch), as ``boot`` does; everything else,
    and every other driver, is called node by node.
    """
    if op == "pre_boot" and isinstance(distro, BatchPreBoot) and len(nodes) > 1:
        for first in range(0, len(nodes), MAX_DRIVES):
            chunk = nodes[first : first + MAX_DRIVES]
            try:
                results = distro.pre_boot_many(chunk, vc_out, ctx)
            except OSError as err:
                raise StepError(f"vc_driver/pre_boot: {err}", stage="vc_driver/pre_boot") from err
            said = {(r.outcome, r.message) for r in results.values() if r.message}
            for outcome, message in sorted(said):  # one line for the chunk, not one per node
                skipped = "skipped: " if outcome == "skipped" else ""
                reporter.note(f"vc_driver/pre_boot: {skipped}{message}")
        return
    for node, disk in nodes:
        call_distro_stage(op, distro, node, disk, vc_out, ctx, reporter)
