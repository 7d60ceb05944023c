"""The CLI's subcommands: check, resume, list, status, shutdown, clean, repl.

Each reads the site and the ledger, asks the engine for the truth, prints for
people by default and JSON with ``--json``. Like the rest of the CLI, they hold
no run logic: the session, the journal and the drivers do the work.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any, TextIO

from pragmash.driver_api import describe_up_tests
from pragmash.engine import session
from pragmash.engine.registry import load_engine
from pragmash.errors import EXIT_OK, EXIT_STEP_FAILED, UserError
from pragmash.language import ast
from pragmash.language.program import flatten
from pragmash.store import allocation as alloc_mod
from pragmash.store.journal import (
    acquire_lock,
    all_last_runs,
    last_run,
    lock_holder,
    release_lock,
    run_outcome,
    steps_of,
)
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.sync import cmd_sync
from pragmash.ui.render import StepPrinter
from pragmash.vc.http_repository import open_repository
from pragmash.vc.names import validate_name
from pragmash.vc.site import SiteConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def _parser(name: str, description: str) -> _Parser:
    p = _Parser(prog=f"pragmash {name}", description=description, allow_abbrev=False)
    p.add_argument("--site", help="the site config (default $PRAGMASH_SITE, else the demo site)")
    return p


def dispatch(name: str, args: list[str], out: TextIO, err: TextIO) -> int:
    handler = {
        "check": cmd_check,
        "resume": cmd_resume,
        "list": cmd_list,
        "status": cmd_status,
        "shutdown": cmd_shutdown,
        "clean": cmd_clean,
        "repl": cmd_repl,
        "sync": cmd_sync,
    }[name]
    return handler(args, out, err)


def _dump(data: Any, out: TextIO) -> None:
    from pragmash.ui.cli.main import json_dump

    json_dump(data, out)


def cmd_check(args: list[str], out: TextIO, err: TextIO) -> int:
    """Parse and check a recipe; change nothing."""
    p = _parser("check", "Parse and check a recipe without running it.")
    p.add_argument("recipe")
    p.add_argument(
        "--vcname",
        default=None,
        help="check targets against this VC (default: the first in the repository)",
    )
    p.add_argument("--base_path")
    p.add_argument("--num_compute", type=int)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--allow-run", action="store_true")
    ns = p.parse_args(args)
    if not Path(ns.recipe).is_file():
        raise UserError(f"{ns.recipe}: no such recipe file")
    site = session.open_site(ns.site)
    vcname = ns.vcname
    if vcname is None:
        repo = open_repository(ns.base_path or site.repository, site.image_cache)
        vcname = next(iter(sorted(repo.entries)), None)
        if vcname is None:
            raise UserError(f"{repo.location}: the repository holds no VC to check against")
    options = session.RunOptions(
        recipe=ns.recipe,
        vcname=vcname,
        num_compute=ns.num_compute,
        base_path=ns.base_path,
        site=ns.site,
        sets=session.parse_sets(ns.sets),
        allow_run=ns.allow_run,
    )
    prep = session.prepare(options, fetch_images=False)
    params = [
        s.statement for s in flatten(prep.program.statements) if isinstance(s.statement, ast.Param)
    ]
    out.write(
        f"{ns.recipe}: ok ({len(flatten(prep.program.statements))} steps, checked against VC {vcname})\n"
    )
    if params:
        out.write("parameters (--set NAME=VALUE):\n")
        for param in params:
            assert isinstance(param, ast.Param)
            default = (
                param.default.literal
                if param.default and param.default.literal is not None
                else "(computed)"
            )
            out.write(f"  {param.name:<20} default {default}\n")
    runtime = prep.runtime
    out.write(
        f"'wait … up': {vcname}'s nodes are up when running and "
        f"{describe_up_tests(runtime.up_tests)} (chosen by {runtime.up_tests_source})\n"
    )
    return EXIT_OK


def cmd_resume(args: list[str], out: TextIO, err: TextIO) -> int:
    """Continue a VC's last run from its first unfinished step."""
    p = _parser(
        "resume", "Continue a VC's last run from its first unfinished step, same allocation."
    )
    p.add_argument("vcname")
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="resume even though the recipe changed since the run started (steps are "
        "matched by position)",
    )
    ns = p.parse_args(args)
    from pragmash.ui.cli.main import finish

    run = session.resume(
        validate_name("VC name", ns.vcname),
        on_event=StepPrinter(out, err),
        site=ns.site,
        accept_changes=ns.accept_changes,
    )
    for note in session.site_notes(run.prepared) + run.notes:
        err.write(f"{note}\n")
    cur = run.interpreter.current
    if cur is not None:
        span = cur.statement.span
        err.write(f"resuming {ns.vcname} at {span}: {cur.statement.text}\n")
    return finish(run, out, err)


def _site_ledger(site_path: str | None) -> tuple[SiteConfig, Ledger]:
    site = session.open_site(site_path)
    return site, Ledger(site)


