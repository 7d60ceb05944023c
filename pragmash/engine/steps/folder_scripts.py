"""A driver folder's own scripts called from a recipe by name (``ve_driver/fix_images …``).

pragmash's stage words (``vc_driver/pre_boot``, ``ve_driver/allocate`` …) call a
folder's scripts with its dialect's arguments, through the runtime's stages. Every
other executable of a folder is callable too: ``vc_driver/NAME`` runs NAME from the
folder vc-in's ``<driver>`` names, ``ve_driver/NAME`` from the site's own VE driver
folder (``[drivers] ve``), with the recipe's words as its arguments — a list, never a
shell — in the VC's driver working folder, where the folder's other scripts run too.

With the site's own VE driver as the engine (``[engine] driver = "scripts"``),
``ve_driver/fix_images`` (no words) is the dialect's call whose output names the disks
``boot`` gets, ``fix … via virt-v2v`` calls its ``fix_driver`` (:func:`engine_fix`),
and ``allocate`` is the site's script, read back and recorded here. ``scale`` is
refused (:func:`scale_refusal`): no dialect has a call that adds computes to a VC or
removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pragmash import outcomes, stages
from pragmash.driver_api import DistroDriver, EngineDriver, StageContext
from pragmash.drivers.pragma_boot.dialects import usage
from pragmash.drivers.pragma_boot.engine import ScriptEngine
from pragmash.drivers.pragma_boot.folder import ScriptFolderDriver, work_folder
from pragmash.engine.run.interpreter import StepOutcome, StepReporter
from pragmash.engine.run.registry import load_ve_folder
from pragmash.engine.steps.fix import SiteFix
from pragmash.errors import AllocationError, StepError, UserError, VcFormatError
from pragmash.language import ast
from pragmash.store.allocation import Allocation, NodeLease, current_allocation
from pragmash.store.ledger import Ledger
from pragmash.store.site_allocation import record_allocation
from pragmash.vc.config.site import SCRIPT_ENGINE, PublicAddress, SiteConfig
from pragmash.vc.formats.names import frontend_name
from pragmash.vc.formats.vcin import VcIn
from pragmash.vc.formats.vcout import VcOut, compute_vc_out_path, compute_vc_out_to_bytes


def callable_scripts(site: SiteConfig, distro: DistroDriver) -> tuple[list[str], list[str]]:
    """The scripts a recipe may call by name: (vc_driver's, ve_driver's)."""
    vc = distro.scripts() if isinstance(distro, ScriptFolderDriver) else []
    ve_folder = load_ve_folder(site)
    return vc, (ve_folder.scripts() if ve_folder is not None else [])


class ScriptRun(Protocol):
    """What calling a site's scripts needs of the run (the runtime)."""

    site: SiteConfig
    distro: DistroDriver
    engine: EngineDriver
    ledger: Ledger
    vcin: VcIn
    vcname: str
    key: str | None

    def context(self, reporter: StepReporter) -> StageContext: ...

    def adopt(self, allocation: Allocation) -> None: ...


def folder_script_call(
    run: ScriptRun, stmt: ast.ScriptCall, args: Sequence[str], reporter: StepReporter
) -> StepOutcome:
    """Run the statement's script with ``args``; what it printed becomes the step's notes."""
    site, distro, ctx = run.site, run.distro, run.context(reporter)
    stage = f"{stmt.driver}/{stmt.command}"
    folder: ScriptFolderDriver | None
    fix_images = stmt.driver == "ve_driver" and stmt.command == "fix_images" and not args
    if fix_images and isinstance(run.engine, ScriptEngine):  # read back: the disks boot gets
        result = run.engine.fix_images(run.vcin.path, ctx)
        return StepOutcome(outcomes.DONE, result.message, dict(result.products))
    if stmt.driver == "vc_driver":
        folder = distro if isinstance(distro, ScriptFolderDriver) else None
        missing = f"the VC's distro driver {distro.name!r} is not a driver folder"
    else:
        folder = load_ve_folder(site)
        missing = f"{site.source} names no VE driver folder ([drivers] ve)"
    if folder is None:
        raise StepError(f"{stage}: {missing}, so there is no script to call", stage=stage)
    result = folder.call(
        stmt.command,
        args,
        log_path=ctx.temp_dir / f"{stmt.command}.{folder.name}.log",
        note=reporter.note,
        cwd=work_folder(ctx),
        stage=stage,
    )
    return StepOutcome(outcomes.DONE, result.message, dict(result.products))


