"""A site's own VE driver folder as pragmash's engine (``[engine] driver = "scripts"``).

The seed README's ``ve_driver`` is "replaced with the local Virtual Engine (VE) driver
which can be configured": a site's ``allocate``, fix and ``boot`` executables, which
know its address pools and its ``rocks`` commands. With ``[engine] driver = "scripts"``
and ``[drivers] ve = "kvm_rocks"`` pragmash calls them, in the folder's dialect:

* ``allocate`` writes vc-out.xml; pragmash reads it back, refuses a malformed or
  inconsistent one naming the element, and records it in the ledger and the journal
  as its own allocations (:mod:`pragmash.engine.steps.folder_scripts`);
* ``fix_driver`` (2013 and seed dialects) is the engine's fix: ``fix … via virt-v2v``
  calls it per image between pre_fix and post_fix, as pragma_boot v0.2 did
  (:meth:`ScriptEngine.fix_driver`; :mod:`pragmash.engine.steps.fix` calls it);
* ``fix_images`` (2015 dialects, ``ve_driver/fix_images`` in a recipe) is read back
  for ``FE_DISK COMPUTE_DISK``, the disks ``boot`` is then given;
* ``boot`` per node.

What a script engine cannot tell, it says: a node's state is ``unknown``, and it can
neither stop nor destroy a node (``status``, ``stop`` and ``clean`` say so; ``clean``
still releases the ledger's leases). ``wait … up`` passes by a TCP port test alone;
any other wait fails at once (:mod:`pragmash.engine.steps.readiness`). pragmash's libvirt engine stays the default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pragmash import domain_states, outcomes, stages
from pragmash.driver_api import HostInfo, NodePlan, StageContext, StageResult
from pragmash.drivers.pragma_boot.dialects import PB2013, PB2015, PB2015_IPOP, TABLE
from pragmash.drivers.pragma_boot.folder import (
    STAGES,
    ScriptFolderDriver,
    boot_host,
    fix_driver_input,
    fix_work_folder,
    key_file,
    site_ve_folder,
    work_folder,
)
from pragmash.errors import StepError, UserError
from pragmash.images.libvirt_xml.domain import render_domain
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcout import VcOut, read_vc_out

FIXED = "fix_images.disks"  # in the VC's driver working folder: FE_DISK COMPUTE_DISK
CANNOT = (
    "the site's VE driver folder {folder} (a script engine) cannot tell a node's state, "
    "nor stop or destroy it: use the site's own tools"
)


class ScriptEngine:
    """The site's VE driver folder, called per its dialect."""

    def __init__(self, folder: ScriptFolderDriver) -> None:
        self.folder = folder
        self.name = f"scripts:{folder.name}"
        self.dialect = folder.dialect
        #: FE_DISK and COMPUTE_DISK as the folder's fix_images said them, by role
        self.fixed_disks: dict[str, Path] = {}

    @property
    def simulated(self) -> bool:
        return False

    def check(self) -> None:
        problems = self.folder.inspect("ve")
        if problems:
            raise StepError("; ".join(problems), stage=stages.CONNECT)

    def host_info(self) -> HostInfo:
        return HostInfo(emulator=None, kvm_usable=False)

    def list_domains(self, prefix: str) -> list[str]:
        return []  # the scripts cannot list what they made

    # -- allocate and fix, as the dialect's caller called them ------------------------

    def allocate(self, cpus: int, vc_in: Path, key: Path, ctx: StageContext) -> VcOut:
        """Run ``allocate``; the vc-out it wrote, read back and schema-checked."""
        vc_out = ctx.vc_out_path
        vc_out.parent.mkdir(parents=True, exist_ok=True)
        if self.dialect in (PB2015, PB2015_IPOP):
            args = [str(cpus), str(vc_in), str(vc_out), str(ctx.temp_dir), str(key)]
        elif self.dialect == PB2013:
            args = [str(cpus), str(vc_in), str(vc_out)]
        else:  # the seed: allocate num_compute vc_out_path
            args = [str(cpus), str(vc_out)]
        self.folder.call(
            "allocate",
            args,
            log_path=ctx.temp_dir / f"allocate.{self.folder.name}.log",
            note=ctx.note,
            cwd=work_folder(ctx),
        )
        if not vc_out.is_file():
            raise StepError(
                f"{self.folder.folder / 'allocate'} exited 0 but wrote no vc-out.xml at {vc_out}",
                stage=STAGES["allocate"],
            )
        return read_vc_out(vc_out)

    def fix_images(self, vc_in: Path, ctx: StageContext) -> StageResult:
        """``fix_images VC_IN TEMP frontend,compute``; its last output line names the disks."""
        if self.dialect not in (PB2015, PB2015_IPOP):
            raise StepError(
                f"{stages.FIX_IMAGES}: {self.dialect} never called fix_images "
                f"(the folder {self.folder.folder} is declared {self.dialect})",
                stage=STAGES["fix_images"],
            )
        result = self.folder.call(
            "fix_images",
            [str(vc_in), str(ctx.temp_dir), "frontend,compute"],
            log_path=ctx.temp_dir / f"fix_images.{self.folder.name}.log",
            note=ctx.note,
            cwd=work_folder(ctx),
        )
        lines = [line for line in result.output_tail if line.strip()]
        words = lines[-1].split() if lines else []
        if len(words) != 2:
            raise StepError(
                f"{self.folder.folder / 'fix_images'}: its last output line should be "
                f"'FE_DISK COMPUTE_DISK', got {lines[-1] if lines else 'no output'!r}",
                stage=STAGES["fix_images"],
                output_tail=result.output_tail,
            )
        self.fixed_disks = {"frontend": Path(words[0]), "compute": Path(words[1])}
        (work_folder(ctx) / FIXED).write_text(f"{words[0]} {words[1]}\n", encoding="utf-8")
        result.products.update(frontend=words[0], compute=words[1])
        result.message = f"frontend disk {words[0]}, compute disk {words[1]}"
        return result

    def fix_driver_skip(self) -> str | None:
        """Why ``fix … via virt-v2v`` calls no fix_driver of this folder; None when it calls one."""
        if TABLE[self.dialect].calls("fix_driver"):
            return None
        return (
            f"the site's VE driver folder {self.folder.folder} ({self.dialect}) has no "
            f"fix_driver: {TABLE[self.dialect].caller} fixed with fix_images, once, before "
            "allocate (`ve_driver/fix_images` in the recipe)"
        )

    def fix_identity(self) -> str:
        """What the fixed-image cache keys a base fix_driver made by: edit it, and images fix anew."""
        script = self.folder.folder / "fix_driver"
        digest = hashlib.sha256(script.read_bytes() if script.is_file() else b"(absent)")
        return f"{self.name} fix_driver ({self.dialect}): {digest.hexdigest()}"

    def fix_driver(self, node: NodePlan, disk: Path, temp: Path, ctx: StageContext) -> StageResult:
        """``fix_driver TEMP/vc-in.xml IFACES TEMP``, as pragma_boot v0.2's prepareImage ran it.

        ``disk`` (in ``temp``, as v0.2 staged it in its temp_directory) is the one
        pre_fix_driver was given and post_fix_driver will be; the XML is ``node``'s
        role's vc-in ``<domain>`` pointing at it. The script runs in the working folder
        pre_fix and post_fix of this image share, and fixes ``disk`` where it is:
        v0.2 gave post_fix_driver and boot that very path.
        """
        xml_file = temp / "vc-in.xml"
        domain, ifaces = fix_driver_input(node.template_xml, disk, self.dialect)
        xml_file.write_text(domain, encoding="utf-8")
        result = self.folder.call(
            "fix_driver",
            [str(xml_file), ifaces, str(temp)],
            log_path=ctx.temp_dir / f"fix_driver.{self.folder.name}.log",
            note=ctx.note,
            cwd=fix_work_folder(ctx, node),
        )
        if not disk.is_file():
            raise StepError(
                f"{self.folder.folder / 'fix_driver'} exited 0 but left no disk at {disk}, "
                "the path its XML named: pragma_boot gave post_fix_driver and boot that "
                "path, so the fixed disk must be there",
                stage=STAGES["fix_driver"],
                output_tail=result.output_tail,
            )
        return result

    # -- boot, per node ---------------------------------------------------------------

    def _fixed(self, ctx: StageContext) -> dict[str, Path]:
        """fix_images' disks: said in this run, or by an earlier one (resume) in its file."""
        saved = work_folder(ctx) / FIXED
        if not self.fixed_disks and saved.is_file():
            words = saved.read_text(encoding="utf-8").split()
            if len(words) == 2:
                self.fixed_disks = {"frontend": Path(words[0]), "compute": Path(words[1])}
        return self.fixed_disks

    def boot(self, node: NodePlan, ctx: StageContext) -> StageResult:
        fixed = self._fixed(ctx).get(node.role)
        disk = str(fixed or (node.disks[0] if node.disks else ""))
        vc_out = ctx.vc_out_path
        host = boot_host(node, vc_out)
        if self.dialect in (PB2015, PB2015_IPOP):
            args = [disk, host, str(ctx.temp_dir), str(vc_out)]
            if self.dialect == PB2015_IPOP:
                args += [self.folder.ipop_url, "0" if node.role == "frontend" else "1"]
        else:
            domain = ctx.temp_dir / f"{node.name}.domain.xml"
            domain.write_text(render_domain(node, self.host_info()), encoding="utf-8")
            if self.dialect == PB2013:
                args = [disk, str(domain), host]
            else:  # the seed: boot file_path xml_file vc_out host_name
                args = [disk, str(domain), str(vc_out), node.name]
        key_file(node, ctx)  # KEY beside, for scripts that read it there
        self.folder.call(
            "boot",
            args,
            log_path=ctx.temp_dir / f"{node.name}.{self.folder.name}.log",
            note=ctx.note,
            cwd=work_folder(ctx),
        )
        return StageResult(outcomes.DONE, f"{node.name} started", products={"script": "boot"})

    # -- what a script engine cannot tell ---------------------------------------------

    def state(self, name: str) -> str:
        return domain_states.UNKNOWN

    def state_reason(self, name: str) -> str:
        return CANNOT.format(folder=self.folder.folder)

    def agent_answers(self, name: str) -> bool:
        return False

    def shutdown(self, name: str, timeout: float, ctx: StageContext) -> bool:
        ctx.note(CANNOT.format(folder=self.folder.folder))
        return False

    def destroy(self, name: str) -> None:
        return None  # nothing to ask the scripts; clean says so and releases the leases

    def domain_xml(self, name: str) -> str | None:
        return None

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        return []


def engine_driver(site: SiteConfig) -> ScriptEngine:
    """The site's ``[drivers] ve`` folder as its engine (``[engine] driver = "scripts"``)."""
    folder = site_ve_folder(site)
    if folder is None:
        raise UserError(
            f'{site.source}: [engine] driver = "scripts" needs [drivers] ve, the site\'s '
            'own VE driver folder (e.g. ve = "kvm_rocks")'
        )
    return ScriptEngine(folder)
