"""What each step of a ``pragmash scale`` run does (the run itself: :mod:`~pragmash.engine.commands.scale`).

A scale is a run like a recipe's, journaled step by step, so it shows progress the
same way and ``resume`` continues it from its first unfinished step. Its steps are
made by pragmash, not read from a file:

growing from F to T computes::

    lease compute[F:T]    take the new computes' MACs, addresses and CPUs (one
                          transaction); rewrite vc-out.xml for the whole VC
    stage compute[F:T]    each new node an overlay on the base the VC's computes use
                          (the fixed base where a ``fix`` made one)
    boot compute[F:T]     pre_boot (the whole VC's vc-out.xml, one libguestfs launch
                          for all of them) and start, as ``boot`` does
    wait compute[F:T] up  as ``wait … up`` does: the distro's (or site's) sign of life

shrinking from F to T computes (the highest-numbered go)::

    destroy compute[T:F]  force off and undefine, highest first
    remove compute[T:F]   their disks and console logs
    release compute[T:F]  give back their MACs, addresses and CPUs; rewrite vc-out.xml

and both end with::

    refresh all           every running node receives its current vc-out without a
                          reboot (:mod:`~pragmash.engine.commands.refresh`: guest agent, else
                          ssh); a node neither reaches is named with how to update it,
                          and does not fail the scale
    on grow …             the recipe's handlers for the direction, each a step
                          (:mod:`~pragmash.engine.steps.handlers`)

Every step is idempotent (a lease already taken, an overlay already made, a domain
already running or already gone, a file written again are all fine), which is what
``resume`` needs. Nodes that were running before the scale are not restarted: they
learn of it through the refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, assert_never

from pragmash import domain_states, outcomes
from pragmash.driver_api import NodePlan
from pragmash.engine.commands.refresh import refresh_step, rewrite_vc_out
from pragmash.engine.hosts.capacity import placement_input
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.run.mem_option import check_vc_fits, host_memory_mib
from pragmash.engine.run.runtime import Runtime
from pragmash.engine.steps.handlers import HandlerStep, run_handler
from pragmash.engine.steps.readiness import Goal
from pragmash.errors import Span
from pragmash.images.basecache import base_meta, is_fixed_base
from pragmash.images.staging import backing_of, content_digest, stage_image
from pragmash.language import ast
from pragmash.store import resize
from pragmash.store.allocation import Allocation
from pragmash.store.history import steps_since_allocation
from pragmash.vc.formats.names import compute_name

Action = Literal["lease", "stage", "boot", "wait", "destroy", "remove", "release", "refresh"]

#: The file name a scale run's steps are shown and journaled under.
SCALE_FILE = "scale"


@dataclass(frozen=True)
class ScaleStep(ast.MadeStep):
    """One step of a scale run: ``action`` on the computes ``first`` to ``stop - 1``."""

    action: Action = "lease"
    first: int = 0
    stop: int = 0

    @property
    def kind(self) -> str:
        return "scale"

    def names(self, vcname: str) -> list[str]:
        """The step's nodes by name (highest first when they are going away)."""
        names = [compute_name(vcname, i) for i in range(self.first, self.stop)]
        return names[::-1] if self.action in ("destroy", "remove", "release") else names


def scale_program(before: int, after: int, handlers: Sequence[HandlerStep] = ()) -> ast.Program:
    """The steps that take a VC from ``before`` computes to ``after``, then the recipe's
    handlers for that direction (:mod:`~pragmash.engine.steps.handlers`)."""
    growing = after > before
    actions: tuple[Action, ...] = (
        ("lease", "stage", "boot", "wait", "refresh")
        if growing
        else ("destroy", "remove", "release", "refresh")
    )
    first, stop = (before, after) if growing else (after, before)
    steps = []
    for line, action in enumerate(actions, start=1):
        text = f"{action} compute[{first}:{stop}]" + (" up" if action == "wait" else "")
        if action == "refresh":
            text = "refresh all"
        span = Span(SCALE_FILE, line, 1, line, len(text) + 1)
        steps.append(ScaleStep(span, text, action, first, stop))
    made: list[ast.Statement] = [*steps, *handlers]
    return ast.Program(SCALE_FILE, "\n".join(s.text for s in made) + "\n", tuple(made))


