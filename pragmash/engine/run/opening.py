"""Opening a VC for work: the one path every run and every VC command takes.

Whatever works on a VC (a recipe's run, ``resume``, ``scale``, ``stop``/``start``,
``repl --attach``, and the commands outside a run: status, clean, console …) opens
it here, in these steps, each written once:

1. :func:`opened_site` — the site config (``--site``, else ``$PRAGMASH_SITE``, else
   the embedded demo site) and its ledger, as one :class:`OpenSite`, **once per
   command**. Pass it on (every public opener below takes ``site`` as a path, None
   or an :class:`OpenSite`) instead of opening the site again. A command outside a
   run needs no more than this and :meth:`OpenSite.engine`.
2. :func:`load` — the VC's work folder checked, its repository, vc-in.xml, distro
   and engine drivers, and the :class:`~pragmash.engine.run.runtime.Runtime` with its
   built-in variables (:func:`builtin_variables`, the one place they are set), as a
   :class:`Prepared`: a run loaded, not started. Nothing is written.
3. :func:`begin` (a new run) or :func:`reopen` (a run's first unfinished step,
   :func:`first_unfinished`) — the engine made ready (:func:`make_ready`: it answers,
   the domain type is settled, the nodes' memory fits), the VC's lock taken, the
   journal started or reopened, then the caller's ``then`` (adopt the allocation …);
   if anything on the way fails the lock is released again. Returns a :class:`Run`.

A new kind of run builds its program and its executor and calls :func:`load` and
:func:`begin`/:func:`reopen`, so it writes no lock, journal or engine check of its
own. For example (``pragmash.engine.commands.power`` does this)::

    opened = opened_site(site)                      # once per command
    record = opened.last_run(vcname)
    prep = load(opened, RunOptions.from_json(record.options), lambda: my_program)
    run = begin(prep, MyExecutor(prep.runtime), journaled=lambda: ("my run", {...}),
                then=lambda: prep.runtime.adopt(held), on_event=on_event)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pragmash import outcomes
from pragmash.driver_api import EngineDriver
from pragmash.engine.hosts.capacity import locate
from pragmash.engine.run.diskwork import DiskWork
from pragmash.engine.run.events import EventSink, ignore
from pragmash.engine.run.interpreter import Executor, Interpreter
from pragmash.engine.run.mem_option import check_nodes_fit, effective_memory
from pragmash.engine.run.registry import load_distro, load_engine
from pragmash.engine.run.runtime import Runtime
from pragmash.engine.run.site import open_site
from pragmash.engine.steps import private_network
from pragmash.errors import AllocationError, ConfigError, LedgerError, PragmashError, UserError
from pragmash.images.libvirt_xml.domain import resolve_domain_type
from pragmash.images.provision import ProvidedImage
from pragmash.language import ast
from pragmash.language.program import flatten
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
from pragmash.vc.config.repository import site_repository
from pragmash.vc.config.site import SiteConfig, path_problem
from pragmash.vc.formats.names import validate_name
from pragmash.vc.formats.vcin import VcIn, load_vc_in
from pragmash.vc.repository.http import is_url
from pragmash.vc.repository.vcdb import Repository

#: The variables pragmash sets for every run (:func:`builtin_variables`; ``num_nodes``
#: once the VC is allocated, by :meth:`Runtime.adopt`).
BUILTINS = ("vcname", "num_compute", "base_path", "temp_dir", "vc_out", "num_nodes")
#: The built-ins ``--set`` may not override (``num_compute`` and ``base_path`` it may).
FIXED_BUILTINS = ("vcname", "temp_dir", "vc_out", "num_nodes")


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
            problem = path_problem(path) if path else None
            if problem is not None:
                raise UserError(f"{path!r}: {problem.replace('a folder', 'a')} path")
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


# -- 1. the site and its ledger, once per command ------------------------------------------


@dataclass(frozen=True)
class OpenSite:
    """A site config and its ledger, opened once for one command and passed along."""

    config: SiteConfig
    ledger: Ledger
    path: str | None = None  # the ``--site`` it was opened from (None: the default)

    def last_run(self, vcname: str) -> RunRecord | None:
        return last_run(self.ledger, vcname)

    def allocation(self, vcname: str) -> Allocation | None:
        return current_allocation(self.ledger, vcname)

    def allocated(self, vcname: str, *, nothing: str, hint: str) -> tuple[Allocation, RunRecord]:
        """The VC's allocation and its last run, for a command that works on a booted VC;
        a UserError (nothing changed) saying why there is ``nothing`` to do when it has none."""
        held = self.allocation(vcname)
        record = self.last_run(vcname)
        if held is None or record is None:
            raise UserError(
                f"{vcname} holds no allocation in {self.config.ledger_path}: {nothing}", hint=hint
            )
        return held, record

    def engine(self, held: Allocation | None = None, *, check: bool = True) -> EngineDriver:
        """The site's engine (answering, unless ``check`` is False), told where the
        allocation's nodes are."""
        engine = load_engine(self.config)
        if check:
            engine.check()
        locate(engine, held)
        return engine


