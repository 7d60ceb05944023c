"""Where the real Debian 12 test disk lives, and how tests read a guest disk.

The disk is built once by ``scripts/build-distro-image`` (it needs the Debian mirror
and a couple of minutes); tests only look for it, so a test run sends no network
traffic. Both agree on the default path below.

Importable by tests: ``from support.distroimage import distro_image_path, read_guest``.
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


#: The files of a fixed base in a site's image cache (images.basecache): the base and
#: what it was made from. Its lock file belongs to the cache that made it.
_BASE_FILES = ("*.qcow2", "*.json")


def share_fixed_bases(cache: Path, shared: Path) -> None:
    """Hard-link the fixed bases in site image cache ``cache`` into ``shared``.

    The Debian image's virt-v2v conversion takes 4–8 minutes under TCG; the slow modules
    that need the converted image take it from the module that converted it (see the
    ``fixed_debian_bases`` fixture) instead of converting it again.
    """
    for pattern in _BASE_FILES:
        for path in (cache / "fixed").glob(pattern):
            target = shared / path.name
            if not target.exists():
                os.link(path, target)


def take_fixed_bases(shared: Path, cache: Path) -> int:
    """Hard-link the bases another module shared into site image cache ``cache``; how many."""
    fixed = cache / "fixed"
    fixed.mkdir(parents=True, exist_ok=True)
    taken = 0
    for pattern in _BASE_FILES:
        for path in shared.glob(pattern):
            if not (fixed / path.name).exists():
                os.link(path, fixed / path.name)
                taken += path.suffix == ".qcow2"
    return taken
