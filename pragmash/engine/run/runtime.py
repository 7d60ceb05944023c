"""The run's state and what each statement does to it.

A :class:`Runtime` holds one VC's run: its site, vc-in, the ledger, the drivers, the
variables, the allocation and the nodes. The interpreter hands it one statement at
a time (:meth:`Runtime.execute`); it does the work through the drivers and reports
through the step's reporter. It never prints.

Every stage is idempotent so that ``resume`` and ``retry`` can run it again:
allocation returns the leases a VC already holds, staging reuses a valid staged
disk, booting a running domain succeeds.

Beside it: :mod:`~pragmash.engine.steps.wait` (clock waits and waits for a goal, whose
meaning is :mod:`~pragmash.engine.steps.readiness`'s), :mod:`~pragmash.engine.steps.host_command`
(``run``), :mod:`~pragmash.engine.guests.inside` (``exec``) and
:mod:`~pragmash.engine.run.nodes` (allocation to node plans).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash import domain_states, outcomes
from pragmash.driver_api import (
    DistroDriver,
    EngineDriver,
    NodePlan,
    PrivateNetworkPlan,
    StageContext,
    StageResult,
    UpTest,
    up_tests_of,
)
from pragmash.engine.commands.access import VcAccess, vc_access
from pragmash.engine.guests.agent import Clock
from pragmash.engine.guests.inside import GuestReach, exec_on_nodes, require_running
from pragmash.engine.hosts.capacity import (
    locate,
    placement_input,
    placement_products,
    placement_words,
)
from pragmash.engine.hosts.router import host_disks_for
from pragmash.engine.run.diskwork import DiskWork
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.run.mem_option import Memory, check_vc_fits, host_memory_mib
from pragmash.engine.run.nodes import node_plans, stage_context, template_source
from pragmash.engine.run.stagecall import call_distro_stages, call_stage
from pragmash.engine.run.vcfolder import VcFolder, with_disks
from pragmash.engine.steps import private_network, seeding
from pragmash.engine.steps.boot import BootPipeline
from pragmash.engine.steps.fix import ImageFixer
from pragmash.engine.steps.folder_scripts import (
    allocates_by_script,
    engine_fix,
    folder_script_call,
    site_allocate,
)
from pragmash.engine.steps.host_command import run_host_command
from pragmash.engine.steps.readiness import Goal
from pragmash.engine.steps.wait import sleep_with_progress, wait_for_goal
from pragmash.errors import RecipeError, UserError
from pragmash.language import ast
from pragmash.language.durations import parse_duration
from pragmash.language.sources import source_line
from pragmash.language.targets import resolve_targets, select_nodes
from pragmash.language.vocabulary import COMMANDS_REFUSED
from pragmash.store import allocation as alloc_mod
from pragmash.store.allocation import Allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcin import VcIn
from pragmash.vc.formats.vcout import repair_vc_out, write_vc_out


@dataclass
class Runtime(ast.StatementVisitor[StepReporter, StepOutcome]):
    """One VC's run: everything a statement may read or change, and what each statement
    does to it (one ``visit_*`` method per statement: :class:`~pragmash.language.ast.StatementVisitor`)."""

    site: SiteConfig
    vcname: str
    vcin: VcIn
    ledger: Ledger
    engine: EngineDriver
    distro: DistroDriver
    disk_work: DiskWork  # real or none: decided once, when the run was opened
    variables: dict[str, str] = field(default_factory=dict)
    allow_run: bool = False
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    allocation: Allocation | None = None
    nodes: dict[str, NodePlan] = field(default_factory=dict)
    domain_type: str = "qemu"
    #: Set while a Ctrl-C is on its way out of a step; stages read it as ctx.cancelled().
    interrupted: threading.Event = field(default_factory=threading.Event)
    key: str | None = None  # --key: public key(s) for root, one a line
    memory: Memory | None = None  # MiB per role (--mem, else the templates')

    # -- paths ------------------------------------------------------------------------

    @property
    def folder(self) -> VcFolder:
        return VcFolder.of(self.site, self.vcname)

    @property
    def temp_dir(self) -> Path:
        return self.folder.path

    @property
    def vc_out_path(self) -> Path:
        return self.folder.vc_out

    def context(self, reporter: StepReporter) -> StageContext:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return stage_context(
            self.site,
            self.vcname,
            note=reporter.note,
            progress=reporter.progress,
            cancelled=self.interrupted.is_set,
            kvm_usable=self.domain_type == "kvm",  # appliances as nodes: host_info decided
        )

    # -- values -----------------------------------------------------------------------

    def word(self, word: ast.Word) -> str:
        """A word's text with its variables substituted (an unknown one is a RecipeError)."""
        return word.expand(self._value_of)

    def _value_of(self, ref: ast.VarRef) -> str:
        if ref.name in self.variables:
            return self.variables[ref.name]
        known = ", ".join(sorted(self.variables))
        raise RecipeError(
            f"unknown variable '${ref.name}'; known variables: {known}",
            ref.span,
            source_line(ref.span),
        )

    def seconds(self, word: ast.Word, what: str) -> float:
        text = self.word(word)
        try:
            return parse_duration(text)
        except ValueError as err:
            raise RecipeError(f"{what}: {err}", word.span, source_line(word.span)) from None

    # -- nodes ------------------------------------------------------------------------

    @property
    def up_tests(self) -> tuple[UpTest, ...]:
        """How this VC's nodes show they are up: the site's override, else the driver's."""
        return self.site.up_overrides.get(self.vcname) or up_tests_of(self.distro)

    @property
    def up_tests_source(self) -> str:
        """Who chose :attr:`up_tests`, for `pragmash check` and the REPL."""
        if self.vcname in self.site.up_overrides:
            return f"the site's [up] {self.vcname} ({self.site.source})"
        return f"the distro driver {self.distro.name}"

    def targets(self, targets: Sequence[ast.Target], stmt: ast.Statement) -> list[NodePlan]:
        if self.allocation is None:
            raise RecipeError(
                f"'{stmt.kind}' needs nodes, but nothing is allocated yet: put 'allocate' before it",
                stmt.span,
                source_line(stmt.span),
            )
        return select_nodes(resolve_targets(targets, self.word), list(self.nodes.values()))

    def adopt(self, allocation: Allocation) -> None:
        """Make the nodes of an allocation (fresh or read back from the ledger) this run's."""
        self.allocation = allocation
        locate(self.engine, allocation)  # node -> host, once: the engine asks no ledger
        self.nodes = node_plans(
            allocation,
            self.vcin,
            self.site,
            self.temp_dir,
            domain_type=self.domain_type,
            simulated=self.disk_work.simulated,
            previous=self.nodes,
            private_network=self.private_network_plan(allocation.vlan).attach,
            up_tests=self.up_tests,
            authorized_keys=tuple(self.key.splitlines()) if self.key else (),
            memory=self.memory,
            seeds=seeding.delivery_of(self.site, self.vcname, self.distro)[0] == "seed",
        )
        self.variables["num_nodes"] = str(len(self.nodes))

    def repair_vc_out(self) -> list[Path]:
        """The VC's vc-out files made what its allocation says again where a crash lost
        them (they are written without a sync: :mod:`pragmash.vc.formats.vcout`);
        returns those rewritten. Called before a node is given its file (a boot that
        injects files, a recipe's own ``pre_boot``) and when a VC is carried on in a
        new process (``resume``, ``start``). Nothing while nothing is allocated, nor
        where the site's allocate script wrote the files."""
        if self.allocation is None or allocates_by_script(self.engine):
            return []
        vc_out = alloc_mod.build_vc_out(self.allocation, self.vcin, self.site, key=self.key)
        return repair_vc_out(vc_out, self.vc_out_path)

    def private_network_plan(self, vlan: int) -> PrivateNetworkPlan:
        return private_network.plan_for(self.site, self.vcname, vlan)

    def ensure_private_network(self) -> StageResult | None:
        """Make the VC's private network exist and run (idempotent; None: engine makes none).

        Called by ``allocate``, by every ``boot`` (a network removed behind the run's back
        is made again before a domain needs it) and on resume and attach.
        """
        if self.allocation is None:
            return None
        plan = self.private_network_plan(self.allocation.vlan)
        private_network.check(self.engine, plan)
        return private_network.ensure(self.engine, plan)

    # -- the statements ---------------------------------------------------------------

    def execute(self, stmt: ast.Statement, reporter: StepReporter) -> StepOutcome:
        return self.guarded(self.visit, stmt, reporter)

    def guarded(
        self, handler: Callable[..., StepOutcome], stmt: Any, reporter: StepReporter
    ) -> StepOutcome:
        """One step's handler (this runtime's or a scale's): a step run again (retry,
        resume) starts uncancelled; Ctrl-C sets ``interrupted`` so its workers stop."""
        self.interrupted.clear()
        try:
            return handler(stmt, reporter)
        except KeyboardInterrupt:
            self.interrupted.set()
            raise

    def visit_include(self, stmt: ast.Include, reporter: StepReporter) -> StepOutcome:
        count = len(stmt.body)
        return StepOutcome(
            outcomes.DONE, f"{count} statement{'s' if count != 1 else ''} from {stmt.path}"
        )

    def visit_set(self, stmt: ast.Set, reporter: StepReporter) -> StepOutcome:
        assert stmt.value is not None
        self.variables[stmt.name] = self.word(stmt.value)
        return StepOutcome(outcomes.DONE, f"{stmt.name} = {self.variables[stmt.name]}")

    def visit_param(self, stmt: ast.Param, reporter: StepReporter) -> StepOutcome:
        assert stmt.default is not None
        if stmt.name in self.variables:
            return StepOutcome(outcomes.DONE, f"{stmt.name} = {self.variables[stmt.name]} (given)")
        self.variables[stmt.name] = self.word(stmt.default)
        return StepOutcome(outcomes.DONE, f"{stmt.name} = {self.variables[stmt.name]} (default)")

    def visit_echo(self, stmt: ast.Echo, reporter: StepReporter) -> StepOutcome:
        reporter.note(" ".join(self.word(w) for w in stmt.words))
        return StepOutcome(outcomes.DONE)

    def visit_allocate(self, stmt: ast.Allocate, reporter: StepReporter) -> StepOutcome:
        text = self.word(stmt.count_word)
        try:
            cpus = int(text)
            if cpus < 0:
                raise ValueError
        except ValueError:
            span = stmt.count_word.span
            raise RecipeError(
                f"expected a number of CPUs for 'allocate', got {text!r}", span, source_line(span)
            ) from None
        return site_allocate(self, cpus, reporter) or self.allocate(cpus, reporter)

    def allocate(self, cpus: int, reporter: StepReporter) -> StepOutcome:
        """Take the VC's leases and make its private network; a fresh allocation whose
        network cannot be made is released again, so a failure takes nothing."""
        fresh = alloc_mod.current_allocation(self.ledger, self.vcname) is None
        if self.memory is not None and fresh:
            planned = len(alloc_mod.plan_compute_cpus(self.site, self.vcin, cpus))
            check_vc_fits(
                self.memory,
                {"frontend": 1, "compute": planned},
                host_memory_mib(self.engine),
                self.site.uri,
            )
        hosts = placement_input(self.site, self.engine, reporter.note) if fresh else None
        allocation = alloc_mod.allocate(
            self.ledger,
            self.site,
            self.vcname,
            self.vcin,
            cpus,
            check_vlan=lambda vlan: private_network.check(
                self.engine, self.private_network_plan(vlan)
            ),
            hosts=hosts.hosts if hosts else None,
            left_out=hosts.left_out if hosts else None,
            memory_mib=self.memory.to_json() if self.memory else None,
        )
        self.adopt(allocation)
        try:
            made = self.ensure_private_network()
        except BaseException:
            if fresh:
                alloc_mod.release(self.ledger, self.vcname)
                self.allocation = None
                self.nodes = {}
            raise
        plan = self.private_network_plan(allocation.vlan)
        vc_out = alloc_mod.build_vc_out(allocation, self.vcin, self.site, key=self.key)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        write_vc_out(vc_out, self.vc_out_path)
        computes = allocation.computes
        msg = (
            f"{allocation.public.fqdn} ({allocation.public.ip}), VLAN {allocation.vlan}, "
            f"{len(computes)} compute{'s' if len(computes) != 1 else ''} "
            f"({sum(c.cpus for c in computes)} CPUs)"
        )
        if made is not None:
            msg += f"; {made.message}"
        msg += placement_words(allocation, self.site)
        return StepOutcome(
            outcomes.DONE,
            msg,
            {
                "public_ip": allocation.public.ip,
                "fqdn": allocation.public.fqdn,
                "vlan": str(allocation.vlan),
                "nodes": " ".join([allocation.frontend.name, *(c.name for c in computes)]),
                "vc_out": str(self.vc_out_path),
                "private_network": plan.attach,
                **placement_products(allocation, self.site),
            },
        )

    def visit_fix(self, stmt: ast.Fix, reporter: StepReporter) -> StepOutcome:
        assert stmt.method is not None
        method = self.word(stmt.method)
        nodes = self.targets(stmt.targets, stmt)
        ctx = self.context(reporter)
        if self.disk_work.simulated:
            what = (
                f"fix via {method} (pre_fix, fix, post_fix) for {', '.join(n.name for n in nodes)}"
            )
            return StepOutcome(outcomes.SKIPPED, self.disk_work.skipped(what, nodes))
        return self.fix(nodes, method, ctx, reporter)

    def fix(
        self, nodes: Sequence[NodePlan], method: str, ctx: StageContext, reporter: StepReporter
    ) -> StepOutcome:
        """Each distinct image fixed once (or found in the cache); nodes overlay the result.

        Under a site's script engine ``virt-v2v`` is its fix_driver (:func:`engine_fix`)."""
        used, site_fix = engine_fix(self.engine, method, reporter.note)
        fixer = ImageFixer(
            distro=self.distro,
            cache_dir=self.site.image_cache,
            folder=self.folder,
            staging=self.site.staging,
            ctx=ctx,
            call_stage=lambda stage, call, *args: call_stage(stage, reporter, call, *args),
            template_source=lambda node: template_source(self.vcin, node),
            is_running=lambda name: self.engine.state(name) == domain_states.RUNNING,
            site_fix=site_fix,
        )
        report = fixer.fix(nodes, used)
        for name, disk in report.disks.items():
            self.set_disks(name, (disk, *self.nodes[name].disks[1:]))
        products = {name: str(disk) for name, disk in report.disks.items()}
        for base in report.bases:
            products[f"base {base.key.digest[:12]}"] = str(base.path)
        images = len(report.bases)
        via = method if used == method else f"{method} (done as {used}: no fix_driver)"
        if site_fix is not None:
            via += f" (the site's fix_driver, {self.engine.name})"
        msg = (
            f"{images} image{'s' if images != 1 else ''} for {len(nodes)} node(s) via {via}, "
            f"{report.conversions} fixed now: " + "; ".join(report.lines)
        )
        return StepOutcome(outcomes.DONE, msg, products)

    def visit_boot(self, stmt: ast.Boot, reporter: StepReporter) -> StepOutcome:
        return self.boot(self.targets(stmt.targets, stmt), reporter)

    def boot(self, nodes: Sequence[NodePlan], reporter: StepReporter) -> StepOutcome:
        """Stage, pre_boot and start the nodes, up to the site's boot_parallelism at once.

        Files go in with one appliance launch, or none for seeds (:mod:`~pragmash.engine.steps.boot`).
        """
        if not nodes:
            return StepOutcome(outcomes.SKIPPED, "no nodes selected (the VC has no such nodes)")
        ctx = self.context(reporter)
        made = self.ensure_private_network()
        if private_network.made_anew(made):
            assert made is not None
            reporter.note(f"private network was missing: {made.message}")
        if self.disk_work.real:  # pre_boot puts each node's vc-out file into its disk
            self.repair_vc_out()
        pipeline = BootPipeline(
            engine=self.engine,
            distro=self.distro,
            folder=self.folder,
            staging=self.site.staging,
            cache_dir=self.site.image_cache,
            ctx=ctx,
            reporter=reporter,
            interrupted=self.interrupted,
            workers=self.site.boot_parallelism,
            disk_work=self.disk_work.real,
            before_start=host_disks_for(self.site, self.engine, self.disk_work, ctx),
        )
        # a seeded node boots with the recipe's $cloud_config as it is at this step
        planned = [seeding.plan_now(self.nodes, n.name, self.variables) for n in nodes]
        try:
            results = pipeline.run(planned)
        finally:  # the disks staged, even by a boot that failed, are the nodes' now
            for name, disk in pipeline.staged.items():
                self.set_disks(name, (disk, *self.nodes[name].disks[1:]))
        started = [n.name for n in nodes if results[n.name] == f"{n.name} started"]
        others = [results[n.name] for n in nodes if results[n.name] != f"{n.name} started"]
        # a node that was already running is said so: "started" would hide a stale domain
        msg = "; ".join(([f"started {', '.join(started)}"] if started else []) + others)
        if self.disk_work.simulated:
            msg += self.disk_work.boot_note(nodes)
        return StepOutcome(outcomes.DONE, msg, results | pipeline.appliance)

    def visit_wait_clock(self, stmt: ast.WaitClock, reporter: StepReporter) -> StepOutcome:
        assert stmt.duration is not None
        seconds = self.seconds(stmt.duration, "wait")
        if self.disk_work.simulated:
            return StepOutcome(outcomes.SKIPPED, self.disk_work.clock_skipped(seconds))
        sleep_with_progress(seconds, reporter, self.sleep)
        return StepOutcome(outcomes.DONE, f"waited {seconds:g} s")

    def visit_wait_state(self, stmt: ast.WaitState, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        timeout = self.seconds(stmt.timeout_word, "timeout")
        if stmt.state == "up":
            return self.wait_for(nodes, Goal("up"), timeout, reporter)
        return self.wait_for(
            nodes, Goal("state", state=stmt.state.replace("_", " ")), timeout, reporter
        )

    def visit_wait_console(self, stmt: ast.WaitConsole, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        assert stmt.expect is not None
        timeout = self.seconds(stmt.timeout_word, "timeout")
        goal = Goal("console", text=self.word(stmt.expect))
        return self.wait_for(nodes, goal, timeout, reporter)

    def wait_for(
        self, nodes: Sequence[NodePlan], goal: Goal, timeout: float, reporter: StepReporter
    ) -> StepOutcome:
        """Wait until every node reaches ``goal``; fail at once if one stops for good."""
        return wait_for_goal(
            self.engine,
            nodes,
            goal,
            timeout,
            reporter,
            self.sleep,
            self.clock,
            disk_work=self.disk_work,
        )

    def visit_engine_call(self, stmt: ast.EngineCall, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        ctx = self.context(reporter)
        if stmt.op == "state":
            for node in nodes:
                reporter.note(f"{node.name}: {self.engine.state(node.name)}")
            return StepOutcome(outcomes.DONE)
        if stmt.op == "shutdown":
            stopped = [n.name for n in nodes if self.engine.shutdown(n.name, 120.0, ctx)]
            return StepOutcome(outcomes.DONE, f"stopped {', '.join(stopped) or 'nothing'}")
        for node in nodes:
            self.engine.destroy(node.name)
        return StepOutcome(outcomes.DONE, f"destroyed {', '.join(n.name for n in nodes)}")

    def visit_distro_call(self, stmt: ast.DistroCall, reporter: StepReporter) -> StepOutcome:
        nodes = self.targets(stmt.targets, stmt)
        ctx = self.context(reporter)
        if self.disk_work.simulated:
            return StepOutcome(
                outcomes.SKIPPED, self.disk_work.skipped(f"run {stmt.written_as} on", nodes)
            )
        pairs = [(node, self.stage(node, ctx)) for node in nodes]
        self.repair_vc_out()
        call_distro_stages(stmt.stage, self.distro, pairs, self.vc_out_path, ctx, reporter)
        return StepOutcome(
            outcomes.DONE, f"{stmt.written_as} on {', '.join(n.name for n in nodes)}"
        )

    def visit_script_call(self, stmt: ast.ScriptCall, reporter: StepReporter) -> StepOutcome:
        return folder_script_call(self, stmt, [self.word(w) for w in stmt.args], reporter)

    def allowed(self, stmt: ast.Run | ast.Exec) -> None:
        """The site's (or the command line's) leave to run commands: one gate for ``run``
        and ``exec``, as the checker's."""
        if not (self.allow_run or self.site.allow_run):
            raise UserError(f"{stmt.span}: '{stmt.kind}' is refused: {COMMANDS_REFUSED}")

    def visit_run(self, stmt: ast.Run, reporter: StepReporter) -> StepOutcome:
        self.allowed(stmt)
        return run_host_command([self.word(w) for w in stmt.argv], reporter)

    def visit_exec(self, stmt: ast.Exec, reporter: StepReporter) -> StepOutcome:
        self.allowed(stmt)
        nodes = self.targets(stmt.targets, stmt)
        argv = [self.word(w) for w in stmt.argv]
        timeout = self.seconds(stmt.timeout_word, "timeout")
        if self.disk_work.simulated:
            require_running(self.engine, [n.name for n in nodes], argv[0])
            names = ", ".join(n.name for n in nodes)
            return StepOutcome(
                outcomes.SKIPPED, self.disk_work.no_guest(f"runs {argv[0]} on {names}", nodes)
            )
        return exec_on_nodes(self.guests(), nodes, argv, timeout, reporter)

    def visit_handler(self, stmt: ast.Handler, reporter: StepReporter) -> StepOutcome:
        sign = "+N" if stmt.event == "grow" else "-N"
        return StepOutcome(outcomes.DONE, f"kept for `pragmash scale {self.vcname} {sign}`")

    def _ssh_access(self) -> VcAccess:
        if not self.site.ssh_to_guests:
            raise UserError(f"{self.site.source}: [policy] ssh_to_guests = false")
        return vc_access(self.site, self.vcname)

    def guests(self) -> GuestReach:
        """The way into this VC's running nodes (guest agent, else ssh with its key)."""
        return GuestReach(
            self.engine,
            self._ssh_access,
            Clock(self.sleep, self.clock, self.interrupted.is_set),
        )

    # -- disk work (real engines only) ------------------------------------------------

    def stage(self, node: NodePlan, ctx: StageContext) -> Path:
        """The node's own first disk, staged on first need (a COW overlay or a copy)."""
        staged = self.folder.stage(
            node, mode=self.site.staging, cache_dir=self.site.image_cache, progress=ctx.progress
        )
        self.set_disks(node.name, (staged, *node.disks[1:]))
        return staged

    def set_disks(self, name: str, disks: Sequence[str | Path]) -> None:
        """The one place a node's disks change (staged, fixed, reloaded); called from the
        step's own thread only: boot workers report what they staged instead."""
        self.nodes[name] = with_disks(self.nodes[name], disks)
