"""A site's pragma_boot driver folder of executables, used unchanged as a pragmash driver.

Sites already have driver folders holding ``allocate``, ``pre_fix_driver``,
``fix_driver`` (or ``fix_images``), ``post_fix_driver``, ``pre_boot`` and ``boot``
scripts. Rewriting them is what keeps sites on old tools, so this adapter calls each
one exactly as the pragma_boot code it was written for did (the folder's *dialect*,
:mod:`pragmash.drivers.pragma_boot.dialects`): its arguments in its order, no shell,
stdin closed, the working folder a caller's scripts shared — with a timeout, keeping
what the script printed (the step's notes, the journal's output tail).

The distro stages (``pre_fix``, ``post_fix``, ``pre_boot``) implement
:class:`pragmash.driver_api.DistroDriver`; the engine-side stages (``allocate``,
the fix, ``boot``) are methods for the site's own VE driver (``[drivers] ve``).

Arguments per dialect (see script_dialects.TABLE for all of them)::

    seed               pre_fix_driver path · post_fix_driver path ·
                       pre_boot file_path vc_out host_name
    pragma_boot-2013   pre_fix_driver DISK · post_fix_driver DISK (the same DISK, the
                       same working folder: the fix's ``./yum.backup`` survives) ·
                       pre_boot DISK VC_OUT HOST KEY (HOST: the frontend's public FQDN,
                       a compute's node name; KEY: a file of the ``--key`` keys)

VC_OUT of pre_boot is the file the node boots with (:func:`pragmash.vc.formats.vcout.node_vc_out`):
the whole VC's for the frontend, each compute its own (``[vc_out] computes``), always
under the name ``vc-out.xml`` (:func:`named_vc_out`: the scripts copy it by its name).

Working folders: every script of a VC runs in ``TEMP/<vc>/driver-work`` (pragma_boot's
scripts ran in the caller's folder); pre_fix and post_fix of one image share
``driver-work/fix-<node>`` (the first node booting that image), so state one leaves
there the other finds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from lxml import etree

from pragmash import outcomes, stages
from pragmash.driver_api import NodePlan, StageContext, StageResult
from pragmash.drivers.pragma_boot.dialects import (
    PB2013,
    PB2015,
    PB2015_IPOP,
    SEED,
    TABLE,
    Role,
    executables,
    inspect_folder,
    usage,
)
from pragmash.errors import StepError, UserError
from pragmash.images.libvirt_xml.edit import child
from pragmash.images.tools import run_tool
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcout import node_vc_out, read_vc_out
from pragmash.vc.formats.xmlsafe import parse_xml_bytes

#: Seed executable -> the stage name pragmash reports it under.
STAGES: dict[str, str] = {
    "allocate": stages.ALLOCATE,
    "pre_fix_driver": stages.PRE_FIX,
    "fix_driver": stages.FIX,
    "fix_images": stages.FIX_IMAGES,
    "post_fix_driver": stages.POST_FIX,
    "pre_boot": stages.PRE_BOOT,
    "boot": stages.BOOT,
}

#: Stages a seed folder may leave out: pragma_boot's own drivers often had nothing to
#: do around the fix. Everything else does work the cluster cannot boot without.
OPTIONAL = frozenset({"pre_fix_driver", "post_fix_driver"})

WORK = "driver-work"


class ScriptFolderDriver:
    """Calls a driver folder's executables as the folder's dialect's caller did."""

    def __init__(
        self, folder: Path, timeout: float = 3600, *, dialect: str = SEED, ipop_url: str = ""
    ) -> None:
        if dialect not in TABLE:
            raise ValueError(f"unknown driver dialect {dialect!r}")
        self.folder = Path(folder)
        self.timeout = timeout
        self.name = self.folder.name
        self.dialect = dialect
        self.ipop_url = ipop_url

    def __repr__(self) -> str:
        return f"ScriptFolderDriver({str(self.folder)!r}, dialect={self.dialect!r})"

    def inspect(self, role: Role) -> list[str]:
        """What keeps the folder from serving ``role`` in its dialect (``pragmash check``)."""
        return inspect_folder(self.folder, self.dialect, role)

    def scripts(self) -> list[str]:
        """The folder's executables, each callable from a recipe by name."""
        return executables(self.folder)

    # -- what the fixed-image cache needs to know ------------------------------------

    @property
    def fix_hooks(self) -> bool:
        """Whether the folder has a pre_fix_driver or post_fix_driver that may change images."""
        if not TABLE[self.dialect].calls("pre_fix_driver"):
            return False
        return any((self.folder / script).exists() for script in OPTIONAL)

    def fix_identity(self) -> str:
        """The digest of the folder's pre_fix/post_fix scripts: edit one, and images fix anew."""
        digest = hashlib.sha256()
        for script in sorted(OPTIONAL):
            path = self.folder / script
            digest.update(f"{script}\0".encode())
            digest.update(path.read_bytes() if path.is_file() else b"(absent)")
            digest.update(b"\0")
        suffix = "" if self.dialect == SEED else f" ({self.dialect})"
        return f"script folder {self.name}{suffix}: {digest.hexdigest()}"

    # -- DistroDriver ---------------------------------------------------------------

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return self._fix_hook("pre_fix_driver", node, disk, ctx)

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return self._fix_hook("post_fix_driver", node, disk, ctx)

    def _fix_hook(self, script: str, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        if not TABLE[self.dialect].calls(script):
            return StageResult(outcomes.SKIPPED, f"{self.dialect} calls no {script}")
        return self._call(
            script,
            [str(disk)],
            log_path=self._log(ctx, node),
            note=ctx.note,
            cwd=fix_work_folder(ctx, node),
        )

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        if self.dialect in (PB2015, PB2015_IPOP):
            return StageResult(
                outcomes.SKIPPED, f"{self.dialect} calls no pre_boot (its boot does it)"
            )
        # VC_OUT: the file the node boots with (the whole VC's for the frontend, a
        # compute's own unless the site's [vc_out] computes says "whole")
        own = named_vc_out(node_vc_out(ctx, node), node, ctx)
        if self.dialect == PB2013:
            args = [str(disk), str(own), boot_host(node, vc_out), str(key_file(node, ctx))]
        else:
            args = [str(disk), str(own), node.name]
        return self._call(
            "pre_boot", args, log_path=self._log(ctx, node), note=ctx.note, cwd=work_folder(ctx)
        )

    # -- engine-side stages, as the seed calls them ----------------------------------

    def allocate(
        self, num_compute: int, vc_out_path: Path, *, log_path: Path | None = None
    ) -> StageResult:
        """``allocate num_compute vc_out_path``: the script writes vc-out.xml there."""
        result = self._call("allocate", [str(num_compute), str(vc_out_path)], log_path=log_path)
        if not Path(vc_out_path).is_file():
            raise StepError(
                f"{self.folder / 'allocate'} exited 0 but wrote no vc-out.xml at {vc_out_path}",
                stage=STAGES["allocate"],
                output_tail=result.output_tail,
            )
        result.products["vc_out"] = str(vc_out_path)
        return result

    def fix(
        self,
        xml_file: Path,
        interfaces: str,
        temp_directory: Path,
        *,
        log_path: Path | None = None,
    ) -> StageResult:
        """``fix_driver xml_file eth0,eth1 temp_directory``."""
        return self._call(
            "fix_driver", [str(xml_file), interfaces, str(temp_directory)], log_path=log_path
        )

    def boot(
        self,
        file_path: Path,
        xml_file: Path,
        vc_out: Path,
        host_name: str,
        *,
        log_path: Path | None = None,
    ) -> StageResult:
        """``boot file_path xml_file vc_out host_name``."""
        return self._call(
            "boot", [str(file_path), str(xml_file), str(vc_out), host_name], log_path=log_path
        )

    # -- the one way a script is run -------------------------------------------------

    def call(
        self,
        script: str,
        args: Sequence[str],
        *,
        log_path: Path | None = None,
        note: Callable[[str], None] | None = None,
        cwd: Path | None = None,
        stage: str | None = None,
    ) -> StageResult:
        """Run the folder's ``script`` with ``args`` (a list: never a shell)."""
        return self._call(script, list(args), log_path=log_path, note=note, cwd=cwd, stage=stage)

    def executable(self, script: str, stage: str | None = None) -> Path | None:
        """The folder's executable for ``script``, None when absent; StepError if not runnable."""
        path = self.folder / script
        if not path.exists():
            return None
        stage = stage or STAGES.get(script, f"driver/{script}")
        if not path.is_file():
            raise StepError(
                f"{path} is not a file: a driver stage must be an executable file", stage=stage
            )
        if not os.access(path, os.X_OK):
            raise StepError(
                f"{path} is not executable",
                stage=stage,
                hint=f"make it executable: chmod +x {path}",
            )
        return path

    def _log(self, ctx: StageContext, node: NodePlan) -> Path:
        return ctx.temp_dir / f"{node.name}.{self.name}.log"

    def _call(
        self,
        script: str,
        args: list[str],
        *,
        log_path: Path | None = None,
        note: Callable[[str], None] | None = None,
        cwd: Path | None = None,
        stage: str | None = None,
    ) -> StageResult:
        stage = stage or STAGES.get(script, f"driver/{script}")
        path = self.executable(script, stage)
        if path is None:
            if script in OPTIONAL and self.dialect == SEED:
                return StageResult(outcomes.SKIPPED, f"driver folder {self.folder} has no {script}")
            raise StepError(
                f"driver folder {self.folder} has no {script}: the {stage} stage needs it",
                stage=stage,
                hint=f"add an executable {self.folder / script} "
                f"(called as: {usage(self.dialect, script)})",
            )
        on_line = (lambda line: note(f"{script}: {line}")) if note is not None else None
        if cwd is not None:
            cwd.mkdir(parents=True, exist_ok=True)
        try:
            result = run_tool(
                [str(path), *args],
                timeout=self.timeout,
                log_path=log_path,
                on_line=on_line,
                stage=stage,
                cwd=cwd,
            )
        except StepError as exc:
            raise StepError(
                f"{path}: {exc.message}",
                stage=stage,
                output_tail=exc.output_tail,
                hint=exc.hint,
            ) from exc
        products = {"script": str(path)}
        if log_path is not None:
            products["log"] = str(log_path)
        return StageResult(
            outcomes.DONE,
            f"{script} {' '.join(args)}",
            products=products,
            output_tail=list(result.tail),
        )


# -- the values pragma_boot's callers passed ------------------------------------------


def work_folder(ctx: StageContext) -> Path:
    """The VC's folder its driver scripts run in (pragma_boot's were run in its own)."""
    return ctx.temp_dir / WORK


def fix_work_folder(ctx: StageContext, node: NodePlan) -> Path:
    """The folder pre_fix and post_fix of one image share: state left by one, found by the other."""
    return work_folder(ctx) / f"fix-{node.name}"


def named_vc_out(path: Path, node: NodePlan, ctx: StageContext) -> Path:
    """``path`` as a file named ``vc-out.xml``: pragma_boot's pre_boot scripts copied
    VC_OUT into the image's /root by its own name (``cp $vc_out $mnt/root/``), and the
    guest reads /root/vc-out.xml. A compute's own file (``NAME.xml``) is copied to
    ``driver-work/NAME/vc-out.xml`` for them."""
    if path.name == "vc-out.xml":
        return path
    named = work_folder(ctx) / node.name / "vc-out.xml"
    named.parent.mkdir(parents=True, exist_ok=True)
    named.write_bytes(path.read_bytes())
    return named


def boot_host(node: NodePlan, vc_out: Path) -> str:
    """HOST as pragma_boot passed it: the frontend's public FQDN, a compute's node name."""
    if node.role != "frontend":
        return node.name
    fqdn = read_vc_out(vc_out).frontend.public_fqdn
    if not fqdn:
        raise StepError(
            f"{vc_out}: the frontend has no public fqdn, which pre_boot gets as HOST",
            stage=STAGES["pre_boot"],
        )
    return fqdn


def fix_driver_input(template_xml: str, disk: Path, dialect: str) -> tuple[str, str]:
    """The XML and IFACES ``fix_driver`` got: (the ``<domain>`` text, ``eth0.2,eth1,``).

    pragma_boot v0.2 (``prepareImage``, ``@e147501:268-310``) wrote the role's
    ``<domain>`` from vc-in.xml to ``TEMP/vc-in.xml`` with its disk's ``source file``
    set to the staged copy, and gave each ``devices/interface/source``'s ``dev`` then
    ``bridge`` followed by a comma (a ``network`` source adds only the comma). The
    domain here is the vc-in template as written; its first ``<disk device='disk'>``
    points at ``disk``, a standalone qcow2, which its ``<driver type>`` says. The seed
    README's form is ``eth0,eth1``: no trailing comma.
    """
    domain = parse_xml_bytes(template_xml.encode("utf-8"), "the vc-in <domain>")
    for element in domain.iterfind("./devices/disk"):
        if element.get("device", "disk") == "disk":
            child(element, "source").set("file", str(disk))
            driver = child(element, "driver", first=True)
            driver.set("type", "qcow2")
            if driver.get("name") is None:
                driver.set("name", "qemu")
            break
    words = [
        source.get("dev", "") + source.get("bridge", "")
        for source in domain.iterfind("./devices/interface/source")
    ]
    ifaces = "".join(f"{w}," for w in words) if dialect == PB2013 else ",".join(words)
    return etree.tostring(domain, encoding="unicode"), ifaces


def key_file(node: NodePlan, ctx: StageContext) -> Path:
    """KEY: a file of the keys root accepts (``--key``), as pragma_boot passed its ``--key``.

    Written per node (boots run in parallel); empty when no key was given.
    """
    path = work_folder(ctx) / f"{node.name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}\n" for k in node.authorized_keys), encoding="utf-8")
    return path


