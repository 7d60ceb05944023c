"""The options every command takes, wherever they are written, and what they set up.

``pragmash --site X list`` and ``pragmash list --site X`` mean the same, as do ``-v``
and ``--log-level`` anywhere before a ``--`` (what follows ``--`` belongs to a command
run elsewhere, such as ``pragmash ssh VC -- ls -v``). The version report lists what a
bug report needs: pragmash, Python, libvirt and libvirt-python, the libraries, and
the external tools pragmash runs.
"""

from __future__ import annotations

import logging
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TextIO

from pragmash import __version__
from pragmash.errors import UserError

LEVELS = ("debug", "info", "warning", "error")


@dataclass
class GlobalOptions:
    site: str | None = None
    log_level: str = "warning"
    version: bool = False


def split_global_options(args: list[str]) -> tuple[list[str], GlobalOptions]:
    """``args`` without the global options, and those options."""
    found = GlobalOptions()
    rest: list[str] = []
    verbose = 0
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            rest += args[i:]
            break
        if word in ("--site", "--log-level"):
            if i + 1 >= len(args):
                raise UserError(f"pragmash: {word} needs a value", hint="see `pragmash --help`")
            value = args[i + 1]
            i += 2
        elif word.startswith(("--site=", "--log-level=")):
            word, _, value = word.partition("=")
            i += 1
        else:
            if word in ("-v", "--verbose"):
                verbose += 1
            elif word == "-vv":
                verbose += 2
            elif word in ("-V", "--version") or (word == "version" and not rest):
                found.version = True
            else:
                rest.append(word)
            i += 1
            continue
        if word == "--site":
            found.site = value
        else:
            if value.lower() not in LEVELS:
                raise UserError(
                    f"pragmash: --log-level {value!r}: expected one of {', '.join(LEVELS)}"
                )
            found.log_level = value.lower()
    if verbose:
        found.log_level = "info" if verbose == 1 else "debug"
    return rest, found


def configure_logging(level: str, err: TextIO) -> None:
    """The ``pragmash`` logger: ``level`` and up on stderr (once per process)."""
    logger = logging.getLogger("pragmash")
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        if getattr(handler, "pragmash_stderr", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(err)
    handler.setLevel(getattr(logging, level.upper()))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.pragmash_stderr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


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
