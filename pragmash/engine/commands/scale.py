"""``pragmash scale VC +N`` / ``-N``: grow or shrink a running VC, as a run of its own.

A scale is journaled like a recipe's run (a run record with its steps, shown by
``status`` and ``list``), holds the VC's lock while it goes (so it never runs beside
another run on the same VC), shows progress through the same events, and is
continued by ``pragmash resume VC`` (or by the same ``scale`` command again) after
a failure, a crash or Ctrl-C. Its steps are pragmash's own
(:mod:`~pragmash.engine.steps.scale_steps`), then the recipe's ``on grow``/``on shrink``
handlers (:mod:`~pragmash.engine.steps.handlers`, the only part of the recipe read again);
the options its run was started with are read (repository, site, ``--key``, ``--mem``), so the
new nodes are made the way the first ones were.

Refused before anything is locked or taken: a VC with no allocation, a VC on the
site's own script engine (:func:`~pragmash.engine.steps.folder_scripts.scale_refusal`: its
scripts cannot add or remove nodes), a VC whose
recipe run did not finish (resume or clean it first), ``-N`` beyond the computes
there, and ``+N`` beyond the site's capacity (the lease step checks again inside
its transaction). The plan itself (which computes before, which after) is made again
from the ledger once the lock is held, so two admins' scales of one VC add up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pragmash import outcomes
from pragmash.engine.commands.vcin_drift import vcin_changes
from pragmash.engine.run.events import EventSink, ignore
from pragmash.engine.run.opening import (
    OpenSite,
    Prepared,
    Run,
    RunOptions,
    begin,
    load,
    make_ready,
    opened_site,
    reopen,
)
from pragmash.engine.run.session import provide
from pragmash.engine.steps.folder_scripts import scale_refusal
from pragmash.engine.steps.handlers import scale_handlers
from pragmash.engine.steps.scale_steps import ScaleExecutor, grow_room, scale_program
from pragmash.errors import UserError
from pragmash.store import resize
from pragmash.store.allocation import Allocation
from pragmash.store.journal import RunRecord, acquire_lock, lock_holder, run_outcome
from pragmash.vc.formats.names import validate_name

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


def last_is_scale(vcname: str, site: str | OpenSite | None = None) -> bool:
    """Whether the VC's last run is a scale (``resume`` then continues it here)."""
    record = opened_site(site).last_run(validate_name("VC name", vcname))
    return record is not None and is_scale(record)


def start(
    vcname: str,
    change: int,
    *,
    site: str | OpenSite | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink = ignore,
) -> Run:
    """Lock the VC and open a scale run (nothing has run yet); or continue an unfinished one.

    Raises a UserError (nothing changed) when the scale cannot be done.
    """
    vcname = validate_name("VC name", vcname)
    opened = opened_site(site)
    ledger = opened.ledger
    held, record = opened.allocated(
        vcname,
        nothing="only a VC a run allocated can be scaled",
        hint=f"start it with `pragmash RECIPE --vcname {vcname}`",
    )
    refused = scale_refusal(opened.config, vcname, change)
    if refused is not None:
        raise refused
    holder = lock_holder(ledger, vcname)
    outcome = run_outcome(record, holder)
    if outcome == outcomes.RUNNING:
        acquire_lock(ledger, vcname)  # raises BusyError naming the holder
    if is_scale(record) and outcome in (outcomes.FAILED, outcomes.INTERRUPTED):
        pending = ScalePlan.from_json(record.options["scale"])
        if pending.after == pending.before + change:
            run = resume(vcname, site=opened, on_event=on_event)
            run.notes.append(
                f"{vcname}: run {record.id} ({pending.describe()}) was {outcome}: continuing it"
            )
            return run
        raise UserError(
            f"{vcname}: run {record.id} ({pending.describe()}) did not finish ({outcome})",
            hint=f"`pragmash resume {vcname}` finishes it first",
        )
    if not is_scale(record) and outcome not in (outcomes.FINISHED, outcomes.CLEANED):
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
    options = _options(record, opened)
    prep = _load(opened, options, plan, on_event)
    changed = vcin_changes(
        prep.vcin, held, opened.config, prep.runtime.memory, prep.runtime.vc_out_path
    )
    if changed:
        raise UserError(
            f"{prep.vcin.shown} changed since {vcname} was allocated: {'; '.join(changed)};"
            " nothing was changed",
            hint="new computes are made like the VC's others: put the file back as it was"
            f" for {vcname}, or `pragmash clean {vcname}` and run the recipe again",
        )
    handlers = scale_handlers(prep.runtime, options.recipe, change > 0)
    make_ready(prep)
    if change > 0:
        room = grow_room(prep.runtime, lambda _text: None)  # the lease step names left-outs
        short = resize.grow_shortage(ledger, opened.config, prep.vcin, vcname, change, room, held)
        if short is not None:
            raise UserError(f"{short}; nothing was taken", hint="scale by fewer computes")

    def journaled() -> tuple[str, dict[str, Any]]:
        nonlocal held, plan
        held, plan = _plan_locked(opened, vcname, record, plan, change)
        prep.program = scale_program(plan.before, plan.after, handlers)
        return plan.describe(), {**options.to_json(), "scale": plan.to_json()}

    return begin(
        prep,
        ScaleExecutor(prep.runtime, plan.timeout),
        journaled=journaled,
        then=lambda: prep.runtime.adopt(held),
        on_event=on_event,
    )


