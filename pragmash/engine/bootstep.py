"""``boot TARGETS``: stage, pre_boot and start many nodes, with the slow parts shared or overlapped.

The cost of a boot step must not grow with its node count more than it has to:

* staging (a qcow2 overlay per node: milliseconds) runs on ``boot_parallelism``
  workers, after the first node has warmed the shared caches (decompression, digest);
* a driver that can prepare many disks at once (:class:`~pragmash.driver_api.BatchPreBoot`:
  the bundled distro drivers) gets every node of the step in ONE call, so one
  libguestfs appliance launch writes all their files; past ``MAX_DRIVES`` disks the
  next launch overlaps with the boots of the nodes already prepared;
* other drivers (a site's script folder) run pre_boot per node, each node's
  stage → pre_boot → start on a worker, overlapping with the other nodes' boots;
* the engine starts domains on the same workers.

Every node is let finish before the first failure is raised, so no boot is left
half-done behind the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pragmash.driver_api import (
    BatchPreBoot,
    DistroDriver,
    EngineDriver,
    NodePlan,
    StageContext,
    StageResult,
)
from pragmash.errors import StepError
from pragmash.images.inject import MAX_DRIVES

PRE_BOOT = "vc_driver/pre_boot"
T = TypeVar("T")
CallStage = Callable[..., StageResult]  # (stage name, driver method, *args) -> result


@dataclass
class BootPipeline:
    """Boots one step's nodes for one VC; the runtime supplies how to stage and call stages."""

    engine: EngineDriver
    distro: DistroDriver
    vc_out: Path
    ctx: StageContext
    call_stage: CallStage
    stage: Callable[[NodePlan], Path]  # the node's own disk, staged on first need
    plan: Callable[[str], NodePlan]  # the node's plan as it is now (after staging)
    workers: int = 4
    disk_work: bool = True  # False on a simulated engine: nothing to stage or inject
    #: Called when Ctrl-C reaches the main thread while workers run: it makes the
    #: stages' ``ctx.cancelled()`` true, so their waits end instead of running on.
    interrupted: Callable[[], None] = lambda: None
    # what one node is doing now (name, detail, booted yet), for a front end's live view
    doing: Callable[[str, str, bool], None] = lambda _name, _detail, _done: None
    #: The plan the engine boots from, given the node's plan after pre_boot: on a host
    #: that does not share the head node's disks, its disk sent there (host_disks).
    before_start: Callable[[NodePlan], NodePlan] = lambda node: node
    #: What pre_boot's appliance ran under (``{"appliance": "KVM"}``), for the step's
    #: journal entry: the step's own message says what the engine did.
    appliance: dict[str, str] = field(default_factory=dict)

    def run(self, nodes: Sequence[NodePlan]) -> dict[str, str]:
        """Boot every node; returns each node's boot message by name."""
        workers = max(1, min(self.workers, len(nodes)))
        for node in nodes:
            self.doing(node.name, "waiting to boot", False)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot") as pool:
            try:
                if not self.disk_work:
                    futures = {n.name: pool.submit(self._start, n.name) for n in nodes}
                elif isinstance(self.distro, BatchPreBoot):
                    futures = self._batched(nodes, pool, self.distro)
                else:
                    futures = {n.name: pool.submit(self._one_by_one, n) for n in nodes}
                return _results(futures, self.interrupted)
            except KeyboardInterrupt:  # before the pool's exit waits for the workers
                self.interrupted()
                raise

    def _start(self, name: str) -> str:
        self.doing(name, "ve_driver/boot: starting the domain", False)
        node = self.before_start(self.plan(name))
        result = self.call_stage("ve_driver/boot", self.engine.boot, node, self.ctx)
        said = result.message or f"{name} started"
        self.doing(name, said, True)
        return said

    def _one_by_one(self, node: NodePlan) -> str:
        self.doing(node.name, "staging its disk", False)
        disk = self.stage(node)
        self.doing(node.name, "vc_driver/pre_boot", False)
        result = self.call_stage(
            PRE_BOOT, self.distro.pre_boot, self.plan(node.name), disk, self.vc_out, self.ctx
        )
        self._keep_appliance([result])
        return self._start(node.name)

    def _keep_appliance(self, results: Iterable[StageResult]) -> None:
        for result in results:
            if "appliance" in result.products:
                self.appliance["appliance"] = result.products["appliance"]

    def _batched(
        self, nodes: Sequence[NodePlan], pool: ThreadPoolExecutor, distro: BatchPreBoot
    ) -> dict[str, Future[str]]:
        """Stage all, then one pre_boot call per chunk of disks; each chunk boots while
        the next is prepared."""
        disks: dict[str, Path] = {nodes[0].name: self.stage(nodes[0])}  # warms shared caches
        staging = {n.name: pool.submit(self.stage, n) for n in nodes[1:]}
        disks.update(_results(staging, self.interrupted))
        futures: dict[str, Future[str]] = {}
        try:
            for first in range(0, len(nodes), MAX_DRIVES):
                chunk = nodes[first : first + MAX_DRIVES]
                pairs = [(self.plan(n.name), disks[n.name]) for n in chunk]
                for node in chunk:
                    self.doing(node.name, f"vc_driver/pre_boot ({len(chunk)} disks at once)", False)
                try:
                    results = distro.pre_boot_many(pairs, self.vc_out, self.ctx)
                except OSError as err:
                    raise StepError(f"{PRE_BOOT}: {err}", stage=PRE_BOOT) from err
                _note_shared(results, self.ctx)
                self._keep_appliance(results.values())
                for node in chunk:
                    futures[node.name] = pool.submit(self._start, node.name)
        except BaseException:
            _results(futures, self.interrupted)  # let the nodes booting finish, then report
            raise
        return futures


def _note_shared(results: dict[str, StageResult], ctx: StageContext) -> None:
    """One line for the whole batch instead of one per node."""
    messages = {r.message for r in results.values() if r.message}
    for message in sorted(messages):
        ctx.note(f"vc_driver/pre_boot: {message}")


def _result(future: Future[T]) -> T:
    """``future.result()`` in short waits: a blocked lock wait would not see Ctrl-C."""
    while True:
        try:
            return future.result(timeout=0.25)
        except FutureTimeout:
            continue


def _results(
    futures: dict[str, Future[T]], interrupted: Callable[[], None] = lambda: None
) -> dict[str, T]:
    """Every future's result by name, after all ended; the first failure is raised.

    A Ctrl-C while waiting is passed on (``interrupted``) so the workers stop early.
    """
    out: dict[str, T] = {}
    errors: list[BaseException] = []
    for name, future in futures.items():
        try:
            out[name] = _result(future)
        except KeyboardInterrupt as err:  # this thread was interrupted: tell the workers
            interrupted()
            errors.append(err)
        except BaseException as err:  # re-raised below, after every node ended
            errors.append(err)
    if errors:
        raise errors[0]
    return out