def opened_site(site: str | OpenSite | None) -> OpenSite:
    """The site (a ``--site`` path, None for the default) with its ledger; an
    :class:`OpenSite` already opened is passed through, so nothing opens twice."""
    if isinstance(site, OpenSite):
        return site
    config = open_site(site)
    return OpenSite(config, Ledger(config), site)


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


# -- 2. the VC loaded: a run not started ------------------------------------------------------


@dataclass
class Prepared:
    """A loaded and checked run, not started: everything needed to run or to plan.

    The site, vc-in and ledger are the runtime's (read through here, held there once).
    """

    options: RunOptions
    program: ast.Program
    runtime: Runtime
    repository: Repository | None = None
    images: list[ProvidedImage] = field(default_factory=list)

    @property
    def site(self) -> SiteConfig:
        return self.runtime.site

    @property
    def vcin(self) -> VcIn:
        return self.runtime.vcin

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger


def builtin_variables(
    runtime: Runtime, options: RunOptions, program: ast.Program, repo: Repository
) -> None:
    """Set the run's built-in variables (:data:`BUILTINS`), over what ``--set`` gave.

    ``num_compute`` is ``--num_compute``, else what ``--set`` or the recipe's ``param``
    says, else 0.
    """
    variables = runtime.variables
    variables["vcname"] = runtime.vcname
    variables["temp_dir"] = str(runtime.temp_dir)
    variables["vc_out"] = str(runtime.vc_out_path)
    variables["base_path"] = repo.location
    declared = {
        s.statement.name for s in flatten(program.statements) if isinstance(s.statement, ast.Param)
    }
    if options.num_compute is not None:
        variables["num_compute"] = str(options.num_compute)
    elif "num_compute" not in declared:
        variables.setdefault("num_compute", "0")


def load(
    site: str | OpenSite | None,
    options: RunOptions,
    program: Callable[[SiteConfig], ast.Program],
) -> Prepared:
    """The VC of ``options`` loaded for a run: repository, vc-in, drivers, runtime.

    ``program`` makes the run's program (a recipe parsed, or pragmash's own steps); it
    is called after the vc-in is read, so a bad vc-in is reported before the recipe.
    Raises a UserError/ConfigError on bad input; writes nothing.
    """
    opened = opened_site(site)
    config = opened.config
    vcname = validate_name("VC name (--vcname)", options.vcname)
    check_work_folders(config, vcname)
    repo = site_repository(config, options.base_path)
    vc_in_path = repo.vc_in_path(vcname)
    vcin = load_vc_in(vc_in_path, shown=repo.shown(vc_in_path))
    made = program(config)
    engine = load_engine(config)
    runtime = Runtime(
        site=config,
        vcname=vcname,
        vcin=vcin,
        ledger=opened.ledger,
        engine=engine,
        distro=load_distro(vcin.driver, config, where=f"{vcin.shown}: /vc/driver"),
        disk_work=DiskWork.of(engine, config),  # the one place a run decides it
        variables=dict(options.sets),
        allow_run=options.allow_run,
        key=options.key,
        memory=effective_memory(vcin, options.mem),
    )
    builtin_variables(runtime, options, made, repo)
    return Prepared(options, made, runtime, repo)


