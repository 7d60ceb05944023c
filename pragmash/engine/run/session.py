"""Putting a run together from what the user gave: site, repository, vc-in, recipe.

Both front ends (the CLI and the REPL) open runs through here, so they load and
check things the same way and neither holds run logic of its own. Loading never
changes anything: the ledger is only written once a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pragmash import outcomes
from pragmash.engine.run import opening
from pragmash.engine.run.events import EventSink, Output, Progress, ignore
from pragmash.engine.run.interpreter import StepReporter
from pragmash.engine.run.opening import (
    BUILTINS,
    FIXED_BUILTINS,
    OpenSite,
    Prepared,
    Run,
    RunOptions,
    load,
    make_ready,
    opened_site,
)
from pragmash.engine.run.recipe_changes import recipe_changes, recipe_sources
from pragmash.engine.run.site import open_site
from pragmash.engine.steps import private_network
from pragmash.engine.steps.folder_scripts import callable_scripts
from pragmash.errors import RecipeError, RecipeErrors, UserError
from pragmash.images.provision import provide_images
from pragmash.language import ast
from pragmash.language.checker import CheckContext, check_program, needs_allocation_first
from pragmash.language.parser import parse_file
from pragmash.language.program import flatten
from pragmash.store import allocation as alloc_mod
from pragmash.store.journal import all_last_runs, steps_of
from pragmash.store.notes import first_time
from pragmash.vc.config.limits import MAX_SITE_CPUS
from pragmash.vc.config.repository import unknown_vc
from pragmash.vc.formats.names import compute_name, frontend_name, validate_name

__all__ = ["BUILTINS", "OpenSite", "Prepared", "Run", "RunOptions", "open_site", "opened_site"]


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` items as a dict; a malformed item is a user error."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set {item!r}: expected NAME=VALUE")
        name = name.strip()
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise UserError(f"--set {item!r}: {name!r} is not a variable name")
        if any((ord(c) < 32 and c != "\t") or 127 <= ord(c) < 160 for c in value):
            raise UserError(
                f"--set {name}: the value holds a control character ({value!r}); "
                "values are plain text"
            )
        if name in FIXED_BUILTINS:
            raise UserError(f"--set {item!r}: ${name} is set by pragmash and cannot be overridden")
        out[name] = value
    return out


def require_recipe_file(recipe: str) -> None:
    """Refuse a recipe path that names no file, saying what it names instead."""
    path = Path(recipe)
    if path.is_file():
        return
    if path.is_dir():
        raise UserError(f"{recipe}: is a folder, not a recipe file (e.g. {recipe}/rocks6.prg)")
    if path.exists():
        raise UserError(f"{recipe}: is not a regular file; a recipe is a text file")
    raise UserError(f"{recipe}: no such recipe file")


def prepare(
    options: RunOptions,
    *,
    site: str | OpenSite | None = None,
    resuming: bool = False,
    on_event: EventSink = ignore,
    fetch_images: bool = True,
) -> Prepared:
    """Load and check everything for a run; raise a UserError/RecipeError on bad input.

    ``site`` is the site already opened by the command (else ``options.site`` is). Then
    (unless ``fetch_images`` is False: ``check`` and ``--dry-run``) every image the
    VC's vc-in.xml names is fetched, joined and verified (:mod:`pragmash.images.provision`),
    with progress sent to ``on_event``: a bad image stops the run here, before anything
    is locked or allocated, on every engine.
    """
    validate_name("VC name (--vcname)", options.vcname)
    opened = opened_site(site if site is not None else options.site)
    prep = load(
        opened,
        options,
        lambda config: parse_file(Path(options.recipe), search_path=config.recipe_dirs),
    )
    program = prep.program
    declared = {
        s.statement.name for s in flatten(program.statements) if isinstance(s.statement, ast.Param)
    }
    unknown = sorted(set(options.sets) - declared - set(BUILTINS))
    set_names = {
        s.statement.name for s in flatten(program.statements) if isinstance(s.statement, ast.Set)
    }
    unknown = [n for n in unknown if n not in set_names]
    if unknown:
        listed = ", ".join(sorted(declared)) or "none"
        raise UserError(
            f"--set {unknown[0]}: the recipe {options.recipe} has no parameter {unknown[0]!r}; "
            f"its parameters: {listed}"
        )
    if options.num_compute is not None:
        if options.num_compute < 0:
            raise UserError("--num_compute: expected 0 or more")
        if options.num_compute > MAX_SITE_CPUS:
            raise UserError(
                f"--num_compute {options.num_compute}: expected at most {MAX_SITE_CPUS} "
                f"(no site has more CPUs); {alloc_mod.capacity_words(prep.site)}"
            )
    runtime = prep.runtime
    options.memory_mib = runtime.memory.to_json() if runtime.memory else None
    held = opened.allocation(runtime.vcname)
    problems = check(prep, allocated=len(held.computes) if (held and resuming) else None)
    if problems:
        raise RecipeCheckFailed(problems)
    if fetch_images:
        provide(prep, on_event)
    return prep


def provide(prep: Prepared, on_event: EventSink = ignore) -> None:
    """Make the run's images local and verified; its vc-in then points at them."""
    assert prep.repository is not None

    def progress(done: float, total: float | None, label: str) -> None:
        on_event(Progress(-1, done, total, label))

    vcin, images = provide_images(
        prep.repository, prep.vcin, prep.site.image_cache, progress=progress
    )
    for image in images:
        if image.how != "local":
            on_event(Output(-1, image.describe()))
    prep.runtime.vcin = vcin
    prep.images = images


class RecipeCheckFailed(RecipeErrors):
    """Several recipe problems the checker found at once; rendered one after another."""