def site_ve_folder(site: SiteConfig) -> ScriptFolderDriver | None:
    """The site's own VE driver folder (``[drivers] ve``), inspected; None when not set."""
    if site.ve_folder is None:
        return None
    for folder in site.driver_dirs:
        candidate = folder / site.ve_folder
        if candidate.is_dir():
            driver = ScriptFolderDriver(
                candidate, dialect=site.dialect_of(site.ve_folder), ipop_url=site.ipop_url
            )
            refuse_unfit(driver, "ve", f"{site.source}: [drivers] ve names {candidate}")
            return driver
    searched = ", ".join(map(str, site.driver_dirs)) or "none: [drivers] folders is empty"
    raise UserError(
        f"{site.source}: [drivers] ve: no driver folder {site.ve_folder!r} in the site's "
        f"driver folders (searched: {searched})"
    )


def refuse_unfit(driver: ScriptFolderDriver, role: Role, where: str) -> None:
    """A folder its dialect's caller could not have run is refused before anything runs."""
    problems = driver.inspect(role)
    if problems:
        raise UserError(
            f"{where}, a {'VE' if role == 've' else 'vc'} driver folder of dialect "
            f"{driver.dialect!r} ([drivers] dialects), which it does not fit:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


_ARG_NAMES: dict[str, tuple[str, ...]] = {
    script: tuple(args.split()) for script, args in TABLE[SEED].usage.items()
}
