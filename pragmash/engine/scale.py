"""``pragmash scale VC +N`` / ``-N``: grow or shrink a running VC, as a run of its own.

A scale is journaled like a recipe's run (a run record with its steps, shown by
``status`` and ``list``), holds the VC's lock while it goes (so it never runs beside
another run on the same VC), shows progress through the same events, and is
continued by ``pragmash resume VC`` (or by the same ``scale`` command again) after
a failure, a crash or Ctrl-C. Its steps are pragmash's own
(:mod:`~pragmash.engine.scalesteps`); the VC's recipe is not read again, but the
options its run was started with are (repository, site, ``--key``, ``--mem``), so the
new nodes are made the way the first ones were.

Refused before anything is locked or taken: a VC with no allocation, a VC whose
recipe run did not finish (resume or clean it first), ``-N`` beyond the computes
there, and ``+N`` beyond the site's capacity (the lease step checks again inside
its transaction). The plan itself (which computes before, which after) is made again
from the ledger once the lock is held, so two admins' scales of one VC add up.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from pragmash.engine.events import EventSink, ignore
from pragmash.engine.interpreter import Interpreter
from pragmash.engine.overrides import check_nodes_fit, effective_memory, host_memory_mib
from pragmash.engine.registry import load_distro, load_engine
from pragmash.engine.runtime import Runtime
from pragmash.engine.scalesteps import ScaleExecutor, grow_room, scale_program
from pragmash.engine.session import (
    Prepared,
    Run,
    RunOptions,
    check_work_folders,
    open_site,
    provide,
)
from pragmash.errors import LedgerError, UserError
from pragmash.images.domain import resolve_domain_type
from pragmash.store import resize
from pragmash.store.allocation import Allocation, current_allocation
from pragmash.store.journal import (
    Journal,
    RunRecord,
    acquire_lock,
    last_run,
    lock_holder,
    release_lock,
    run_outcome,
    set_lock_run,
    steps_of,
)
from pragmash.store.ledger import Ledger
from pragmash.vc.http_repository import open_repository
from pragmash.vc.names import validate_name
from pragmash.vc.vcin import load_vc_in

#: How long the new computes get to come up, unless ``--timeout`` says otherwise.
DEFAULT_TIMEOUT = 600.0

_CHANGE = re.compile(r"[+-][0-9]{1,6}")


def parse_change(text: str) -> int:
    """``+2`` (add two computes) or ``-3`` (remove the three highest-numbered)."""
    if not _CHANGE.fullmatch(text.strip()) or int(text) == 0:
        raise UserError(
            f"scale {text!r}: expected +N (add N computes) or -N (remove the N "
            "highest-numbered), N at least 1"
        )
    return int(text)


@dataclass(frozen=True)
class ScalePlan:
    """What a scale run does: the VC's computes before and after, and the wait's timeout."""

    before: int
    after: int
    timeout: float

    @property
    def change(self) -> str:
        return f"{self.after - self.before:+d}"

    def describe(self) -> str:
        return f"scale {self.change} ({self.before} -> {self.after} computes)"

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "timeout": self.timeout}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScalePlan:
        return cls(int(data["before"]), int(data["after"]), float(data["timeout"]))


def is_scale(record: RunRecord) -> bool:
    """Whether a journaled run is a scale (its options hold the plan)."""
    return isinstance(record.options.get("scale"), dict)


def last_is_scale(vcname: str, site: str | None = None) -> bool:
    """Whether the VC's last run is a scale (``resume`` then continues it here)."""
    record = last_run(Ledger(open_site(site)), validate_name("VC name", vcname))
    return record is not None and is_scale(record)


