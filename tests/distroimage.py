"""Where the real Debian 12 test disk lives, and how tests read a guest disk.

The disk is built once by ``scripts/build-distro-image`` (it needs the Debian mirror
and a couple of minutes); tests only look for it, so a test run sends no network
traffic. Both agree on the default path below.

Importable by tests: ``from distroimage import distro_image_path, read_guest``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ENV_IMAGE = "PRAGMASH_DISTRO_IMAGE"  # overrides the default path (the script honours it too)
GUESTFS_TIMEOUT = 600.0  # one TCG appliance launch plus inspection: well under this
SECTION = "@@pragmash-section "


def distro_image_path() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/pragmash/test-images/debian12.img``, as the script uses.

    Call it at import time in a test module: conftest points XDG_CACHE_HOME at a
    per-test folder while each test runs.
    """
    override = os.environ.get(ENV_IMAGE)
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pragmash" / "test-images" / "debian12.img"


def guestfs_env() -> dict[str, str]:
    """The environment for libguestfs tools here: the direct backend and TCG (no usable KVM)."""
    env = dict(os.environ)
    env["LIBGUESTFS_BACKEND"] = "direct"
    env.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    return env


def qemu_info(disk: Path) -> dict[str, Any]:
    """``qemu-img info -U --output=json``: -U so a disk another process holds can be read."""
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(disk)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    info = json.loads(out)
    assert isinstance(info, dict)
    return info


def read_guest(disk: Path, commands: dict[str, str], *, fmt: str = "qcow2") -> dict[str, str]:
    """Run guestfish commands read-only on the inspected guest; each key gets its output.

    One appliance launch for all of them (each launch costs seconds under TCG). A
    command that fails (a missing file) gives empty output instead of stopping the rest.
    """
    script: list[str] = []
    for key, command in commands.items():
        script.append(f"echo {SECTION}{key}")
        script.append(f"-{command}")  # a leading '-' lets guestfish go on after an error
    proc = subprocess.run(
        ["guestfish", "--ro", f"--format={fmt}", "-a", str(disk), "-i"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        timeout=GUESTFS_TIMEOUT,
        env=guestfs_env(),
        check=False,
    )
    if proc.returncode != 0 and SECTION not in proc.stdout:
        raise RuntimeError(f"guestfish failed on {disk}: {proc.stderr.strip()}")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(SECTION):
            current = sections.setdefault(line.removeprefix(SECTION), [])
        elif current is not None:
            current.append(line)
    return {key: "\n".join(sections.get(key, [])) for key in commands}
