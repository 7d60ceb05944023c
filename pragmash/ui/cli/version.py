"""``pragmash --version``: what a bug report needs, one line each.

pragmash, Python, libvirt and libvirt-python, the libraries, and the external tools
pragmash runs. A module of its own, imported only for ``--version`` (ui.cli.table's
VERSION), because asking the tools and the installed packages costs what no other
command should pay at start-up.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from typing import TextIO

from pragmash import __version__
from pragmash.errors import EXIT_OK


def _package(name: str) -> str:
    from importlib import metadata  # only --version needs it (about 30 ms to import)

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool(command: list[str]) -> str:
    """The first line a tool prints of its version, or why there is none."""
    if shutil.which(command[0]) is None:
        return "not found"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"did not answer ({exc.__class__.__name__})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else f"exit {done.returncode}"


def _libvirt_library() -> str:
    try:
        import libvirt  # the bindings load the C library: only when asked for

        major, rest = divmod(libvirt.getVersion(), 1_000_000)
        minor, micro = divmod(rest, 1000)
        return f"{major}.{minor}.{micro}"
    except Exception as exc:  # a missing or broken library is what the report must say
        return f"not loadable ({exc})"


def version_report() -> str:
    """``pragmash --version``: what a bug report needs, one line each."""
    rows = [
        ("pragmash", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("libvirt", _libvirt_library()),
        ("libvirt-python", _package("libvirt-python")),
        ("lxml", _package("lxml")),
        ("lark", _package("lark")),
        ("prompt_toolkit", _package("prompt_toolkit")),
        ("qemu-img", _tool(["qemu-img", "--version"])),
        ("libguestfs", _tool(["guestfish", "--version"])),
        ("virt-v2v", _tool(["virt-v2v", "--version"])),
        ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
    ]
    return f"pragmash {__version__}\n" + "".join(f"  {k:<15} {v}\n" for k, v in rows[1:])


def cmd_version(args: list[str], out: TextIO, err: TextIO) -> int:
    """Print the version report (``args``: none; the global options were taken out)."""
    out.write(version_report())
    return EXIT_OK
