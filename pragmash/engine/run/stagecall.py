"""Calling one driver stage: errors named by stage, skips said, the distro stages by name.

A driver is someone else's code (a bundled module, a site's script folder, a
package): an OSError from it must still end as a StepError that names the stage
(``vc_driver/pre_boot: …``), and a stage that skipped says so in the step's output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pragmash import outcomes, stages
from pragmash.driver_api import BatchPreBoot, DistroDriver, NodePlan, StageContext, StageResult
from pragmash.engine.run.interpreter import StepReporter
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
    if result.outcome == outcomes.SKIPPED and result.message:
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
        return call_stage(stages.PRE_FIX, reporter, distro.pre_fix, node, disk, ctx)
    if op == "post_fix":
        return call_stage(stages.POST_FIX, reporter, distro.post_fix, node, disk, ctx)
    return call_stage(stages.PRE_BOOT, reporter, distro.pre_boot, node, disk, vc_out, ctx)


def pre_boot_in_chunks(
    distro: BatchPreBoot,
    pairs: Sequence[tuple[NodePlan, Path]],
    vc_out: Path,
    ctx: StageContext,
    reporter: StepReporter,
    preparing: Callable[[Sequence[tuple[NodePlan, Path]]], None] = lambda _chunk: None,
) -> Iterator[tuple[Sequence[tuple[NodePlan, Path]], dict[str, StageResult]]]:
    """``pre_boot`` for many nodes: one call (one appliance launch) per ``MAX_DRIVES`` disks.

    Yields each chunk with its results once its disks are ready, so ``boot`` starts
    its nodes while the next chunk is prepared; ``preparing`` hears of a chunk just before its call. Says
    one line per distinct message of a chunk (a skip as a skip), not one per node.
    """
    for first in range(0, len(pairs), MAX_DRIVES):
        chunk = pairs[first : first + MAX_DRIVES]
        preparing(chunk)
        try:
            results = distro.pre_boot_many(chunk, vc_out, ctx)
        except OSError as err:
            raise StepError(f"{stages.PRE_BOOT}: {err}", stage=stages.PRE_BOOT) from err
        said = {(r.outcome, r.message) for r in results.values() if r.message}
        for outcome, message in sorted(said):
            skipped = "skipped: " if outcome == outcomes.SKIPPED else ""
            reporter.note(f"{stages.PRE_BOOT}: {skipped}{message}")
        yield chunk, results


def call_distro_stages(
    op: str,
    distro: DistroDriver,
    nodes: Sequence[tuple[NodePlan, Path]],
    vc_out: Path,
    ctx: StageContext,
    reporter: StepReporter,
) -> None:
    """A distro stage called directly on several nodes (``vc_driver/pre_boot compute``).

    ``pre_boot`` on a driver that can prepare many disks at once goes in chunks, as
    ``boot`` does (:func:`pre_boot_in_chunks`); everything else, and every other
    driver, is called node by node.
    """
    if op == "pre_boot" and isinstance(distro, BatchPreBoot) and len(nodes) > 1:
        for _chunk in pre_boot_in_chunks(distro, nodes, vc_out, ctx, reporter):
            pass
        return
    for node, disk in nodes:
        call_distro_stage(op, distro, node, disk, vc_out, ctx, reporter)