# -- 3. the engine ready, the lock, the journal -------------------------------------------------


def make_ready(prep: Prepared, *, preflight: bool = False, memory: bool = True) -> None:
    """The engine answers; the domain type and (with ``memory``) the nodes' memory are
    settled. ``preflight``: a new run's private network can be made (before any lease)."""
    runtime = prep.runtime
    runtime.engine.check()
    if preflight:
        private_network.preflight(runtime.engine, prep.site, runtime.vcname, prep.ledger)
    runtime.domain_type = resolve_domain_type(
        prep.site.domain_type, prep.vcin.frontend.domain_type, runtime.engine.host_info()
    )
    if memory and runtime.memory is not None:
        check_nodes_fit(runtime.memory, runtime.engine, prep.site.uri)


@contextlib.contextmanager
def _released_on_failure(ledger: Ledger, vcname: str) -> Iterator[None]:
    """The VC's lock (taken) is released again if the body fails (the first fault is the
    one to report: a failed release changes nothing, the lock dies with this process)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(LedgerError):
            release_lock(ledger, vcname)
        raise


def first_unfinished(program: ast.Program, ledger: Ledger, run_id: int) -> int:
    """The index of a journaled run's first step not done or skipped (past the end: all)."""
    done = {
        s.idx for s in steps_of(ledger, run_id) if s.outcome in (outcomes.DONE, outcomes.SKIPPED)
    }
    flat = flatten(program.statements)
    return next((s.index for s in flat if s.index not in done), len(flat))


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
    #: a new run (not a resumed one), and the VC's allocation when it began
    fresh: bool = False
    held_at_start: Allocation | None = None

    def close(self, outcome: outcomes.RunEnd, message: str | None = None) -> None:
        ledger = self.journal.ledger  # a scale's journal may have a Ledger of its own
        with ledger.transaction():  # the run's end and the lock: one write
            self.journal.end(outcome, message)
            release_lock(ledger, self.prepared.runtime.vcname)

    def refused_before_anything(self, error: PragmashError | None) -> bool:
        """Whether this run stopped at a refusal that took nothing: a new run whose
        ``allocate`` found too little (no public address, CPUs or memory) or a VC holding
        another count, the ledger's allocation as it was. Such a run is bad input to
        say, not a failed run to resume (resuming it fails the same way forever)."""
        step = self.interpreter.current
        if not self.fresh or not isinstance(error, AllocationError) or step is None:
            return False
        if not isinstance(step.statement, ast.Allocate):
            return False
        now = current_allocation(self.prepared.ledger, self.prepared.runtime.vcname)
        return now == self.held_at_start

    def discard(self) -> None:
        """Remove the run from the journal and release the lock, in one write."""
        self.journal.discard(self.prepared.runtime.vcname)

    def abandon(self, message: str) -> None:
        """Close a run the ledger stopped, as far as the ledger still lets us.

        A failed write here changes nothing: the lock dies with this process, and the
        run then reads as interrupted (:func:`pragmash.store.journal.run_outcome`).
        """
        with contextlib.suppress(LedgerError):
            self.close(outcomes.INTERRUPTED, message)


