"""Which caller a site's driver folder was written for, and what that caller needs of it.

pragma_boot's scripts were not written against its README: each generation of its
code called them differently (``/work/shared/pragma_boot-code.md`` in the project's
notes gives each convention with its file and line). A site names the generation
per folder (``[drivers] dialect``/``dialects``); this module holds, per dialect,
the scripts a folder must have in each role and the arguments each is called with,
and inspects a folder against them (``pragmash check``, and every run before it
starts). :mod:`pragmash.drivers.pragma_boot.folder` does the calling.

Roles: the *vc* folder is the distro driver vc-in's ``<driver>`` names
(``pre_fix_driver``, ``post_fix_driver``, ``pre_boot``); the *ve* folder is the
site's own virtualization engine (``[drivers] ve``: ``allocate``, the fix, ``boot``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pragmash.vc.config.site import DIALECTS

Role = Literal["vc", "ve"]

SEED = "seed"
PB2013 = "pragma_boot-2013"
PB2015 = "pragma_boot-2015"
PB2015_IPOP = "pragma_boot-2015-ipop"


@dataclass(frozen=True)
class Dialect:
    """One caller's conventions: the scripts it called per role and their arguments."""

    name: str
    caller: str  # the code whose calls this dialect repeats
    vc_required: tuple[str, ...]
    vc_optional: tuple[str, ...]
    ve_required: tuple[str, ...]
    usage: dict[str, str]  # script -> its arguments as that caller passed them

    def calls(self, script: str) -> bool:
        return script in self.usage

    def required(self, role: Role) -> tuple[str, ...]:
        return self.vc_required if role == "vc" else self.ve_required

    def scripts(self, role: Role) -> tuple[str, ...]:
        return self.vc_required + self.vc_optional if role == "vc" else self.ve_required


_SEED_USAGE = {
    "allocate": "num_compute vc_out_path",
    "pre_fix_driver": "path",
    "fix_driver": "xml_file eth0,eth1 temp_directory",
    "post_fix_driver": "path",
    "pre_boot": "file_path vc_out host_name",
    "boot": "file_path xml_file vc_out host_name",
}
_2015_USAGE = {
    "fix_images": "VC_IN TEMP frontend,compute",
    "allocate": "NUM_CPUS VC_IN VC_OUT TEMP KEY",
    "boot": "DISK HOST TEMP VC_OUT",
}

TABLE: dict[str, Dialect] = {
    SEED: Dialect(
        SEED,
        "the seed README (pragma_boot README.rst@605ce4b)",
        ("pre_boot",),
        ("pre_fix_driver", "post_fix_driver"),
        ("allocate", "fix_driver", "boot"),
        _SEED_USAGE,
    ),
    PB2013: Dialect(
        PB2013,
        "pragma_boot v0.2 (bin/pragma_boot@e147501)",
        ("pre_fix_driver", "post_fix_driver", "pre_boot"),
        (),
        ("allocate", "fix_driver", "boot"),
        {
            "allocate": "NUM_CPUS VC_IN VC_OUT",
            "pre_fix_driver": "DISK",
            "fix_driver": "TEMP/vc-in.xml IFACES TEMP",
            "post_fix_driver": "DISK",
            "pre_boot": "DISK VC_OUT HOST KEY",
            "boot": "DISK DOMAIN_XML HOST",
        },
    ),
    PB2015: Dialect(
        PB2015,
        "pragma_boot 2013-10 … 2015 (bin/pragma_boot@b380107 … @a1a1db3)",
        (),
        (),
        ("fix_images", "allocate", "boot"),
        _2015_USAGE,
    ),
    PB2015_IPOP: Dialect(
        PB2015_IPOP,
        "pragma_boot 2014-10 … 2015 with IPOP (bin/pragma_boot@a1a1db3)",
        (),
        (),
        ("fix_images", "allocate", "boot"),
        {**_2015_USAGE, "boot": "DISK HOST TEMP VC_OUT IPOP_URL 0|1"},
    ),
}
assert tuple(TABLE) == DIALECTS, "the site loader and the adapter must know the same dialects"

#: Every script name some dialect calls: a folder holding one is a pragma_boot folder.
KNOWN_SCRIPTS: frozenset[str] = frozenset(s for d in TABLE.values() for s in d.usage)


def dialect(name: str) -> Dialect:
    return TABLE[name]


def usage(dialect_name: str, script: str) -> str:
    """``script ARGS`` as the dialect's caller ran it, for messages."""
    args = TABLE[dialect_name].usage.get(script)
    return f"{script} {args}" if args else f"{script} ARGS…"


def executables(folder: Path) -> list[str]:
    """The folder's runnable files (what a recipe may call by name)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and os.access(p, os.X_OK))


def inspect_folder(folder: Path, dialect_name: str, role: Role) -> list[str]:
    """What keeps ``folder`` from serving as a ``role`` folder of ``dialect_name``; [] if nothing.

    Missing or non-executable scripts the caller needs, a script present but not
    runnable, and a dialect that does not match the scripts present (a 2015 folder
    given as 2013) — each problem a sentence naming the file and what to do.
    """
    d = TABLE[dialect_name]
    problems: list[str] = []
    if not folder.is_dir():
        return [f"{folder}: no such driver folder"]
    if role == "vc" and not d.vc_required:
        problems.append(
            f"{folder}: {d.name} ({d.caller}) called no vc driver script (its VE's boot "
            f"wrote vc-out into the image), so as vc-in's <driver> this folder would do "
            f"nothing: declare it 'pragma_boot-2013' or 'seed' in [drivers] dialects"
        )
        return problems
    for script in d.scripts(role):
        path = folder / script
        if not path.exists():
            if script in d.required(role):
                problems.append(
                    f"{path}: missing; {d.name} calls it as `{usage(d.name, script)}`"
                    + _other_dialect(folder, d, role)
                )
            continue
        if not path.is_file():
            problems.append(f"{path}: not a file; a driver script must be an executable file")
        elif not os.access(path, os.X_OK):
            problems.append(f"{path}: not executable (chmod +x {path})")
    return problems


def _other_dialect(folder: Path, declared: Dialect, role: Role) -> str:
    """`` (its scripts fit X)`` when the folder's scripts are another dialect's."""
    present = {p.name for p in folder.iterdir()} & KNOWN_SCRIPTS
    fits = [
        d.name
        for d in TABLE.values()
        if d.name != declared.name and d.required(role) and set(d.required(role)) <= present
    ]
    if not fits:
        return ""
    return (
        f"; the folder's scripts fit {' or '.join(fits)}: is that its dialect ([drivers] dialects)?"
    )
