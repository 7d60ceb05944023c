"""A seed pragma_boot driver folder of executables, used unchanged as a pragmash driver.

Sites already have driver folders holding ``allocate``, ``pre_fix_driver``,
``fix_driver``, ``post_fix_driver``, ``pre_boot`` and ``boot`` scripts. Rewriting
them is what keeps sites on old tools, so this adapter calls each one exactly as
pragma_boot did — the seed's argument order, no shell, stdin closed — with a
timeout, and keeps what the script printed (the step's notes, the journal's output
tail). The distro stages (``pre_fix``, ``post_fix``, ``pre_boot``) implement
:class:`pragmash.driver_api.DistroDriver`; the engine-side stages (``allocate``,
``fix``, ``boot``) are methods with the seed's arguments for sites that call them.

Seed argument orders (pragma_boot README)::

    allocate         num_compute vc_out_path
    pre_fix_driver   path
    fix_driver       xml_file eth0,eth1 temp_directory
    post_fix_driver  path
    pre_boot         file_path vc_out host_name
    boot             file_path xml_file vc_out host_name
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from pragmash.driver_api import NodePlan, StageContext, StageResult
from pragmash.errors import StepError
from pragmash.images.tools import run_tool

#: Seed executable -> the stage name pragmash reports it under.
STAGES: dict[str, str] = {
    "allocate": "ve_driver/allocate",
    "pre_fix_driver": "vc_driver/pre_fix",
    "fix_driver": "ve_driver/fix",
    "post_fix_driver": "vc_driver/post_fix",
    "pre_boot": "vc_driver/pre_boot",
    "boot": "ve_driver/boot",
}

#: Stages a folder may leave out: pragma_boot's own drivers often had nothing to do
#: around the fix. Everything else does work the cluster cannot boot without.
OPTIONAL = frozenset({"pre_fix_driver", "post_fix_driver"})


class ScriptFolderDriver:
    """Calls a seed driver folder's executables with pragma_boot's argument orders."""

    def __init__(self, folder: Path, timeout: float = 3600) -> None:
        self.folder = Path(folder)
        self.timeout = timeout
        self.name = self.folder.name

    def __repr__(self) -> str:
        return f"ScriptFolderDriver({str(self.folder)!r})"

    # -- what the fixed-image cache needs to know ------------------------------------

    @property
    def fix_hooks(self) -> bool:
        """Whether the folder has a pre_fix_driver or post_fix_driver that may change images."""
        return any((self.folder / script).exists() for script in OPTIONAL)

    def fix_identity(self) -> str:
        """The digest of the folder's pre_fix/post_fix scripts: edit one, and images fix anew."""
        digest = hashlib.sha256()
        for script in sorted(OPTIONAL):
            path = self.folder / script
            digest.update(f"{script}\0".encode())
            digest.update(path.read_bytes() if path.is_file() else b"(absent)")
            digest.update(b"\0")
        return f"script folder {self.name}: {digest.hexdigest()}"

    # -- DistroDriver ---------------------------------------------------------------

    def pre_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return self._call(
            "pre_fix_driver", [str(disk)], log_path=self._log(ctx, node), note=ctx.note
        )

    def post_fix(self, node: NodePlan, disk: Path, ctx: StageContext) -> StageResult:
        return self._call(
            "post_fix_driver", [str(disk)], log_path=self._log(ctx, node), note=ctx.note
        )

    def pre_boot(self, node: NodePlan, disk: Path, vc_out: Path, ctx: StageContext) -> StageResult:
        return self._call(
            "pre_boot",
            [str(disk), str(vc_out), node.name],
            log_path=self._log(ctx, node),
            note=ctx.note,
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

    def executable(self, script: str) -> Path | None:
        """The folder's executable for ``script``, None when absent; StepError if not runnable."""
        path = self.folder / script
        if not path.exists():
            return None
        stage = STAGES[script]
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
    ) -> StageResult:
        stage = STAGES[script]
        path = self.executable(script)
        if path is None:
            if script in OPTIONAL:
                return StageResult("skipped", f"driver folder {self.folder} has no {script}")
            raise StepError(
                f"driver folder {self.folder} has no {script}: the {stage} stage needs it",
                stage=stage,
                hint=f"add an executable {self.folder / script} "
                f"(called as: {script} {' '.join(_ARG_NAMES[script])})",
            )
        on_line = (lambda line: note(f"{script}: {line}")) if note is not None else None
        try:
            result = run_tool(
                [str(path), *args],
                timeout=self.timeout,
                log_path=log_path,
                on_line=on_line,
                stage=stage,
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
            "done",
            f"{script} {' '.join(args)}",
            products=products,
            output_tail=list(result.tail),
        )


_ARG_NAMES: dict[str, tuple[str, ...]] = {
    "allocate": ("num_compute", "vc_out_path"),
    "pre_fix_driver": ("path",),
    "fix_driver": ("xml_file", "eth0,eth1", "temp_directory"),
    "post_fix_driver": ("path",),
    "pre_boot": ("file_path", "vc_out", "host_name"),
    "boot": ("file_path", "xml_file", "vc_out", "host_name"),
}