def _plan_locked(
    opened: OpenSite, vcname: str, seen: RunRecord, plan: ScalePlan, change: int
) -> tuple[Allocation, ScalePlan]:
    """The VC's allocation and the scale's plan, read again now that the lock is held.

    What was read before the lock (while the repository was fetched and the engine
    checked) may be stale: another scale of the VC may have ended in between. The
    change (``+N``/``-N``) is applied to the computes the ledger holds now, so two
    ``+1`` make two, and a ``-1`` destroys the node whose lease it releases.
    """
    held = opened.allocation(vcname)
    record = opened.last_run(vcname)
    if held is None or record is None:
        raise UserError(f"{vcname} was cleaned while this scale prepared; nothing was changed")
    if record.id != seen.id and record.outcome != outcomes.FINISHED:
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


def resume(vcname: str, *, site: str | OpenSite | None = None, on_event: EventSink = ignore) -> Run:
    """Reopen the VC's last run, a scale, at its first unfinished step."""
    vcname = validate_name("VC name", vcname)
    opened = opened_site(site)
    record = opened.last_run(vcname)
    if record is None or not is_scale(record):
        raise UserError(f"{vcname}'s last run is not a scale")
    if record.outcome in (outcomes.FINISHED, outcomes.CLEANED):
        raise UserError(
            f"{vcname}'s last run ({record.id}, a scale) {record.outcome}; there is nothing "
            "to resume"
        )
    plan = ScalePlan.from_json(record.options["scale"])
    refused = scale_refusal(opened.config, vcname, plan.after - plan.before)
    if refused is not None:
        raise refused
    prep = _load(opened, _options(record, opened), plan, on_event)
    make_ready(prep)

    def then(_start_at: int) -> None:
        held = opened.allocation(vcname)
        if held is None:
            raise UserError(f"{vcname} holds no allocation any more: the scale cannot go on")
        prep.runtime.adopt(held)

    executor = ScaleExecutor(prep.runtime, plan.timeout)
    return reopen(prep, record, executor, then=then, on_event=on_event)


def _options(record: RunRecord, opened: OpenSite) -> RunOptions:
    """The options the VC's run was started with (a scale journals them again)."""
    options = RunOptions.from_json(record.options)
    if opened.path:
        options.site = opened.path
    return options


def _load(opened: OpenSite, options: RunOptions, plan: ScalePlan, on_event: EventSink) -> Prepared:
    """The VC's site, vc-in, drivers and runtime, as its run had them; images made local
    (and verified) when the VC grows."""
    prep = load(opened, options, lambda _config: scale_program(plan.before, plan.after))
    growing = plan.after > plan.before
    prep.program = scale_program(
        plan.before, plan.after, scale_handlers(prep.runtime, options.recipe, growing)
    )
    if growing:
        provide(prep, on_event)
    return prep
