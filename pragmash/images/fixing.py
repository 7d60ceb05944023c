"""The fix methods' tools: virt-v2v converts into a new disk, virt-customize changes one.

pragma_boot's ``fix_driver`` ran virt-v2v on every image. Here the recipe chooses
per target (``fix all via virt-v2v``), and each distinct image is fixed once: the
fixed-image cache (:mod:`pragmash.images.basecache`) calls these on a work copy and
every node gets an overlay on the result (:mod:`pragmash.engine.steps.fix`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from pragmash import stages
from pragmash.errors import StepError
from pragmash.images.staging import image_format
from pragmash.images.tools import guestfs_env, run_tool
from pragmash.language.vocabulary import FIX_METHODS

METHODS = FIX_METHODS
FIXED_MARKER = "/etc/pragmash-fixed"


def _one_line(message: str) -> str:
    """A tool's multi-paragraph error as one line: its first and last paragraphs.

    virt-v2v puts what failed first and the reason last ("No root device found …"),
    with advice in between.
    """
    paragraphs = [" ".join(p.split()) for p in message.split("\n\n") if p.strip()]
    if len(paragraphs) <= 1:
        return paragraphs[0] if paragraphs else message.strip()
    return f"{paragraphs[0]} {paragraphs[-1]}"


def convert_v2v(
    disk: Path,
    out_dir: Path,
    *,
    out_format: str = "qcow2",
    timeout: float,
    log_path: Path | None,
    on_line: Callable[[str], None] | None,
    kvm_usable: bool,
) -> Path:
    """Convert ``disk`` with virt-v2v into a new standalone disk in ``out_dir``; return it.

    ``out_dir`` is emptied first: what a failed attempt left there is not trusted.
    """
    fmt = image_format(disk)
    name = disk.name.split(".")[0] or "node"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    errors: list[str] = []

    def read_line(line: str) -> None:
        """--machine-readable lines are JSON: keep errors whole, pass messages on as text."""
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                if event.get("type") == "error":
                    errors.append(str(event.get("message", "")))
                return
        if on_line is not None:
            on_line(line)

    argv = [
        "virt-v2v",
        "-i",
        "disk",
        "-if",
        fmt,
        str(disk),
        "-o",
        "local",
        "-os",
        str(out_dir),
        "-of",
        out_format,
        "-on",
        name,
        "--root",
        "first",
        "--machine-readable",
    ]
    try:
        run_tool(
            argv,
            timeout=timeout,
            log_path=log_path,
            env=guestfs_env(kvm_usable),
            on_line=read_line,
            stage=stages.FIX,
        )
    except StepError as exc:
        if errors:
            exit_part = exc.message.split(":", 1)[0]  # "virt-v2v failed (exit N)"
            raise StepError(
                f"{exit_part}: {_one_line(errors[-1])}",
                stage=stages.FIX,
                output_tail=exc.output_tail,
                hint=exc.hint,
            ) from exc
        raise
    converted = out_dir / f"{name}-sda"
    if not converted.is_file():
        raise StepError(
            f"virt-v2v finished but wrote no {converted}",
            stage=stages.FIX,
            hint=f"see {log_path}" if log_path else None,
        )
    return converted


def customize(
    disk: Path,
    *,
    timeout: float,
    log_path: Path | None,
    on_line: Callable[[str], None] | None,
    kvm_usable: bool,
) -> Path:
    """A light fix in place that needs no conversion: mark the image as fixed (the OS is kept)."""
    fmt = image_format(disk)
    run_tool(
        [
            "virt-customize",
            "--format",
            fmt,
            "-a",
            str(disk),
            "--no-network",
            "--touch",
            FIXED_MARKER,
        ],
        timeout=timeout,
        log_path=log_path,
        env=guestfs_env(kvm_usable),
        on_line=on_line,
        stage=stages.FIX,
    )
    return disk
