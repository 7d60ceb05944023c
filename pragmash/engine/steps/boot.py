"""``boot TARGETS``: stage, pre_boot and start many nodes, with the slow parts shared or overlapped.

The cost of a boot step must not grow with its node count more than it has to:

* staging (a qcow2 overlay per node: milliseconds) runs on ``boot_parallelism``
  workers, after the first node has warmed the shared caches (decompression, digest);
* a driver that can prepare many disks at once (:class:`~pragmash.driver_api.BatchPreBoot`:
  the bundled distro drivers) gets every node of the step in ONE call, so one
  libguestfs appliance launch writes all their files; past ``MAX_DRIVES`` disks the
  next launch overlaps with the boots of the nodes already prepared
  (:func:`~pragmash.engine.run.stagecall.pre_boot_in_chunks`);
* other drivers (a site's script folder) run pre_boot per node, each node's
  stage → pre_boot → start on a worker, overlapping with the other nodes' boots;
* the engine starts domains on the same workers, ``boot_parallelism`` at once on each
  host the step's nodes are placed on (a site of many hosts boots them side by side),
  while the head node's own work (staging, pre_boot) stays at ``boot_parallelism``;
* a step of one node has nothing to overlap: it runs on the calling thread, since
  starting a pool's thread and handing the work over cost about a third of such a
  step on a simulated engine (bench/bench_boot.py, N=1).

The pipeline is given the step's nodes as planned (a seeded node's with the recipe's
``$cloud_config``) and owns nothing of the run: its workers stage disks into the
VC's folder and boot, and :attr:`BootPipeline.staged` says which disk each node got,
for the runtime (the one owner of the run's nodes) to record once the step is over. Every node is let finish before the first failure
is raised, so no boot is left half-done behind the error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

from pragmash import stages
from pragmash.driver_api import (
    BatchPreBoot,
    DistroDriver,
    EngineDriver,
    NodePlan,
    StageContext,
    StageResult,
)
from pragmash.engine.run.interpreter import StepReporter
from pragmash.engine.run.stagecall import call_stage, pre_boot_in_chunks
from pragmash.engine.run.vcfolder import VcFolder, with_first_disk
from pragmash.images.staging import Mode

T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class BootPipeline:
    """Boots one step's nodes for one VC."""

    engine: EngineDriver
    distro: DistroDriver
    folder: VcFolder  # where disks are staged, and the vc-out.xml pre_boot puts in
    staging: Mode
    cache_dir: Path
    ctx: StageContext
    reporter: StepReporter
    #: Set when Ctrl-C reaches the main thread while workers run: the stages'
    #: ``ctx.cancelled()`` reads it, so their waits end instead of running on.
    interrupted: threading.Event = field(default_factory=threading.Event)
    workers: int = 4
    disk_work: bool = True  # False on a simulated engine: nothing to stage or inject
    #: The plan the engine boots from, given the node's plan after pre_boot: on a host
    #: that does not share the head node's disks, its disk sent there (host_disks).
    before_start: Callable[[NodePlan], NodePlan] = lambda node: node
    #: Each node's staged disk, by name, as the workers staged them (read it after run).
    staged: dict[str, Path] = field(default_factory=dict, init=False)
    #: What pre_boot's appliance ran under (``{"appliance": "KVM"}``), for the step's
    #: journal entry: the step's own message says what the engine did.
    appliance: dict[str, str] = field(default_factory=dict, init=False)
    # at most ``workers`` at once: each host's boots, and the head node's own disk work
    _hosts: dict[str, threading.BoundedSemaphore] = field(default_factory=dict, init=False)
    _head: threading.BoundedSemaphore = field(init=False)

    def run(self, nodes: Sequence[NodePlan]) -> dict[str, str]:
        """Boot every node; returns each node's boot message by name."""
        hosts = {n.host for n in nodes}
        self._hosts = {h: threading.BoundedSemaphore(self.workers) for h in hosts}
        self._head = threading.BoundedSemaphore(self.workers)
        workers = max(1, min(self.workers * len(hosts), len(nodes)))
        for node in nodes:
            self._doing(node.name, "waiting to boot")
        pool: Executor = (
            OnThisThread()
            if len(nodes) == 1
            else ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot")
        )
        with pool:
            try:
                if not self.disk_work:
                    futures = {n.name: pool.submit(self._start, n) for n in nodes}
                elif isinstance(self.distro, BatchPreBoot):
                    futures = self._batched(nodes, pool, self.distro)
                else:
                    futures = {n.name: pool.submit(self._one_by_one, n) for n in nodes}
                return _results(futures, self.interrupted.set)
            except KeyboardInterrupt:  # before the pool's exit waits for the workers
                self.interrupted.set()
                raise

    def _doing(self, name: str, detail: str, done: bool = False) -> None:
        """What one node is doing now, for a front end's live view (its state is asked
        only when a front end shows it)."""
        self.reporter.node(name, lambda: self.engine.state(name), detail, reached=done)

    def _stage(self, node: NodePlan) -> NodePlan:
        """The node's plan on its own staged disk (staged now on first need)."""
        disk = self.folder.stage(
            node, mode=self.staging, cache_dir=self.cache_dir, progress=self.ctx.progress
        )
        self.staged[node.name] = disk
        return with_first_disk(node, disk)

    def _staged(self, node: NodePlan) -> NodePlan:
        with self._head:
            return self._stage(node)

    def _start(self, node: NodePlan) -> str:
        self._doing(node.name, f"{stages.BOOT}: starting the domain")
        with self._hosts.get(node.host) or self._head:
            result = call_stage(
                stages.BOOT, self.reporter, self.engine.boot, self.before_start(node), self.ctx
            )
        said = result.message or f"{node.name} started"
        self._doing(node.name, said, True)
        return said

    def _one_by_one(self, node: NodePlan) -> str:
        with self._head:
            self._doing(node.name, "staging its disk")
            staged = self._stage(node)
            self._doing(node.name, stages.PRE_BOOT)
            result = call_stage(
                stages.PRE_BOOT,
                self.reporter,
                self.distro.pre_boot,
                staged,
                Path(staged.disks[0]),
                self.folder.vc_out,
                self.ctx,
            )
        self._keep_appliance([result])
        return self._start(staged)

    def _keep_appliance(self, results: Iterable[StageResult]) -> None:
        for result in results:
            if "appliance" in result.products:
                self.appliance["appliance"] = result.products["appliance"]

    def _batched(
        self, nodes: Sequence[NodePlan], pool: Executor, distro: BatchPreBoot
    ) -> dict[str, Future[str]]:
        """Stage all, then one pre_boot call per chunk of disks; each chunk boots while
        the next is prepared."""
        staged = {nodes[0].name: self._stage(nodes[0])}  # warms the shared caches
        staging = {n.name: pool.submit(self._staged, n) for n in nodes[1:]}
        staged.update(_results(staging, self.interrupted.set))
        pairs = [(staged[n.name], Path(staged[n.name].disks[0])) for n in nodes]

        def preparing(chunk: Sequence[tuple[NodePlan, Path]]) -> None:
            for node, _disk in chunk:
                self._doing(node.name, f"{stages.PRE_BOOT} ({len(chunk)} disks at once)")

        futures: dict[str, Future[str]] = {}
        try:
            for chunk, results in pre_boot_in_chunks(
                distro, pairs, self.folder.vc_out, self.ctx, self.reporter, preparing
            ):
                self._keep_appliance(results.values())
                for node, _disk in chunk:
                    futures[node.name] = pool.submit(self._start, node)
        except BaseException:
            _results(futures, self.interrupted.set)  # let the nodes booting finish, then report
            raise
        return futures


class OnThisThread(Executor):
    """An executor that runs each call at once, on the calling thread (a step of one
    node). A failure is kept in the future, as a pool's worker keeps it; a Ctrl-C goes
    straight up, as anything else on the calling thread does."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


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
