"""A recorder of the external tools a run calls, and a raw disk to give them."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from pragmash.images.tools import ToolResult


def raw_disk(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(path), "1M"], check=True)
    return path


class Recorder:
    """Stands in for run_tool: keeps each command line and the environment it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(
        self, argv: list[str], *, env: Mapping[str, str] | None = None, **_kw: object
    ) -> ToolResult:
        self.calls.append((list(argv), dict(env or {})))
        return ToolResult(0, [], None)
