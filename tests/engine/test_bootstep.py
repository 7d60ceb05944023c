"""The boot pipeline's shape: one pre_boot call per step for a batch driver, overlap past it.

The engine and the distro driver are fakes that record calls (the real libguestfs
launch count is checked in tests/test_vm_batch.py); what is tested is the order and
grouping of the work.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pragmash import domain_states, outcomes
from pragmash.driver_api import NodePlan, StageContext, StageResult
from pragmash.engine.run import stagecall
from pragmash.engine.run.interpreter import StepReporter
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.engine.steps import boot as bootstep
from pragmash.errors import StepError


def plan(name: str) -> NodePlan:
    return NodePlan(
        name=name,
        role="compute",
        index=0,
        cpus=1,
        template_xml="<domain/>",
        macs=(),
        networks=(),
        disks=(f"/repo/{name}.img",),
        domain_type="qemu",
    )


class FakeEngine:
    name = "fake"
    simulated = False

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.booted: list[str] = []
        self.gate = gate
        self.lock = threading.Lock()

    def state(self, name: str) -> str:
        return domain_states.RUNNING if name in self.booted else domain_states.SHUT_OFF

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        if self.gate is not None and node.name == "n0":
            # n0 (first chunk) boots only once the second chunk's pre_boot has begun
            assert self.gate.wait(10), "the next chunk was not prepared while n0 booted"
        with self.lock:
            self.booted.append(node.name)
        return StageResult(outcomes.DONE, f"{node.name} started")


class BatchDistro:
    name = "batch"

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.gate = gate
        self.fail = fail

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        raise AssertionError("not called by boot")

    post_fix = pre_fix

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        raise AssertionError("a batch driver gets pre_boot_many")

    def pre_boot_many(
        self, nodes: Sequence[tuple[NodePlan, Path]], vc_out: Path, ctx: StageContext
    ) -> dict[str, StageResult]:
        self.calls.append([n.name for n, _ in nodes])
        if len(self.calls) == 2 and self.gate is not None:
            self.gate.set()
        if self.fail:
            raise StepError("guestfish failed", stage="vc_driver/pre_boot")
        return {n.name: StageResult(outcomes.DONE, "vc-out.xml written") for n, _ in nodes}


class OneByOneDistro:
    """Like a site's script folder: pre_boot one node at a time, no pre_boot_many."""

    name = "scripts"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        self.calls.append([node.name])
        return StageResult(outcomes.DONE, "script ran")


@dataclass(frozen=True)
class RecordingFolder(VcFolder):
    """A VC folder that records which node it staged, in order, and stages nothing."""

    order: list[str] = field(default_factory=list)

    def stage(self, node: NodePlan, **_how: object) -> Path:
        self.order.append(node.name)
        return self.disks / f"{node.name}.qcow2"


def pipeline(
    engine: FakeEngine, distro: object, tmp_path: Path, staged: list[str]
) -> bootstep.BootPipeline:
    return bootstep.BootPipeline(
        engine=engine,  # type: ignore[arg-type]
        distro=distro,  # type: ignore[arg-type]
        folder=RecordingFolder(tmp_path, staged),
        staging="overlay",
        cache_dir=tmp_path / "cache",
        ctx=StageContext("vc", tmp_path, tmp_path / "vc-out.xml"),
        reporter=StepReporter(0, lambda _event: None),
        workers=3,
    )


def test_a_batch_driver_gets_every_node_of_the_step_in_one_call(tmp_path: Path) -> None:
    engine, distro, staged = FakeEngine(), BatchDistro(), []  # type: ignore[var-annotated]
    pipe = pipeline(engine, distro, tmp_path, staged)
    results = pipe.run([plan(f"n{i}") for i in range(5)])
    assert distro.calls == [["n0", "n1", "n2", "n3", "n4"]]
    # the pipeline says which disk each node got; it changes no plan of the run's
    assert pipe.staged == {f"n{i}": tmp_path / "disks" / f"n{i}.qcow2" for i in range(5)}
    assert sorted(staged) == sorted(engine.booted) == [f"n{i}" for i in range(5)]
    assert staged[0] == "n0"  # the first node is staged alone, warming the shared caches
    assert results["n3"] == "n3 started"


def test_past_max_drives_the_next_chunk_is_prepared_while_the_first_boots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stagecall, "MAX_DRIVES", 2)
    gate = threading.Event()
    engine, distro, staged = FakeEngine(gate), BatchDistro(gate), []  # type: ignore[var-annotated]
    pipeline(engine, distro, tmp_path, staged).run([plan(f"n{i}") for i in range(5)])
    assert distro.calls == [["n0", "n1"], ["n2", "n3"], ["n4"]]
    assert sorted(engine.booted) == [f"n{i}" for i in range(5)]


def test_a_failed_batch_boots_nothing_of_it(tmp_path: Path) -> None:
    engine, distro, staged = FakeEngine(), BatchDistro(fail=True), []  # type: ignore[var-annotated]
    with pytest.raises(StepError, match="guestfish failed"):
        pipeline(engine, distro, tmp_path, staged).run([plan(f"n{i}") for i in range(3)])
    assert engine.booted == []


def test_a_script_driver_runs_pre_boot_per_node(tmp_path: Path) -> None:
    engine, distro, staged = FakeEngine(), OneByOneDistro(), []  # type: ignore[var-annotated]
    pipeline(engine, distro, tmp_path, staged).run([plan(f"n{i}") for i in range(4)])
    assert sorted(c[0] for c in distro.calls) == ["n0", "n1", "n2", "n3"]
    assert sorted(engine.booted) == ["n0", "n1", "n2", "n3"]