# -- a site's own VE driver as the engine ------------------------------------------------


def engine_fix(
    engine: EngineDriver, method: str, note: Callable[[str], None]
) -> tuple[str, SiteFix | None]:
    """What ``fix … via METHOD`` does on this engine: (the method used, the site's fix).

    pragmash's own engine: the method, as asked. A site's script engine: ``virt-v2v``
    is its ``fix_driver`` (the seed's "ve_driver/fix_driver (use virt-v2v)"); a folder
    whose dialect calls none (2015: fix_images) skips it, said through ``note``, and
    the fix is then ``none`` (pre_fix and post_fix only). ``virt-customize`` and
    ``none`` stay pragmash's on any engine.
    """
    if not isinstance(engine, ScriptEngine) or method != "virt-v2v":
        return method, None
    skipped = engine.fix_driver_skip()
    if skipped is not None:
        note(f"{stages.FIX}: skipped: {skipped}")
        return "none", None
    return method, engine


def scale_refusal(site: SiteConfig, vcname: str, change: int) -> UserError | None:
    """Why ``pragmash scale VC +N/-N`` cannot be done on the site's script engine (None: it can).

    pragma_boot had no scale, and no dialect's scripts can express one: every
    ``allocate`` makes a whole VC (a frontend, its public address and VLAN, its
    computes; kvm_rocks's runs ``rocks add cluster``), none adds computes to a VC, and
    none stops, destroys or gives back a node. Asking ``allocate`` for N more CPUs
    would make a second cluster on another VLAN, not computes of this one; releasing
    leases of nodes the site's engine still runs would make the ledger lie. So the
    scale is refused before anything is locked or taken.
    """
    if site.engine != SCRIPT_ENGINE:
        return None
    folder = site.ve_folder or "?"
    dialect = site.dialect_of(folder) if site.ve_folder else "seed"
    engine = f'{site.source}: [engine] driver = "{SCRIPT_ENGINE}", [drivers] ve = "{folder}"'
    if change > 0:
        why = (
            f"its allocate makes a whole VC ({dialect} calls it as "
            f"`{usage(dialect, 'allocate')}`: a frontend, its address and VLAN, its "
            "computes) and no dialect has a call that adds computes to a VC"
        )
        instead = (
            f"`pragmash clean {vcname}`, then run its recipe again with a larger allocate; "
            "or run VCs that must grow on pragmash's libvirt engine"
        )
    else:
        why = "no dialect has a script that stops, destroys or gives back a node"
        instead = (
            "remove the nodes with the site's own tools, or `pragmash clean "
            f"{vcname}` and run its recipe again with a smaller allocate; or run VCs that "
            "must shrink on pragmash's libvirt engine"
        )
    return UserError(
        f"scale {change:+d}: {vcname} runs on the site's own VE driver folder ({engine}), "
        f"which cannot scale a VC: {why} (pragma_boot had no scale); nothing was taken",
        hint=f'{instead} ([engine] driver = "libvirt", the default, in {site.source})',
    )


def allocates_by_script(engine: EngineDriver) -> bool:
    """Whether the site's own ``allocate`` script writes the VC's vc-out (a script
    engine), so pragmash does not make those files from the ledger."""
    return isinstance(engine, ScriptEngine)