def grow_room(runtime: Runtime, note: Callable[[str], None]) -> resize.Room:
    """Where the VC's new computes may go: the hosts that answer now (each one that does
    not is named through ``note``), and the memory the VC's run gave its computes."""
    hosts = placement_input(runtime.site, runtime.engine, note)
    return resize.Room(
        hosts.hosts, hosts.left_out, runtime.memory.to_json() if runtime.memory else None
    )


@dataclass
class ScaleExecutor:
    """Carries out a scale run's steps against the VC's runtime (its drivers and nodes)."""

    runtime: Runtime
    timeout: float  # for the wait step

    def execute(self, statement: ast.Statement, reporter: StepReporter) -> StepOutcome:
        if isinstance(statement, HandlerStep):
            return self.runtime.guarded(
                lambda step, rep: run_handler(self.runtime, step, rep), statement, reporter
            )
        assert isinstance(statement, ScaleStep)
        return self.runtime.guarded(self._handler(statement.action), statement, reporter)

    def _handler(self, action: Action) -> Callable[[ScaleStep, StepReporter], StepOutcome]:
        """The method that does ``action`` (mypy checks every action has one)."""
        match action:
            case "lease":
                return self._lease
            case "stage":
                return self._stage
            case "boot":
                return self._boot
            case "wait":
                return self._wait
            case "destroy":
                return self._destroy
            case "remove":
                return self._remove
            case "release":
                return self._release
            case "refresh":
                return self._refresh
            case _:
                assert_never(action)

    # -- helpers ----------------------------------------------------------------------

    def _nodes(self, step: ScaleStep) -> list[NodePlan]:
        return [self.runtime.nodes[name] for name in step.names(self.runtime.vcname)]

    def _write_vc_out(self, held: Allocation) -> str:
        """vc-out.xml for the whole VC as it is now; words for the step's message."""
        runtime = self.runtime
        runtime.adopt(held)
        rewrite_vc_out(runtime)
        count = len(held.computes)
        return f"vc-out.xml rewritten: {count} compute{'' if count == 1 else 's'}"

    # -- growing ----------------------------------------------------------------------

    def _lease(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        runtime = self.runtime

        def memory_fits(held: Allocation, count: int) -> None:
            if runtime.memory is not None:
                check_vc_fits(
                    runtime.memory,
                    {"frontend": 1, "compute": len(held.computes) + count},
                    host_memory_mib(runtime.engine),
                    runtime.site.uri,
                )

        site = runtime.site
        held = resize.grow(
            runtime.ledger,
            site,
            runtime.vcin,
            runtime.vcname,
            step.stop,
            room=grow_room(runtime, reporter.note),
            check=memory_fits,
        )
        said = self._write_vc_out(held)
        new = [n for n in held.computes if n.index is not None and n.index >= step.first]
        leases = ", ".join(
            f"{n.name} ({n.private_ip}, {n.macs[0]}, {n.cpus} CPU"
            + (f", on {n.host})" if site.multi_host else ")")
            for n in new
        )
        products = {n.name: n.private_ip for n in new} | {"vc_out": str(runtime.vc_out_path)}
        if site.multi_host:
            products["hosts"] = " ".join(f"{n.name}={n.host}" for n in new)
        return StepOutcome(outcomes.DONE, f"{leases}; {said}", products)

    def _stage(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        runtime = self.runtime
        nodes = self._nodes(step)
        if runtime.disk_work.simulated:
            what = f"stage for {', '.join(n.name for n in nodes)}"
            return StepOutcome(outcomes.SKIPPED, runtime.disk_work.skipped(what, nodes))
        ctx = runtime.context(reporter)
        base, whence = self.base_of_new_computes(step.first)
        products: dict[str, str] = {}
        for node in nodes:
            if base is None:
                disk = runtime.stage(node, ctx)
            else:
                disk = stage_image(
                    base,
                    runtime.folder.disks,
                    node.name,
                    mode=runtime.site.staging,
                    cache_dir=runtime.site.image_cache,
                    progress=ctx.progress,
                )
                runtime.set_disks(node.name, (disk, *node.disks[1:]))
            products[node.name] = str(disk)
        return StepOutcome(outcomes.DONE, f"{len(nodes)} disk(s) on {whence}", products)

    def base_of_new_computes(self, first: int) -> tuple[Path | None, str]:
        """The image the VC's computes are on, and where that was learnt.

        An existing compute's overlay names its base; under ``staging = "copy"`` (or a
        VC without computes) the fix steps the journal recorded do, when one made a base
        from the compute template's image. Otherwise the template's image, unfixed, as
        a ``boot`` without ``fix`` would stage it.
        """
        runtime = self.runtime
        if runtime.site.staging == "overlay":
            for index in range(first):
                staged = runtime.folder.staged(compute_name(runtime.vcname, index), "overlay")
                backing = backing_of(staged) if staged.is_file() else None
                if backing is not None and backing.is_file():
                    fixed = (
                        "the fixed base"
                        if is_fixed_base(backing, runtime.site.image_cache)
                        else "the image"
                    )
                    return backing, f"{fixed} {backing} ({staged.stem}'s)"
        template = runtime.vcin.compute
        if template is None or not template.disk_paths or not template.disk_paths[0].is_file():
            return None, "the compute template's image (no fixed base found for this VC)"
        # a base is keyed by its image's content: the frontend's file may have made it
        digest = content_digest(template.disk_paths[0], runtime.site.image_cache)
        for past in reversed(steps_since_allocation(runtime.ledger, runtime.vcname)):
            if past.outcome != outcomes.DONE or not past.text.startswith("fix"):
                continue
            for value in past.products.values():
                path = Path(value)
                if is_fixed_base(path, runtime.site.image_cache) and (
                    base_meta(path).get("image_sha256") == digest
                ):
                    return path, f"the fixed base {path} (journal of '{past.text}')"
        return None, "the compute template's image (no fixed base found for this VC)"

    def _boot(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        return self.runtime.boot(self._nodes(step), reporter)

    def _wait(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        return self.runtime.wait_for(self._nodes(step), Goal("up"), self.timeout, reporter)

    # -- shrinking --------------------------------------------------------------------

    def _destroy(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        engine = self.runtime.engine
        said: list[str] = []
        products: dict[str, str] = {}
        for name in step.names(self.runtime.vcname):
            state = engine.state(name)
            if state == domain_states.ABSENT:
                said.append(f"{name} (gone already)")
                continue
            engine.destroy(name)
            said.append(f"{name} (was {state})")
            products[name] = "destroyed"
        return StepOutcome(outcomes.DONE, "destroyed " + ", ".join(said), products)

    def _remove(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        removed: list[Path] = []
        for name in step.names(self.runtime.vcname):
            for path in self.runtime.folder.node_files(name):
                if path.is_file():
                    path.unlink()
                    removed.append(path)
        if not removed:
            return StepOutcome(outcomes.DONE, "no disk or console log to remove")
        return StepOutcome(
            outcomes.DONE,
            "removed " + ", ".join(p.name for p in removed),
            {p.name: str(p) for p in removed},
        )

    def _refresh(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        return refresh_step(self.runtime, reporter, strict=False)

    def _release(self, step: ScaleStep, reporter: StepReporter) -> StepOutcome:
        runtime = self.runtime
        held, released = resize.shrink(runtime.ledger, runtime.vcname, step.first)
        said = self._write_vc_out(held)
        what = f"released {', '.join(released)}" if released else "released already"
        return StepOutcome(outcomes.DONE, f"{what}; {said}", {"vc_out": str(runtime.vc_out_path)})