def start(
    vcname: str,
    change: int,
    *,
    site: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink = ignore,
) -> Run:
    """Lock the VC and open a scale run (nothing has run yet); or continue an unfinished one.

    Raises a UserError (nothing changed) when the scale cannot be done.
    """
    vcname = validate_name("VC name", vcname)
    site_cfg = open_site(site)
    ledger = Ledger(site_cfg)
    held = current_allocation(ledger, vcname)
    record = last_run(ledger, vcname)
    if held is None or record is None:
        raise UserError(
            f"{vcname} holds no allocation in {site_cfg.ledger_path}: only a VC a run "
            "allocated can be scaled",
            hint=f"start it with `pragmash RECIPE --vcname {vcname}`",
        )
    holder = lock_holder(ledger, vcname)
    outcome = run_outcome(record, holder)
    if outcome == "running":
        acquire_lock(ledger, vcname)  # raises BusyError naming the holder
    if is_scale(record) and outcome in ("failed", "interrupted"):
        pending = ScalePlan.from_json(record.options["scale"])
        if pending.after == pending.before + change:
            run = resume(vcname, site=site, on_event=on_event)
            run.notes.append(
                f"{vcname}: run {record.id} ({pending.describe()}) was {outcome}: continuing it"
            )
            return run
        raise UserError(
            f"{vcname}: run {record.id} ({pending.describe()}) did not finish ({outcome})",
            hint=f"`pragmash resume {vcname}` finishes it first",
        )
    if not is_scale(record) and outcome not in ("finished", "cleaned"):
        raise UserError(
            f"{vcname}: its run {record.id} ({record.recipe}) is {outcome}, not finished: "
            "a VC is scaled once it is up",
            hint=f"`pragmash resume {vcname}` finishes it (or `pragmash clean {vcname}`)",
        )
    before = len(held.computes)
    plan = ScalePlan(before, before + change, timeout)
    if plan.after < 0:
        raise UserError(
            f"scale {change:+d}: {vcname} has {before} compute(s), so at most -{before} "
            "can be removed; nothing was changed"
        )
    options = _options(record, site)
    prep = _prepare(options, plan, on_event)
    if change > 0:
        prep.runtime.engine.check()
        room = grow_room(prep.runtime, lambda _text: None)  # the lease step names left-outs
        short = resize.grow_shortage(ledger, site_cfg, prep.vcin, vcname, change, room)
        if short is not None:
            raise UserError(f"{short}; nothing was taken", hint="scale by fewer computes")
    _ready(prep)
    acquire_lock(ledger, vcname)
    try:
        held, plan = _plan_locked(ledger, vcname, record, plan, change)
        prep.program = scale_program(plan.before, plan.after)
        journal = Journal.start(
            ledger,
            vcname,
            plan.describe(),
            {**options.to_json(), "scale": plan.to_json()},
        )
        set_lock_run(ledger, vcname, journal.run_id)
    except BaseException:
        with contextlib.suppress(LedgerError):
            release_lock(ledger, vcname)
        raise
    prep.runtime.adopt(held)
    executor = ScaleExecutor(prep.runtime, plan.timeout)
    interp = Interpreter(prep.program, executor, journal=journal, on_event=on_event)
    return Run(prep, interp, journal)


def _plan_locked(
    ledger: Ledger, vcname: str, seen: RunRecord, plan: ScalePlan, change: int
) -> tuple[Allocation, ScalePlan]:
    """The VC's allocation and the scale's plan, read again now that the lock is held.

    What was read before the lock (while the repository was fetched and the engine
    checked) may be stale: another scale of the VC may have ended in between. The
    change (``+N``/``-N``) is applied to the computes the ledger holds now, so two
    ``+1`` make two, and a ``-1`` destroys the node whose lease it releases.
    """
    held = current_allocation(ledger, vcname)
    record = last_run(ledger, vcname)
    if held is None or record is None:
        raise UserError(f"{vcname} was cleaned while this scale prepared; nothing was changed")
    if record.id != seen.id and record.outcome != "finished":
        raise UserError(
            f"{vcname}: run {record.id} ({record.recipe}) ran while this scale prepared and "
            f"is {record.outcome}; nothing was changed",
            hint=f"`pragmash resume {vcname}` finishes it first",
        )
    before = len(held.computes)
    if before + change < 0:
        raise UserError(
            f"scale {change:+d}: {vcname} has {before} compute(s) now (another scale ran "
            f"meanwhile), so at most -{before} can be removed; nothing was changed"
        )
    return held, ScalePlan(before, before + change, plan.timeout)


