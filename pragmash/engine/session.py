"""Putting a run together from what the user gave: site, repository, vc-in, recipe.

Both front ends (the CLI and the REPL) open runs through here, so they load and
check things the same way and neither holds run logic of its own. Loading never
changes anything: the ledger is only written once a run starts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pragmash.engine import private_network
from pragmash.engine.events import EventSink, Output, Progress, ignore
from pragmash.engine.folder_scripts import callable_scripts
from pragmash.engine.interpreter import Interpreter, StepReporter
from pragmash.engine.overrides import check_nodes_fit, effective_memory, host_memory_mib
from pragmash.engine.recipe_changes import recipe_changes, recipe_sources
from pragmash.engine.registry import load_distro, load_engine
from pragmash.engine.repositories import unknown_vc
from pragmash.engine.runtime import Runtime
from pragmash.errors import ConfigError, LedgerError, RecipeError, UserError
from pragmash.images.domain import resolve_domain_type
from pragmash.images.provision import ProvidedImage, provide_images
from pragmash.language import ast
from pragmash.language.checker import CheckContext, check_program, needs_allocation_first
from pragmash.language.parser import parse_file
from pragmash.language.program import flatten
from pragmash.store import allocation as alloc_mod
from pragmash.store.journal import (
    Journal,
    acquire_lock,
    all_last_runs,
    last_run,
    release_lock,
    set_lock_run,
    steps_of,
)
from pragmash.store.ledger import Ledger
from pragmash.store.notes import first_time
from pragmash.vc.http import is_url
from pragmash.vc.http_repository import open_repository
from pragmash.vc.limits import MAX_SITE_CPUS
from pragmash.vc.names import compute_name, frontend_name, validate_name
from pragmash.vc.repository import Repository
from pragmash.vc.site import SiteConfig, load_site
from pragmash.vc.vcin import VcIn, load_vc_in

BUILTINS = ("vcname", "num_compute", "base_path", "temp_dir", "vc_out", "num_nodes")


@dataclass
class RunOptions:
    """The options a run was started with; journaled so ``resume`` can rebuild it."""

    recipe: str
    vcname: str
    num_compute: int | None = None
    base_path: str | None = None
    site: str | None = None
    sets: dict[str, str] = field(default_factory=dict)
    allow_run: bool = False
    key: str | None = None  # --key: the public key text (kept, so resume needs no file)
    key_file: str | None = None  # --key's path: `ssh-config` names the private key beside it
    mem: str | None = None  # --mem FRONTEND[:COMPUTE] as given
    # MiB each role's nodes got (from --mem or the templates); journaled for `status`
    memory_mib: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "vcname": self.vcname,
            "num_compute": self.num_compute,
            "base_path": self.base_path,
            "site": self.site,
            "sets": self.sets,
            "allow_run": self.allow_run,
            "key": self.key,
            "key_file": self.key_file,
            "mem": self.mem,
            "memory_mib": self.memory_mib,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        return cls(
            recipe=data["recipe"],
            vcname=data["vcname"],
            num_compute=data.get("num_compute"),
            base_path=data.get("base_path"),
            site=data.get("site"),
            sets=dict(data.get("sets") or {}),
            allow_run=bool(data.get("allow_run")),
            key=data.get("key"),
            key_file=data.get("key_file"),
            mem=data.get("mem"),
            memory_mib=data.get("memory_mib"),
        )

    def resolved(self) -> RunOptions:
        """These options with every path absolute, as journaled for ``resume``.

        ``resume`` and ``repl --attach`` may run from another folder than the run did;
        ``r.prg`` or ``../base/repo`` as typed would then name other files, or none.
        """

        def absolute(path: str | None) -> str | None:
            return str(Path(path).expanduser().resolve()) if path else path

        return replace(
            self,
            recipe=absolute(self.recipe) or self.recipe,
            # a web repository's URL is kept as typed (as a path it named a folder
            # "http:/host" under the current one, and resume or scale failed on it)
            base_path=self.base_path if is_url(self.base_path) else absolute(self.base_path),
            site=absolute(self.site),
            key_file=absolute(self.key_file),
        )


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
        if name in ("vcname", "temp_dir", "vc_out", "num_nodes"):
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


def check_work_folders(site: SiteConfig, vcname: str) -> None:
    """The run's temp folder and the image cache can be made and written, or a ConfigError.

    Checked before anything is locked or allocated: a file where the folder should be,
    or a read-only file system, would otherwise fail the first step that writes there,
    after ``allocate`` took leases.
    """
    for folder, key in ((site.temp_dir / vcname, "temp"), (site.image_cache, "image_cache")):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            problem = f"{existing} is not a folder (a file is in the way)"
        elif not os.access(existing, os.W_OK | os.X_OK):
            problem = f"{existing} is not writable"
        else:
            continue
        raise ConfigError(
            f"the {key.replace('_', ' ')} folder {folder} cannot be used: {problem}",
            file=site.source,
            key=f"[paths] {key}",
        )


def open_site(path: str | None) -> SiteConfig:
    """The site config from ``--site`` (None: ``$PRAGMASH_SITE``, else the demo site)."""
    return load_site(Path(path) if path else None, os.environ)


@dataclass
class Prepared:
    """A loaded and checked run, not started: everything needed to run or to plan."""

    options: RunOptions
    site: SiteConfig
    vcin: VcIn
    program: ast.Program
    runtime: Runtime
    ledger: Ledger
    repository: Repository | None = None
    images: list[ProvidedImage] = field(default_factory=list)


def prepare(
    options: RunOptions,
    *,
    resuming: bool = False,
    on_event: EventSink = ignore,
    fetch_images: bool = True,
) -> Prepared:
    """Load and check everything for a run; raise a UserError/RecipeError on bad input.

    Then (unless ``fetch_images`` is False: ``check`` and ``--dry-run``) every image the
    VC's vc-in.xml names is fetched, joined and verified (:mod:`pragmash.images.provision`),
    with progress sent to ``on_event``: a bad image stops the run here, before anything
    is locked or allocated, on every engine.
    """
    vcname = validate_name("VC name (--vcname)", options.vcname)
    site = open_site(options.site)
    check_work_folders(site, vcname)
    repo = open_repository(options.base_path or site.repository, site.image_cache)
    vc_in_path = repo.vc_in_path(vcname)
    vcin = load_vc_in(vc_in_path, shown=repo.shown(vc_in_path))
    program = parse_file(Path(options.recipe), search_path=site.recipe_dirs)
    ledger = Ledger(site)
    engine = load_engine(site)
    distro = load_distro(vcin.driver, site, where=f"{vcin.path}: /vc/driver")
    variables = dict(options.sets)
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
                f"(no site has more CPUs); {alloc_mod.capacity_words(site)}"
            )
        variables["num_compute"] = str(options.num_compute)
    elif "num_compute" not in declared:
        variables.setdefault("num_compute", "0")
    variables["base_path"] = repo.location
    runtime = Runtime(
        site=site,
        vcname=vcname,
        vcin=vcin,
        ledger=ledger,
        engine=engine,
        distro=distro,
        variables=variables,
        allow_run=options.allow_run,
        key=options.key,
        memory=effective_memory(vcin, options.mem),
    )
    options.memory_mib = runtime.memory.to_json() if runtime.memory else None
    prep = Prepared(options, site, vcin, program, runtime, ledger, repo)
    held = alloc_mod.current_allocation(ledger, vcname)
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
    prep.vcin = vcin
    prep.runtime.vcin = vcin
    prep.images = images


class RecipeCheckFailed(RecipeError):
    """Several recipe problems at once; rendered one after another."""

    def __init__(self, problems: list[RecipeError]) -> None:
        first = problems[0]
        super().__init__(first.message, first.span, first.source_line)
        self.problems = problems

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


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


@dataclass
class Run:
    """A started run: the interpreter plus its journal and lock.

    ``notes`` are what opening it did that a front end should say (a private network
    that was missing and was made again on resume).
    """

    prepared: Prepared
    interpreter: Interpreter
    journal: Journal
    notes: list[str] = field(default_factory=list)

    def close(self, outcome: str, message: str | None = None) -> None:
        ledger = self.journal.ledger  # a scale's journal has a Ledger of its own
        with ledger.transaction():  # the run's end and the lock: one write
            self.journal.end(outcome, message)
            release_lock(ledger, self.prepared.runtime.vcname)

    def abandon(self, message: str) -> None:
        """Close a run the ledger stopped, as far as the ledger still lets us.

        A failed write here changes nothing: the lock dies with this process, and the
        run then reads as interrupted (:func:`pragmash.store.journal.run_outcome`).
        """
        with contextlib.suppress(LedgerError):
            self.close("interrupted", message)


def start(prep: Prepared, *, on_event: EventSink = ignore) -> Run:
    """Lock the VC, open a journal and make the interpreter; nothing has run yet."""
    runtime = prep.runtime
    runtime.engine.check()
    private_network.preflight(runtime.engine, prep.site, runtime.vcname, prep.ledger)
    runtime.domain_type = _domain_type(prep)
    if runtime.memory is not None:
        check_nodes_fit(runtime.memory, host_memory_mib(runtime.engine), prep.site.uri)
    options = prep.options.resolved()
    with prep.ledger.transaction():  # the lock, the run and its lock: one write; all or none
        acquire_lock(prep.ledger, runtime.vcname)
        journal = Journal.start(
            prep.ledger,
            runtime.vcname,
            options.recipe,
            options.to_json(),
            recipe_sources(prep.program),
        )
        set_lock_run(prep.ledger, runtime.vcname, journal.run_id)
    interp = Interpreter(prep.program, runtime, journal=journal, on_event=on_event)
    return Run(prep, interp, journal)


def _domain_type(prep: Prepared) -> str:
    engine = prep.runtime.engine
    return resolve_domain_type(
        prep.site.domain_type, prep.vcin.frontend.domain_type, engine.host_info()
    )


def resume(
    vcname: str,
    *,
    on_event: EventSink = ignore,
    site: str | None = None,
    accept_changes: bool = False,
) -> Run:
    """Reopen a VC's last run at its first unfinished step, with the same allocation.

    Steps are matched by position, so a recipe edited since the run started is
    refused (saying what changed) unless ``accept_changes``.
    """
    site_cfg = open_site(site)
    ledger = Ledger(site_cfg)
    record = last_run(ledger, vcname)
    if record is None:
        unknown = unknown_vc(site_cfg, vcname, sorted(all_last_runs(ledger)))
        if unknown is not None:
            raise unknown
        raise UserError(
            f"{vcname} has no run to resume; start one with `pragmash RECIPE --vcname {vcname}`"
        )
    if record.outcome == "finished":
        raise UserError(f"{vcname}'s last run ({record.id}) finished; there is nothing to resume")
    for kind in ("scale", "power"):  # runs of pragmash's own steps (engine.scale, .power)
        if isinstance(record.options.get(kind), dict):
            what = "a scale" if kind == "scale" else f"a {record.options[kind].get('kind')}"
            raise UserError(
                f"{vcname}'s last run ({record.id}) is {what}: `pragmash resume {vcname}` "
                "continues it"
            )
    if record.outcome == "cleaned":
        # its domains, images and leases are gone: continuing would boot without an allocation
        raise UserError(
            f"{vcname}'s last run ({record.id}) was cleaned (domains, images and leases removed); "
            f"there is nothing to resume: start a new run with "
            f"`pragmash {record.recipe} --vcname {vcname}`"
        )
    options = RunOptions.from_json(record.options)
    if site and not options.site:
        options.site = site
    prep = prepare(options, resuming=True, on_event=on_event)
    steps = steps_of(prep.ledger, record.id)
    changes = recipe_changes(record.sources, prep.program, steps)
    if changes and not accept_changes:
        raise UserError(
            f"{vcname}: the recipe changed since run {record.id} started: " + "; ".join(changes),
            hint="resume matches steps by their position, so it would redo or skip steps: put "
            f"the recipe back as it was, or `pragmash resume {vcname} --accept-changes` to go "
            f"on anyway (or `pragmash clean {vcname}` and start afresh)",
        )
    done = {s.idx for s in steps if s.outcome in ("done", "skipped")}
    flat = flatten(prep.program.statements)
    start_at = next((s.index for s in flat if s.index not in done), len(flat))
    runtime = prep.runtime
    runtime.engine.check()
    runtime.domain_type = _domain_type(prep)
    if runtime.memory is not None:
        check_nodes_fit(runtime.memory, host_memory_mib(runtime.engine), prep.site.uri)
    acquire_lock(prep.ledger, vcname, record.id)
    journal = Journal(prep.ledger, record.id)
    journal.reopen(recipe_sources(prep.program))
    try:
        _replay(prep, start_at)
        made = runtime.ensure_private_network()
    except BaseException:
        with contextlib.suppress(LedgerError):
            release_lock(prep.ledger, vcname)
        raise
    interp = Interpreter(
        prep.program, runtime, journal=journal, on_event=on_event, start_at=start_at
    )
    notes = []
    if private_network.made_anew(made):
        assert made is not None
        notes.append(f"{vcname}'s private network was missing: {made.message}")
    return Run(prep, interp, journal, notes)


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
