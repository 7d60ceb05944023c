"""The run's state and what each statement does to it.

A :class:`Runtime` holds one VC's run: its site, vc-in, the ledger, the drivers, the
variables, the allocation and the nodes. The interpreter hands it one statement at
a time (:meth:`Runtime.execute`); it does the work through the drivers and reports
through the step's reporter. It never prints.

Every stage is idempotent so that ``resume`` and ``retry`` can run it again:
allocation returns the leases a VC already holds, staging reuses a valid staged
disk, booting a running domain succeeds.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash.driver_api import (
    VC_COMMANDS,
    VE_COMMANDS,
    DistroDriver,
    EngineDriver,
    NodePlan,
    StageContext,
    StageResult,
)
from pragmash.engine.interpreter import StepOutcome, StepReporter
from pragmash.errors import PragmashError, RecipeError, StepError, UserError
from pragmash.language import ast
from pragmash.language.durations import parse_duration
from pragmash.language.sources import source_line
from pragmash.language.targets import parse_target_word, select_nodes
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.site import SiteConfig
from pragmash.vc.vcin import VcIn
from pragmash.vc.vcout import write_vc_out

UP_MARKER = "PRAGMASH-UP"
SIMULATED = "skipped: the engine is simulated ({uri}), so there is no disk to {what}"


@dataclass
class Runtime:
    """One VC's run: everything a statement may read or change."""

    site: SiteConfig
    vcname: str
    vcin: VcIn
    ledger: Ledger
    engine: EngineDriver
    distro: DistroDriver
    variables: dict[str, str] = field(default_factory=dict)
    allow_run: bool = False
    sleep: Callable[[float], None] = time.sleep
    allocation: Allocation | None = None
    nodes: dict[str, NodePlan] = field(default_factory=dict)
    domain_type: str = "qemu"

    def __post_init__(self) -> None:
        self.variables.setdefault("vcname", self.vcname)
        self.variables.setdefault("temp_dir", str(self.temp_dir))
        self.variables.setdefault("vc_out", str(self.vc_out_path))

    # -- paths ------------------------------------------------------------------------

    @property
    def temp_dir(self) -> Path:
        return self.site.temp_dir / self.vcname

    @property
    def vc_out_path(self) -> Path:
        return self.temp_dir / "vc-out.xml"

    def context(self, reporter: StepReporter) -> StageContext:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return StageContext(
            vcname=self.vcname,
            temp_dir=self.temp_dir,
            vc_out_path=self.vc_out_path,
            note=reporter.note,
            progress=reporter.progress,
        )

    # -- values -----------------------------------------------------------------------

    def word(self, word: ast.Word) -> str:
        """A word's text with its variables substituted."""
        out = []
        for part in word.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.name in self.variables:
                out.append(self.variables[part.name])
            else:
                known = ", ".join(sorted(self.variables))
                raise RecipeError(
                    f"unknown variable '${part.name}'; known variables: {known}",
                    part.span,
                    source_line(part.span),
                )
        return "".join(out)

    def seconds(self, word: ast.Word, what: str) -> float:
        text = self.word(word)
        try:
            return parse_duration(text)
        except ValueError as err:
            raise RecipeError(f"{what}: {err}", word.span, source_line(word.span)) from None

    # -- nodes ------------------------------------------------------------------------

    def targets(self, targets: Sequence[ast.Target], stmt: ast.Statement) -> list[NodePlan]:
        if self.allocation is None:
            raise RecipeError(
                f"'{stmt.kind}' needs nodes, but nothing is allocated yet: put 'allocate' before it",
                stmt.span,
                source_line(stmt.span),
            )
        chosen = select_nodes(targets, list(self.nodes.values()))
        return chosen

    def adopt(self, allocation: Allocation) -> None:
        """Make the nodes of an allocation (fresh or read back from the ledger) this run's."""
        self.allocation = allocation
        templates = {"frontend": self.vcin.frontend, "compute": self.vcin.compute}
        nodes: dict[str, NodePlan] = {}
        for lease in allocation.nodes:
            tmpl = templates[lease.role]
            assert tmpl is not None
            old = self.nodes.get(lease.name)
            networks = tuple(self._network_for(i.source) for i in tmpl.interfaces)
            nodes[lease.name] = NodePlan(
                name=lease.name,
                role=lease.role,
                index=lease.index,
                cpus=lease.cpus,
                template_xml=tmpl.domain_xml,
                macs=lease.macs,
                networks=networks,
                disks=old.disks if old else self._disks_of(lease.name, tmpl.disk_paths),
                domain_type=self.domain_type,
                console_log=None
                if self.engine.simulated
                else str(self.temp_dir / f"{lease.name}.console.log"),
                private_ip=lease.private_ip,
                public_ip=lease.public_ip,
            )
        self.nodes = nodes
        self.variables["num_nodes"] = str(len(nodes))

    def _disks_of(self, name: str, template_disks: Sequence[Path]) -> tuple[str, ...]:
        """A node's disks as a run left them: its staged first disk where one exists.

        A resumed or attached run then shows and boots the disk the node really has,
        not the repository image it was staged from.
        """
        disks = [str(p) for p in template_disks]
        if disks and not self.engine.simulated:
            from pragmash.images.staging import staged_path

            staged = staged_path(self.temp_dir / "disks", name, self.site.staging)
            if staged.is_file():
                disks[0] = str(staged)
        return tuple(disks)

    def _network_for(self, source: str | None) -> str:
        if source and source in self.site.bridges:
            return self.site.bridges[source]
        if self.site.default_network:
            return self.site.default_network
        return f"bridge:{source}" if source else "user"

    # -- the statements ---------------------------------------------------------------

    def execute(self, stmt: ast.Statement, reporter: StepReporter) -> StepOutcome:
        handler = getattr(self, f"_do_{type(stmt).__name__.lower()}")
        result: StepOutcome = handler(stmt, reporter)
        return result

    def _do_include(self, stmt: ast.Include, reporter: StepReporter) -> StepOutcome:
        count = len(stmt.body)
        return StepOutcome("done", f"{count} statement{'s' if count != 1 else ''} from {stmt.path}")

    def _do_set(self, stmt: ast.Set, reporter: StepReporter) -> StepOutcome:
        assert stmt.value is not None
        self.variables[stmt.name] = self.word(stmt.value)
        return StepOutcome("done", f"{stmt.name} = {self.variables[stmt.name]}")

    def _do_param(self, stmt: ast.Param, reporter: StepReporter) -> StepOutcome:
        assert stmt.default is not None
        if stmt.name in self.variables:
            return StepOutcome("done", f"{stmt.name} = {self.variables[stmt.name]} (given)")
        self.variables[stmt.name] = self.word(stmt.default)
        return StepOutcome("done", f"{stmt.name} = {self.variables[stmt.name]} (default)")

    def _do_echo(self, stmt: ast.Echo, reporter: StepReporter) -> StepOutcome:
        reporter.note(" ".join(self.word(w) for w in stmt.words))
        return StepOutcome("done")

    def _do_allocate(self, stmt: ast.Allocate, reporter: StepReporter) -> StepOutcome:
        text = self.word(stmt.count) if stmt.count else self.variables.get("num_compute", "0")
        try:
            cpus = int(text)
            if cpus < 0:
                raise ValueError
        except ValueError:
            span = stmt.count.span if stmt.count else stmt.span
            raise RecipeError(
                f"expected a number of CPUs for 'allocate', got {text!r}", span, source_line(span)
            ) from None
        return self.allocate(cpus, reporter)

    def allocate(self, cpus: int, reporter: StepReporter) -> StepOutcome:
        allocation = alloc_mod.allocate(self.ledger, self.site, self.vcname, self.vcin, cpus)
        self.adopt(allocation)
        vc_out = alloc_mod.build_vc_out(allocation, self.vcin, self.site)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        write_vc_out(vc_out, self.vc_out_path)
        fe = allocation.frontend
        computes = allocation.computes
        msg = (
            f"{allocation.public.fqdn} ({allocation.public.ip}), VLAN {allocation.vlan}, "
            f"{len(computes)} compute{'s' if len(computes) != 1 else ''} "
            f"({sum(c.cpus for c in computes)} CPUs)"
        )
        return StepOutcome(
            "done",
            msg,
            {
                "public_ip": allocation.public.ip,
                "fqdn": allocation.public.fqdn,
                "vlan": str(allocation.vlan),
                "nodes": " ".join([fe.name, *(c.name for c in computes)]),
                "vc_out": str(self.vc_out_path),
            },
        )

    def _do_fix(self, stmt: ast.Fix, reporter: StepReporter) -> StepOutcome:
        assert stmt.method is not None
        method = self.word(stmt.method)
        nodes = self.targets(stmt.targets, stmt)
        ctx = self.context(reporter)
        if self.engine.simulated:
            what = (
                f"fix via {method} (pre_fix, fix, post_fix) for {', '.join(n.name for n in nodes)}"
            )
            return StepOutcome("skipped", SIMULATED.format(uri=self.site.uri, what=what))
        products = {}
        for node in nodes:
            disk = self.stage(node, ctx)
            self._stage_call("vc_driver/pre_fix", reporter, self.distro.pre_fix, node, disk, ctx)
            fixed = self._fix_disk(node, disk, method, ctx)
            self._stage_call("vc_driver/post_fix", reporter, self.distro.post_fix, node, fixed, ctx)
            products[node.name] = str(fixed)
        return StepOutcome("done", f"{len(nodes)} image(s) fixed via {method}", products)

    def _do_boot(self, stmt: ast.Boot, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        return self.boot(nodes, reporter)

    def boot(self, nodes: Sequence[NodePlan], reporter: StepReporter) -> StepOutcome:
        """pre_boot then engine boot for each node, up to the site's boot_parallelism at once.

        Images are staged first, one node after another (they share a cached base
        image); the slow part, injecting vc-out.xml and starting the domain, runs in
        parallel. Every node is let finish before the first failure is reported, so
        no boot is left half-done behind the error.
        """
        if not nodes:
            return StepOutcome("skipped", "no nodes selected (the VC has no such nodes)")
        ctx = self.context(reporter)
        for node in nodes:
            reporter.node(node.name, self.engine.state(node.name), "waiting to boot")
        if not self.engine.simulated:
            for node in nodes:
                reporter.node(node.name, self.engine.state(node.name), "staging its disk")
                self.stage(node, ctx)
        workers = max(1, min(self.site.boot_parallelism, len(nodes)))
        results: dict[str, str] = {}
        errors: list[BaseException] = []
        if workers == 1:
            for node in nodes:
                results[node.name] = self._boot_one(node.name, ctx, reporter)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot") as pool:
                futures = {
                    n.name: pool.submit(self._boot_one, n.name, ctx, reporter) for n in nodes
                }
                for name, future in futures.items():
                    try:
                        results[name] = future.result()
                    except BaseException as err:  # re-raised below, after every node ended
                        errors.append(err)
        if errors:
            raise errors[0]
        started = [n.name for n in nodes if results[n.name] == f"{n.name} started"]
        others = [results[n.name] for n in nodes if n.name not in started]
        # a node that was already running is said so: "started" would hide a stale domain
        msg = "; ".join(([f"started {', '.join(started)}"] if started else []) + others)
        if self.engine.simulated:
            msg += f" (staging and vc_driver/pre_boot skipped: the engine is simulated, {self.site.uri})"
        return StepOutcome("done", msg, results)

    def _boot_one(self, name: str, ctx: StageContext, reporter: StepReporter) -> str:
        node = self.nodes[name]
        if not self.engine.simulated:
            reporter.node(name, self.engine.state(name), "vc_driver/pre_boot")
            self._stage_call(
                "vc_driver/pre_boot",
                reporter,
                self.distro.pre_boot,
                node,
                Path(node.disks[0]),
                self.vc_out_path,
                ctx,
            )
        reporter.node(name, self.engine.state(name), "ve_driver/boot")
        result = self._stage_call("ve_driver/boot", reporter, self.engine.boot, node, ctx)
        said = result.message or f"{name} started"
        reporter.node(name, self.engine.state(name), said, reached=True)
        return said

    def _do_waitclock(self, stmt: ast.WaitClock, reporter: StepReporter) -> StepOutcome:
        assert stmt.duration is not None
        seconds = self.seconds(stmt.duration, "wait")
        if self.engine.simulated:
            return StepOutcome(
                "skipped",
                f"skipped: the engine is simulated ({self.site.uri}), nothing boots in {seconds:g} s",
            )
        self._sleep_with_progress(seconds, reporter)
        return StepOutcome("done", f"waited {seconds:g} s")

    def _sleep_with_progress(self, seconds: float, reporter: StepReporter) -> None:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            reporter.progress(elapsed, seconds, "waiting")
            self.sleep(min(0.5, seconds - elapsed))
        reporter.progress(seconds, seconds, "waiting")

    def _do_waitstate(self, stmt: ast.WaitState, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        timeout = self.seconds(stmt.timeout, "timeout") if stmt.timeout else 300.0
        return self.wait_state(nodes, stmt.state, timeout, reporter)

    def wait_state(
        self, nodes: Sequence[NodePlan], state: str, timeout: float, reporter: StepReporter
    ) -> StepOutcome:
        wanted = state.replace("_", " ")
        up = wanted == "up"
        if up and self.engine.simulated:
            wanted = "running"
        start = time.monotonic()
        pending = [n.name for n in nodes]
        while True:
            pending = [name for name in pending if not self._reached(name, wanted)]
            self._report_nodes(nodes, pending, reporter)
            elapsed = time.monotonic() - start
            done = len(nodes) - len(pending)
            reporter.progress(
                done, len(nodes), f"{done}/{len(nodes)} {state}, {elapsed:.0f}s of {timeout:g}s"
            )
            if not pending:
                msg = f"{len(nodes)} node(s) {state} after {elapsed:.1f} s"
                if up and self.engine.simulated:
                    msg += " (simulated engine: 'up' taken as 'running')"
                return StepOutcome("done", msg)
            if elapsed >= timeout:
                lines = []
                tail: list[str] = []
                for name in pending:
                    lines.append(f"{name}: {self.engine.state(name)}")
                    console = self.engine.console_tail(name, 10)
                    tail += [f"{name} console: {line}" for line in console] or [
                        f"{name}: no console output"
                    ]
                raise StepError(
                    f"timed out after {timeout:g} s waiting for {', '.join(pending)} to be {state}; "
                    + "; ".join(lines),
                    stage="ve_driver/wait",
                    output_tail=tail,
                )
            self.sleep(min(1.0, max(0.05, timeout - elapsed)))

    def _report_nodes(
        self, nodes: Sequence[NodePlan], pending: Sequence[str], reporter: StepReporter
    ) -> None:
        """Each waited-for node's state and last console line, for a front end's live view."""
        for node in nodes:
            tail = self.engine.console_tail(node.name, 1)
            state = self.engine.state(node.name)
            reporter.node(
                node.name, state, tail[-1] if tail else "", reached=node.name not in pending
            )

    def _reached(self, name: str, wanted: str) -> bool:
        current = self.engine.state(name)
        if wanted == "up":
            if current != "running":
                return False
            return any(UP_MARKER in line for line in self.engine.console_tail(name, 200))
        return current == wanted

    def _do_drivercall(self, stmt: ast.DriverCall, reporter: StepReporter) -> StepOutcome:
        table = VE_COMMANDS if stmt.driver == "ve_driver" else VC_COMMANDS
        op = table[stmt.command]
        args = [self.word(w) for w in stmt.args]
        if op == "allocate":
            count = ast.Allocate(stmt.span, stmt.text, stmt.args[0] if stmt.args else None)
            return self._do_allocate(count, reporter)
        targets = [parse_target_word(a, w.span) for a, w in zip(args, stmt.args, strict=True)]
        if op == "fix":
            method = stmt.args[-1] if len(stmt.args) > 1 else ast.Word(("virt-v2v",), stmt.span)
            return self._do_fix(
                ast.Fix(stmt.span, stmt.text, tuple(targets[:-1] or targets), method), reporter
            )
        nodes = self.targets(targets, stmt)
        ctx = self.context(reporter)
        if op == "boot":
            return self.boot(nodes, reporter)
        if op == "state":
            for node in nodes:
                reporter.note(f"{node.name}: {self.engine.state(node.name)}")
            return StepOutcome("done")
        if op == "shutdown":
            stopped = [n.name for n in nodes if self.engine.shutdown(n.name, 120.0, ctx)]
            return StepOutcome("done", f"stopped {', '.join(stopped) or 'nothing'}")
        if op == "destroy":
            for node in nodes:
                self.engine.destroy(node.name)
            return StepOutcome("done", f"destroyed {', '.join(n.name for n in nodes)}")
        # distro stages called directly
        if self.engine.simulated:
            return StepOutcome(
                "skipped",
                SIMULATED.format(uri=self.site.uri, what=f"run vc_driver/{stmt.command} on"),
            )
        for node in nodes:
            disk = self.stage(node, ctx)
            if op == "pre_fix":
                self._stage_call(
                    "vc_driver/pre_fix", reporter, self.distro.pre_fix, node, disk, ctx
                )
            elif op == "post_fix":
                self._stage_call(
                    "vc_driver/post_fix", reporter, self.distro.post_fix, node, disk, ctx
                )
            else:
                self._stage_call(
                    "vc_driver/pre_boot",
                    reporter,
                    self.distro.pre_boot,
                    node,
                    disk,
                    self.vc_out_path,
                    ctx,
                )
        return StepOutcome(
            "done", f"vc_driver/{stmt.command} on {', '.join(n.name for n in nodes)}"
        )

    def _do_run(self, stmt: ast.Run, reporter: StepReporter) -> StepOutcome:
        if not (self.allow_run or self.site.allow_run):
            raise UserError(
                f"{stmt.span}: 'run' is refused: recipes may not run host commands unless the "
                f"site config sets [policy] allow_run = true or the command line says --allow-run"
            )
        argv = [self.word(w) for w in stmt.argv]
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except FileNotFoundError:
            raise StepError(f"command not found: {argv[0]}", stage="run") from None
        for line in (proc.stdout + proc.stderr).splitlines():
            reporter.note(line)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).splitlines()[-20:]
            raise StepError(
                f"{argv[0]} exited with status {proc.returncode}", stage="run", output_tail=tail
            )
        return StepOutcome("done", f"{argv[0]} exited 0")

    # -- disk work (real engines only) ------------------------------------------------

    def stage(self, node: NodePlan, ctx: StageContext) -> Path:
        """The node's own first disk, staged on first need (a COW overlay or a copy)."""
        from pragmash.images.staging import stage_image

        current = Path(node.disks[0]) if node.disks else None
        if current is None:
            raise StepError(
                f"{node.name} has no disk in its vc-in template", stage="ve_driver/stage"
            )
        if current.parent == self.temp_dir / "disks":
            return current
        staged = stage_image(
            current,
            self.temp_dir / "disks",
            node.name,
            mode=self.site.staging,
            cache_dir=self.site.image_cache,
            progress=ctx.progress,
        )
        self.nodes[node.name] = dataclasses.replace(node, disks=(str(staged), *node.disks[1:]))
        return staged

    def _fix_disk(self, node: NodePlan, disk: Path, method: str, ctx: StageContext) -> Path:
        from pragmash.images.fixing import fix_image

        log = self.temp_dir / f"{node.name}.fix.log"
        fixed = fix_image(
            method,
            disk,
            self.temp_dir / "fix" / node.name,
            timeout=3600.0,
            log_path=log,
            on_line=lambda line: ctx.progress(0, None, line[-80:]),
        )
        if fixed != disk:
            self.nodes[node.name] = dataclasses.replace(
                self.nodes[node.name], disks=(str(fixed), *node.disks[1:])
            )
        return fixed

    def _stage_call(
        self, stage: str, reporter: StepReporter, call: Callable[..., StageResult], *args: Any
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