def check_context(prep: Prepared, *, allocated: int | None = None) -> CheckContext:
    """What the checker knows about this run: its variables, node names and policy.

    Shared by the recipe's check and the REPL's check of typed statements, so both
    refuse the same mistakes.
    """
    runtime = prep.runtime
    known: dict[str, str | None] = {name: None for name in BUILTINS}
    known.update(runtime.variables)
    if "num_compute" not in runtime.variables:
        known.pop("num_compute")
        # a recipe `param num_compute = N` supplies it
    vc_scripts, ve_scripts = callable_scripts(prep.site, runtime.distro)
    return CheckContext(
        variables=known,
        frontend=frontend_name(runtime.vcname),
        compute_name=lambda i: compute_name(runtime.vcname, i),
        computes_for=lambda cpus: len(alloc_mod.plan_compute_cpus(prep.site, prep.vcin, cpus)),
        allocated=allocated,
        allow_run=prep.options.allow_run or prep.site.allow_run,
        extra_vc_commands=vc_scripts,
        extra_ve_commands=ve_scripts,
    )


def check(prep: Prepared, *, allocated: int | None = None) -> list[RecipeError]:
    ctx = check_context(prep, allocated=allocated)
    problems = check_program(prep.program, ctx)
    problems += needs_allocation_first(prep.program, allocated is not None)
    problems.sort(key=lambda p: (p.span.file != prep.program.file, p.span.line, p.span.column))
    return problems


def start(prep: Prepared, *, on_event: EventSink = ignore, straight: bool = False) -> Run:
    """Lock the VC, open a journal and make the interpreter; nothing has run yet.

    ``straight``: the caller runs the recipe from its first step at once (the CLI's
    plain run), so that step's start is journaled with the run's (one write)."""
    make_ready(prep, preflight=True)
    options = prep.options.resolved()
    return opening.begin(
        prep,
        journaled=lambda: (options.recipe, options.to_json()),
        sources=recipe_sources(prep.program),
        on_event=on_event,
        straight=straight,
    )


def resume(
    vcname: str,
    *,
    on_event: EventSink = ignore,
    site: str | OpenSite | None = None,
    accept_changes: bool = False,
) -> Run:
    """Reopen a VC's last run at its first unfinished step, with the same allocation.

    Steps are matched by position, so a recipe edited since the run started is
    refused (saying what changed) unless ``accept_changes``.
    """
    opened = opened_site(site)
    record = opened.last_run(vcname)
    if record is None:
        unknown = unknown_vc(opened.config, vcname, sorted(all_last_runs(opened.ledger)))
        if unknown is not None:
            raise unknown
        raise UserError(
            f"{vcname} has no run to resume; start one with `pragmash RECIPE --vcname {vcname}`"
        )
    if record.outcome == outcomes.FINISHED:
        raise UserError(f"{vcname}'s last run ({record.id}) finished; there is nothing to resume")
    for kind in ("scale", "power"):  # runs of pragmash's own steps (engine.scale, .power)
        if isinstance(record.options.get(kind), dict):
            what = "a scale" if kind == "scale" else f"a {record.options[kind].get('kind')}"
            raise UserError(
                f"{vcname}'s last run ({record.id}) is {what}: `pragmash resume {vcname}` "
                "continues it"
            )
    if record.outcome == outcomes.CLEANED:
        # its domains, images and leases are gone: continuing would boot without an allocation
        raise UserError(
            f"{vcname}'s last run ({record.id}) was cleaned (domains, images and leases removed); "
            f"there is nothing to resume: start a new run with "
            f"`pragmash {record.recipe} --vcname {vcname}`"
        )
    options = RunOptions.from_json(record.options)
    if opened.path and not options.site:
        options.site = opened.path
    prep = prepare(options, site=opened, resuming=True, on_event=on_event)
    steps = steps_of(prep.ledger, record.id)
    changes = recipe_changes(record.sources, prep.program, steps)
    if changes and not accept_changes:
        raise UserError(
            f"{vcname}: the recipe changed since run {record.id} started: " + "; ".join(changes),
            hint="resume matches steps by their position, so it would redo or skip steps: put "
            f"the recipe back as it was, or `pragmash resume {vcname} --accept-changes` to go "
            f"on anyway (or `pragmash clean {vcname}` and start afresh)",
        )
    make_ready(prep)
    notes: list[str] = []

    def then(start_at: int) -> None:
        _replay(prep, start_at)
        made = prep.runtime.ensure_private_network()
        if private_network.made_anew(made):
            assert made is not None
            notes.append(f"{vcname}'s private network was missing: {made.message}")

    run = opening.reopen(
        prep, record, sources=recipe_sources(prep.program), then=then, on_event=on_event
    )
    run.notes.extend(notes)
    return run


def site_notes(prep: Prepared) -> list[str]:
    """What the site should be told once (remembered in its ledger), for the front end."""
    note = private_network.default_mode_note(prep.site)
    if note is not None and first_time(prep.ledger, "private-network-default"):
        return [note]
    return []


def _replay(prep: Prepared, upto: int) -> None:
    """Rebuild a resumed run's state without redoing work: variables and allocation."""
    runtime = prep.runtime
    quiet = StepReporter(-1, ignore)
    for step in flatten(prep.program.statements)[:upto]:
        if isinstance(step.statement, ast.Set | ast.Param):
            runtime.execute(step.statement, quiet)
    held = alloc_mod.current_allocation(prep.ledger, runtime.vcname)
    if held is not None:
        runtime.adopt(held)
        runtime.repair_vc_out()  # a crash may have lost what the run wrote unsynced