class WaitingEngine(FakeEngine):
    """Its boot waits (as a real stage waits on a lock or a guest) until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.saw_cancel: list[str] = []

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        with self.lock:
            self.booted.append(node.name)
            if len(self.booted) == 2:
                self.waiting.set()  # both workers are in their wait
        for _ in range(3000):  # 30 s at most; ends at once when the flag is set
            if ctx.cancelled():
                self.saw_cancel.append(node.name)
                return StageResult(outcomes.DONE, "gave up")
            time.sleep(0.01)
        return StageResult(outcomes.DONE, f"{node.name} started")


def test_ctrl_c_during_a_parallel_boot_cancels_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches only the main thread; the flag it sets ends the workers' waits."""
    collecting = threading.Event()  # the main thread has submitted every node
    real_results = bootstep._results

    def spy(futures: dict[str, Any], interrupted: Callable[[], None] = lambda: None) -> Any:
        collecting.set()
        return real_results(futures, interrupted)

    monkeypatch.setattr(bootstep, "_results", spy)
    engine = WaitingEngine()
    cancel = threading.Event()
    pipe = pipeline(engine, OneByOneDistro(), tmp_path, [])
    pipe.ctx.cancelled = cancel.is_set
    pipe.interrupted = cancel
    pipe.disk_work = False

    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if engine.waiting.wait(10) and collecting.wait(10):
            # what a terminal's Ctrl-C does: SIGINT, handled by the main thread
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        pipe.run([plan("n0"), plan("n1")])
    assert cancel.is_set()
    assert sorted(engine.saw_cancel) == ["n0", "n1"]


def test_an_explicit_pre_boot_statement_is_one_batch_for_a_batch_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``vc_driver/pre_boot compute`` on 5 nodes: one call (one appliance), in chunks
    of MAX_DRIVES; a per-node driver is still called node by node."""
    monkeypatch.setattr(stagecall, "MAX_DRIVES", 3)
    pairs = [(plan(f"n{i}"), tmp_path / f"n{i}.qcow2") for i in range(5)]
    ctx = StageContext("vc", tmp_path, tmp_path / "vc-out.xml")
    batch, reporter = BatchDistro(), StepReporter(0, lambda _event: None)
    stagecall.call_distro_stages("pre_boot", batch, pairs, tmp_path / "vc-out.xml", ctx, reporter)
    assert batch.calls == [["n0", "n1", "n2"], ["n3", "n4"]]
    assert reporter.notes == ["vc_driver/pre_boot: vc-out.xml written"] * 2
    single, reporter = OneByOneDistro(), StepReporter(0, lambda _event: None)
    stagecall.call_distro_stages("pre_boot", single, pairs, tmp_path / "vc-out.xml", ctx, reporter)  # type: ignore[arg-type]
    assert single.calls == [[f"n{i}"] for i in range(5)]


class HostsEngine:
    """Boots wait until as many are under way as the test expects; counts them per host."""

    name = "fake"
    simulated = True

    def __init__(self, meet: threading.Barrier) -> None:
        self.meet = meet
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        with self.lock:
            self.now[node.host] = self.now.get(node.host, 0) + 1
            self.most[node.host] = max(self.most.get(node.host, 0), self.now[node.host])
        try:
            self.meet.wait()  # broken (an error) unless the boots of every host overlap
        finally:
            with self.lock:
                self.now[node.host] -= 1
        return StageResult(outcomes.DONE, f"{node.name} started")


def test_each_host_boots_boot_parallelism_nodes_at_once(tmp_path: Path) -> None:
    hosts, workers = ("h0", "h1", "h2"), 2
    nodes = {
        f"n{i}": dataclasses.replace(plan(f"n{i}"), host=hosts[i % len(hosts)]) for i in range(12)
    }
    engine = HostsEngine(threading.Barrier(workers * len(hosts), timeout=10))
    booted = bootstep.BootPipeline(
        engine=engine,  # type: ignore[arg-type]
        distro=BatchDistro(),
        folder=VcFolder(tmp_path),
        staging="overlay",
        cache_dir=tmp_path / "cache",
        ctx=StageContext("vc", tmp_path, tmp_path / "vc-out.xml"),
        reporter=StepReporter(0, lambda _event: None, node_status=False),
        workers=workers,
        disk_work=False,
    ).run(list(nodes.values()))
    assert sorted(booted) == sorted(nodes)
    assert engine.most == dict.fromkeys(hosts, workers)  # each host its own, none more


class ThreadNoting(FakeEngine):
    """Notes the thread each boot ran on; fails the nodes named in ``failing``."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.failing = failing

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        self.threads.append(threading.current_thread())
        if node.name in self.failing:
            raise StepError(f"{node.name} would not start", stage="boot")
        return super().boot(node, ctx)


@pytest.mark.parametrize("distro", [BatchDistro, OneByOneDistro])
def test_a_step_of_one_node_runs_on_the_calling_thread(tmp_path: Path, distro: type) -> None:
    engine = ThreadNoting()
    assert pipeline(engine, distro(), tmp_path, []).run([plan("n0")]) == {"n0": "n0 started"}
    assert engine.threads == [threading.current_thread()]
    engine = ThreadNoting()
    pipeline(engine, distro(), tmp_path, []).run([plan("n0"), plan("n1")])
    assert threading.current_thread() not in engine.threads  # two: on the pool's workers

    failing = ThreadNoting(failing=("n0",))
    with pytest.raises(StepError, match="n0 would not start"):
        pipeline(failing, distro(), tmp_path, []).run([plan("n0")])