def resume(vcname: str, *, site: str | None = None, on_event: EventSink = ignore) -> Run:
    """Reopen the VC's last run, a scale, at its first unfinished step."""
    vcname = validate_name("VC name", vcname)
    ledger = Ledger(open_site(site))
    record = last_run(ledger, vcname)
    if record is None or not is_scale(record):
        raise UserError(f"{vcname}'s last run is not a scale")
    if record.outcome in ("finished", "cleaned"):
        raise UserError(
            f"{vcname}'s last run ({record.id}, a scale) {record.outcome}; there is nothing "
            "to resume"
        )
    plan = ScalePlan.from_json(record.options["scale"])
    prep = _prepare(_options(record, site), plan, on_event)
    steps = steps_of(ledger, record.id)
    done = {s.idx for s in steps if s.outcome in ("done", "skipped")}
    count = len(prep.program.statements)
    start_at = next((i for i in range(count) if i not in done), count)
    _ready(prep)
    acquire_lock(ledger, vcname, record.id)
    journal = Journal(ledger, record.id)
    try:
        journal.reopen()
        held = current_allocation(ledger, vcname)
        if held is None:
            raise UserError(f"{vcname} holds no allocation any more: the scale cannot go on")
        prep.runtime.adopt(held)
    except BaseException:
        with contextlib.suppress(LedgerError):
            release_lock(ledger, vcname)
        raise
    executor = ScaleExecutor(prep.runtime, plan.timeout)
    interp = Interpreter(
        prep.program, executor, journal=journal, on_event=on_event, start_at=start_at
    )
    return Run(prep, interp, journal)


def _options(record: RunRecord, site: str | None) -> RunOptions:
    """The options the VC's run was started with (a scale journals them again)."""
    options = RunOptions.from_json(record.options)
    if site:
        options.site = site
    return options


def _prepare(options: RunOptions, plan: ScalePlan, on_event: EventSink) -> Prepared:
    """The VC's site, vc-in, drivers and runtime, as its run had them; images made local
    (and verified) when the VC grows."""
    vcname = options.vcname
    site = open_site(options.site)
    check_work_folders(site, vcname)
    repo = open_repository(options.base_path or site.repository, site.image_cache)
    vc_in_path = repo.vc_in_path(vcname)
    vcin = load_vc_in(vc_in_path, shown=repo.shown(vc_in_path))
    ledger = Ledger(site)
    runtime = Runtime(
        site=site,
        vcname=vcname,
        vcin=vcin,
        ledger=ledger,
        engine=load_engine(site),
        distro=load_distro(vcin.driver, site, where=f"{vcin.path}: /vc/driver"),
        variables=dict(options.sets),
        allow_run=options.allow_run,
        key=options.key,
        memory=effective_memory(vcin, options.mem),
    )
    prep = Prepared(
        options, site, vcin, scale_program(plan.before, plan.after), runtime, ledger, repo
    )
    if plan.after > plan.before:
        provide(prep, on_event)
    return prep


def _ready(prep: Prepared) -> None:
    """The engine answers; the domain type and the nodes' memory are settled."""
    runtime = prep.runtime
    runtime.engine.check()
    runtime.domain_type = resolve_domain_type(
        prep.site.domain_type, prep.vcin.frontend.domain_type, runtime.engine.host_info()
    )
    if runtime.memory is not None:
        check_nodes_fit(runtime.memory, host_memory_mib(runtime.engine), prep.site.uri)