def cmd_list(args: list[str], out: TextIO, err: TextIO) -> int:
    """VCs with their state, or (``list repository``) what the repository offers."""
    p = _parser("list", "List VCs (or `list repository`: the VCs the repository offers).")
    p.add_argument("what", nargs="?", choices=["vcs", "repository"], default="vcs")
    p.add_argument("--base_path")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site, ledger = _site_ledger(ns.site)
    if ns.what == "repository":
        repo = open_repository(ns.base_path or site.repository, site.image_cache)
        repo_rows = [
            {"vcname": name, "vc_in": repo.shown(path)}
            for name, path in sorted(repo.entries.items())
        ]
        if ns.json:
            _dump(repo_rows, out)
        else:
            out.write(f"repository {repo.location}:\n")
            for repo_row in repo_rows:
                out.write(f"  {repo_row['vcname']:<16} {repo_row['vc_in']}\n")
        return EXIT_OK
    runs = all_last_runs(ledger)
    names = sorted(set(runs) | set(alloc_mod.allocated_vcs(ledger)))
    rows: list[dict[str, Any]] = []
    for name in names:
        held = alloc_mod.current_allocation(ledger, name)
        run = runs.get(name)
        rows.append(
            {
                "vcname": name,
                "state": "allocated" if held else "released",
                "nodes": len(held.nodes) if held else 0,
                "fqdn": held.public.fqdn if held else None,
                "last_run": run.id if run else None,
                "last_outcome": run_outcome(run, lock_holder(ledger, name)) if run else None,
            }
        )
    if ns.json:
        _dump(rows, out)
        return EXIT_OK
    if not rows:
        out.write("no VCs (start one with `pragmash RECIPE --vcname NAME`)\n")
        return EXIT_OK
    out.write(f"{'VC':<16} {'STATE':<10} {'NODES':>5}  {'PUBLIC FQDN':<28} LAST RUN\n")
    for row in rows:
        last = f"{row['last_run']} {row['last_outcome']}" if row["last_run"] else "-"
        out.write(
            f"{row['vcname']:<16} {row['state']:<10} {row['nodes']:>5}  {row['fqdn'] or '-':<28} {last}\n"
        )
    return EXIT_OK


def cmd_status(args: list[str], out: TextIO, err: TextIO) -> int:
    """Each node's engine state against the ledger, and the last run's steps."""
    p = _parser("status", "Show a VC's nodes (engine state vs ledger) and its last run's steps.")
    p.add_argument("vcname")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site, ledger = _site_ledger(ns.site)
    vcname = validate_name("VC name", ns.vcname)
    held = alloc_mod.current_allocation(ledger, vcname)
    run = last_run(ledger, vcname)
    if held is None and run is None:
        raise UserError(f"{vcname}: no such VC in the ledger ({site.ledger_path})")
    engine = load_engine(site)
    engine_ok = True
    try:
        engine.check()
    except Exception:
        engine_ok = False
    booted = _booted_nodes(ledger, run.id) if run else set()
    nodes: list[dict[str, Any]] = []
    for lease in held.nodes if held else ():
        state = engine.state(lease.name) if engine_ok else "unknown (engine unreachable)"
        expected = "running" if lease.name in booted else None
        mismatch = engine_ok and expected is not None and state != expected
        nodes.append(
            {
                "name": lease.name,
                "role": lease.role,
                "engine_state": state,
                "ledger_says": expected or "not booted",
                "mismatch": mismatch,
                "cpus": lease.cpus,
                "ip": lease.public_ip or lease.private_ip,
                "private_ip": lease.private_ip,
                "macs": list(lease.macs),
            }
        )
    steps = steps_of(ledger, run.id) if run else []
    holder = lock_holder(ledger, vcname)
    data = {
        "vcname": vcname,
        "allocated": held is not None,
        "public_fqdn": held.public.fqdn if held else None,
        "vlan": held.vlan if held else None,
        "nodes": nodes,
        "lock": holder.describe() if holder and holder.alive else None,
        "run": {
            "id": run.id,
            "outcome": run_outcome(run, holder),
            "recipe": run.recipe,
            "steps": [
                {
                    "index": s.idx,
                    "at": f"{s.file}:{s.line}:{s.col}",
                    "text": s.text,
                    "outcome": s.outcome,
                    "message": s.message,
                    "stage": s.stage,
                }
                for s in steps
            ],
        }
        if run
        else None,
    }
    if ns.json:
        _dump(data, out)
        return EXIT_OK
    out.write(
        f"{vcname}: "
        + (
            f"{held.public.fqdn} ({held.public.ip}), VLAN {held.vlan}\n"
            if held
            else "no allocation\n"
        )
    )
    if data["lock"]:
        out.write(f"  in use by {data['lock']}\n")
    if nodes:
        out.write(f"  {'NODE':<22} {'ENGINE':<14} {'CPUS':>4}  {'IP':<16} MAC\n")
        for n in nodes:
            flag = (
                f"   <- ledger says {n['ledger_says']}; `pragmash clean {vcname}` repairs"
                if n["mismatch"]
                else ""
            )
            out.write(
                f"  {n['name']:<22} {n['engine_state']:<14} {n['cpus']:>4}  {n['ip']:<16} {', '.join(n['macs'])}{flag}\n"
            )
    if run:
        out.write(f"  run {run.id} ({run_outcome(run, holder)}): {run.recipe}\n")
        for s in steps:
            msg = f"  {s.message}" if s.message else ""
            if s.stage and s.outcome in ("failed", "interrupted"):
                msg = f"  {s.stage}: {s.message}"
            out.write(f"    {s.outcome:<11} {Path(s.file).name}:{s.line}:{s.col}  {s.text}{msg}\n")
    return EXIT_OK