def begin(
    prep: Prepared,
    executor: Executor | None = None,
    *,
    journaled: Callable[[], tuple[str, Mapping[str, Any]]],
    sources: dict[str, str] | None = None,
    then: Callable[[], None] = lambda: None,
    on_event: EventSink = ignore,
    straight: bool = False,
) -> Run:
    """A new run of ``prep`` (the engine must be ready: :func:`make_ready`): the VC
    locked, a journal started, then ``then()``; nothing has run yet.

    The lock, the run and the lock's record of it are one write (a refusal takes
    none of them). ``journaled()`` says what the run is and the options it is journaled
    with; it is asked once the VC is locked, so a run may plan from what the ledger holds
    then (a scale does). ``executor`` defaults to the runtime. ``straight``: the caller
    runs the program's first step at once (a plain run, ``then`` doing nothing), so
    that step's start is journaled in the same write.
    """
    runtime = prep.runtime
    journal, held, first = lock_and_journal(prep, journaled, sources, straight=straight)
    with _released_on_failure(prep.ledger, runtime.vcname):
        then()
    interp = Interpreter(
        prep.program,
        executor or runtime,
        journal=journal,
        on_event=on_event,
        start_recorded=first is not None,
    )
    return Run(prep, interp, journal, fresh=True, held_at_start=held)


def lock_and_journal(
    prep: Prepared,
    journaled: Callable[[], tuple[str, Mapping[str, Any]]],
    sources: dict[str, str] | None,
    *,
    straight: bool,
) -> tuple[Journal, Allocation | None, tuple[int, ast.Statement] | None]:
    """Take the VC's lock and journal a new run, in one write (see :func:`begin`).

    Returns the journal, the allocation the VC held when it was locked, and the first
    step when its start was journaled too (``straight``).
    """
    runtime = prep.runtime
    ledger = prep.ledger
    with ledger.transaction():
        acquire_lock(ledger, runtime.vcname)
        held = current_allocation(ledger, runtime.vcname)
        what, options = journaled()
        if not any(isinstance(options.get(kind), dict) for kind in ("scale", "power")):
            _refuse_to_bury_a_scale(ledger, runtime.vcname)
        steps = flatten(prep.program.statements)
        first = (steps[0].index, steps[0].statement) if straight and steps else None
        journal = Journal.start(ledger, runtime.vcname, what, dict(options), sources, first)
        set_lock_run(ledger, runtime.vcname, journal.run_id)
    return journal, held, first


def _refuse_to_bury_a_scale(ledger: Ledger, vcname: str) -> None:
    """A recipe's run over a scale that did not finish (killed, failed, interrupted) would
    become the VC's last run, and ``resume`` would never reach the scale's rest again
    (with a matching ``--num_compute`` the run adopts what the scale took)."""
    record = last_run(ledger, vcname)
    if record is None or not isinstance(record.options.get("scale"), dict):
        return
    outcome = run_outcome(record, lock_holder(ledger, vcname))
    if outcome in (outcomes.FINISHED, outcomes.CLEANED, outcomes.RUNNING):
        return
    raise UserError(
        f"{vcname}'s last run ({record.id}) is a scale that did not finish ({outcome}): a "
        "new run of the recipe would leave it unfinished for good",
        hint=f"`pragmash resume {vcname}` finishes the scale first; then run the recipe",
    )


def reopen(
    prep: Prepared,
    record: RunRecord,
    executor: Executor | None = None,
    *,
    sources: dict[str, str] | None = None,
    then: Callable[[int], None] = lambda _start_at: None,
    on_event: EventSink = ignore,
) -> Run:
    """The journaled run ``record`` reopened at its first unfinished step (the engine
    must be ready: :func:`make_ready`): the VC locked for it, its journal reopened,
    then ``then(start_at)``; nothing has run yet."""
    runtime = prep.runtime
    start_at = first_unfinished(prep.program, prep.ledger, record.id)
    journal = Journal(prep.ledger, record.id)
    with prep.ledger.transaction():  # the lock and the run marked running again: one write
        acquire_lock(prep.ledger, runtime.vcname, record.id)
        journal.reopen(sources)
    with _released_on_failure(prep.ledger, runtime.vcname):
        then(start_at)
    interp = Interpreter(
        prep.program, executor or runtime, journal=journal, on_event=on_event, start_at=start_at
    )
    return Run(prep, interp, journal)