def site_allocate(run: ScriptRun, cpus: int, reporter: StepReporter) -> StepOutcome | None:
    """``allocate`` by the site's own script (None: the engine is not a script engine).

    The vc-out it wrote is read back, checked for what the ledger needs, and recorded
    in the ledger as pragmash's own allocations are; on resume the held one is used.
    """
    engine = run.engine
    if not isinstance(engine, ScriptEngine):
        return None
    ctx = run.context(reporter)
    held = current_allocation(run.ledger, run.vcname)
    if held is not None and held.cpus != cpus:
        raise AllocationError(
            f"VC {run.vcname} already holds an allocation of {held.cpus} compute CPUs, "
            f"not {cpus}; run `pragmash clean {run.vcname}` first to release it"
        )
    if held is None:
        key = work_folder(ctx) / "key.pub"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(f"{run.key}\n" if run.key else "", encoding="utf-8")
        vc_out = engine.allocate(cpus, run.vcin.path, key, ctx)
        path = ctx.vc_out_path
        check_site_vc_out(vc_out, cpus, path)
        held = record_allocation(
            run.ledger,
            site=run.site,
            vcin=run.vcin,
            vcname=run.vcname,
            made=lambda vlan: _allocation(vc_out, run, cpus, vlan),
        )
        for node in vc_out.computes:  # each compute's own file, unless allocate wrote it
            own = compute_vc_out_path(path, node.name)
            if not own.exists():
                own.write_bytes(compute_vc_out_to_bytes(vc_out, node.name))
    run.adopt(held)
    names = " ".join(n.name for n in held.nodes)
    return StepOutcome(
        outcomes.DONE,
        f"{held.public.fqdn} ({held.public.ip}) by {engine.name}'s allocate, "
        f"{len(held.computes)} computes ({sum(c.cpus for c in held.computes)} CPUs); "
        f"the ledger holds VLAN {held.vlan} for it",
        {
            "public_ip": held.public.ip,
            "fqdn": held.public.fqdn,
            "vlan": str(held.vlan),
            "nodes": names,
            "vc_out": str(ctx.vc_out_path),
            "engine": engine.name,
        },
    )


def check_site_vc_out(vc_out: VcOut, cpus: int, path: Path) -> None:
    """Refuse a vc-out the ledger could not hold or that is not what was asked."""
    front = vc_out.frontend
    for element, value in (
        ("/vc/frontend/public/@mac", front.public_mac),
        ("/vc/frontend/private/@mac", front.private_mac),
    ):
        if not value:
            raise VcFormatError(
                "missing: the ledger records every MAC a VC holds", file=str(path), element=element
            )
    seen: dict[str, str] = {front.public_mac.lower(): "/vc/frontend/public/@mac"}
    where = "/vc/frontend/private/@mac"
    if front.private_mac.lower() in seen:
        raise VcFormatError(
            f"{front.private_mac} is also the public MAC", file=str(path), element=where
        )
    seen[front.private_mac.lower()] = where
    names: set[str] = set()
    ips = {front.private_ip}
    for number, node in enumerate(vc_out.computes, start=1):
        element = f"/vc/compute/node[{number}]"
        if node.name in names:
            raise VcFormatError(f"name {node.name} twice", file=str(path), element=element)
        if node.mac.lower() in seen:
            raise VcFormatError(
                f"mac {node.mac} is also {seen[node.mac.lower()]}", file=str(path), element=element
            )
        if node.ip in ips:
            raise VcFormatError(f"ip {node.ip} is given twice", file=str(path), element=element)
        names.add(node.name)
        seen[node.mac.lower()] = element
        ips.add(node.ip)
    given = sum(n.cpus for n in vc_out.computes)
    if given != cpus:
        raise VcFormatError(
            f"the site's allocate was asked for {cpus} compute CPUs and wrote {given}",
            file=str(path),
            element="/vc/compute",
        )


def _allocation(vc_out: VcOut, run: ScriptRun, cpus: int, vlan: int) -> Allocation:
    front = vc_out.frontend
    nodes = [
        NodeLease(
            name=frontend_name(run.vcname),
            role="frontend",
            index=None,
            cpus=run.vcin.frontend.vcpus,
            macs=(front.private_mac, front.public_mac),
            private_ip=front.private_ip,
            public_ip=front.public_ip,
        ),
        *(
            NodeLease(
                name=node.name,
                role="compute",
                index=index,
                cpus=node.cpus,
                macs=(node.mac,),
                private_ip=node.ip,
                public_ip=None,
            )
            for index, node in enumerate(vc_out.computes)
        ),
    ]
    return Allocation(
        vcname=run.vcname,
        vlan=vlan,
        public=PublicAddress(ip=front.public_ip, fqdn=front.public_fqdn),
        cpus=cpus,
        nodes=tuple(nodes),
    )
