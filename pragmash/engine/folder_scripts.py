"""A driver folder's own scripts called from a recipe by name (``ve_driver/fix_images …``).

pragmash's stage words (``vc_driver/pre_boot``, ``ve_driver/allocate`` …) call a
folder's scripts with its dialect's arguments, through the runtime's stages. Every
other executable of a folder is callable too: ``vc_driver/NAME`` runs NAME from the
folder vc-in's ``<driver>`` names, ``ve_driver/NAME`` from the site's own VE driver
folder (``[drivers] ve``), with the recipe's words as its arguments — a list, never a
shell — in the VC's driver working folder, where the folder's other scripts run too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pragmash.driver_api import DistroDriver, StageContext
from pragmash.drivers.script_folder import ScriptFolderDriver, work_folder
from pragmash.engine.interpreter import StepOutcome, StepReporter
from pragmash.engine.registry import load_ve_folder
from pragmash.errors import StepError
from pragmash.language import ast
from pragmash.vc.site import SiteConfig


def callable_scripts(site: SiteConfig, distro: DistroDriver) -> tuple[list[str], list[str]]:
    """The scripts a recipe may call by name: (vc_driver's, ve_driver's)."""
    vc = distro.scripts() if isinstance(distro, ScriptFolderDriver) else []
    ve_folder = load_ve_folder(site)
    return vc, (ve_folder.scripts() if ve_folder is not None else [])


class ScriptRun(Protocol):
    """What a call needs of the run (the runtime)."""

    site: SiteConfig
    distro: DistroDriver

    def context(self, reporter: StepReporter) -> StageContext: ...


def folder_script_call(
    run: ScriptRun, stmt: ast.ScriptCall, args: Sequence[str], reporter: StepReporter
) -> StepOutcome:
    """Run the statement's script with ``args``; what it printed becomes the step's notes."""
    site, distro, ctx = run.site, run.distro, run.context(reporter)
    stage = f"{stmt.driver}/{stmt.command}"
    folder: ScriptFolderDriver | None
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
    return StepOutcome("done", result.message, dict(result.products))