def _booted_nodes(ledger: Ledger, run_id: int) -> set[str]:
    """Nodes a run's finished boot steps started (what the ledger believes is running)."""
    names: set[str] = set()
    for step in steps_of(ledger, run_id):
        if step.outcome == "done" and step.text.startswith(("boot", "ve_driver/boot")):
            names.update(step.products)
    return names


def cmd_shutdown(args: list[str], out: TextIO, err: TextIO) -> int:
    """Stop a VC's domains gracefully, then say what did not stop."""
    p = _parser("shutdown", "Stop a VC's domains gracefully.")
    p.add_argument("vcname")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait per node (default 120)"
    )
    ns = p.parse_args(args)
    site, ledger = _site_ledger(ns.site)
    vcname = validate_name("VC name", ns.vcname)
    held = alloc_mod.current_allocation(ledger, vcname)
    if held is None:
        raise UserError(f"{vcname}: no such VC in the ledger ({site.ledger_path})")
    engine = load_engine(site)
    engine.check()
    from pragmash.driver_api import StageContext

    ctx = StageContext(
        vcname=vcname,
        temp_dir=site.temp_dir / vcname,
        vc_out_path=site.temp_dir / vcname / "vc-out.xml",
    )
    not_stopped = []
    for lease in reversed(held.nodes):
        state = engine.state(lease.name)
        if state in ("absent", "shut off"):
            out.write(f"{lease.name}: {state}\n")
            continue
        ok = engine.shutdown(lease.name, ns.timeout, ctx)
        out.write(f"{lease.name}: {'stopped' if ok else 'still ' + engine.state(lease.name)}\n")
        if not ok:
            not_stopped.append(lease.name)
    if not_stopped:
        err.write(
            f"did not stop within {ns.timeout:g} s: {', '.join(not_stopped)}; "
            f"`pragmash clean {vcname}` forces them off\n"
        )
        return EXIT_STEP_FAILED
    return EXIT_OK


def cmd_clean(args: list[str], out: TextIO, err: TextIO) -> int:
    """Destroy a VC's domains, remove its staged images, release its leases."""
    p = _parser("clean", "Destroy a VC's domains, remove its staged images and release its leases.")
    p.add_argument("vcname")
    p.add_argument("--force", action="store_true", help="clean even while a run holds the VC")
    ns = p.parse_args(args)
    site, ledger = _site_ledger(ns.site)
    vcname = validate_name("VC name", ns.vcname)
    holder = lock_holder(ledger, vcname)
    if holder is not None and holder.alive and not ns.force:
        from pragmash.errors import BusyError

        raise BusyError(
            f"{vcname} is mid-run: held by {holder.describe()}",
            hint="use --force to clean it anyway",
        )
    held = alloc_mod.current_allocation(ledger, vcname)
    engine = load_engine(site)
    engine.check()
    acquire_lock(ledger, vcname) if holder is None or not holder.alive else None
    try:
        names = [n.name for n in held.nodes] if held else []
        list_domains = getattr(engine, "list_domains", None)
        if list_domains is not None:
            names += [n for n in list_domains(f"{vcname}-") if n not in names]
        for name in names:
            state = engine.state(name)
            if state != "absent":
                engine.destroy(name)
                out.write(f"destroyed {name} (was {state})\n")
        temp = site.temp_dir / vcname
        if temp.exists():
            shutil.rmtree(temp)
            out.write(f"removed {temp}\n")
        if alloc_mod.release(ledger, vcname):
            out.write(f"released {vcname}'s leases\n")
        run = last_run(ledger, vcname)
        if run is not None and run.outcome in ("running", "failed", "interrupted"):
            from pragmash.store.journal import Journal

            Journal(ledger, run.id).end(
                "cleaned", f"cleaned at {time.strftime('%Y-%m-%d %H:%M:%S')}"
            )
    finally:
        if holder is not None and ns.force:
            from pragmash.store.journal import JOURNAL_SCHEMA

            ledger.ensure_schema(JOURNAL_SCHEMA)
            with ledger.transaction() as conn:
                conn.execute("DELETE FROM locks WHERE vcname=?", (vcname,))
        else:
            release_lock(ledger, vcname)
    out.write(f"{vcname} is clean\n")
    return EXIT_OK


def cmd_repl(args: list[str], out: TextIO, err: TextIO) -> int:
    """Open the REPL (see pragmash.ui.repl.debugger)."""
    import importlib

    try:
        repl = importlib.import_module("pragmash.ui.repl.debugger")
    except ImportError as exc:  # pragma: no cover - until the REPL lands
        raise UserError(f"the REPL is not available: {exc}") from None
    result: int = repl.main(args, out, err)
    return result
