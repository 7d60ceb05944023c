"""``pragmash import-site``: pragma_boot's site configuration as a pragmash site.toml.

Reads (never runs) ``site_conf.conf``, ``kvm_rocks.conf`` and 2013's
``net_conf.conf`` (:mod:`pragmash.vc.config.import_site`), checks the result with the site
loader every run uses, and prints it (or writes ``--output``). What could not be
mapped is listed on stderr and marked FILL IN in the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TextIO

from pragmash.errors import EXIT_OK, EXIT_USER, UserError
from pragmash.ui.arguments import ArgumentParser
from pragmash.vc.config.import_site import (
    Settings,
    build_site_toml,
    read_python_conf,
    read_shell_conf,
)
from pragmash.vc.config.site import load_site

#: Where pragma_boot kept each file, relative to its folder (newest layout first).
LAYOUT = {
    "site_conf": ("etc/site_conf.conf", "site_conf.conf"),
    "kvm_rocks": ("etc/kvm_rocks.conf", "kvm_rocks.conf"),
    "net_conf": ("drivers/kvm_rocks/net_conf.conf", "pragma/drivers/kvm_rocks/net_conf.conf"),
}


def _find(folder: Path | None, given: str | None, which: str) -> Path | None:
    if given is not None:
        return Path(given)
    if folder is None:
        return None
    for relative in LAYOUT[which]:
        if (folder / relative).is_file():
            return folder / relative
    return None


def cmd_import_site(args: list[str], out: TextIO, err: TextIO) -> int:
    """Write pragma_boot's configuration as a site.toml; list what must be filled in."""
    p = ArgumentParser(
        prog="pragmash import-site",
        description="Read pragma_boot's site_conf.conf, kvm_rocks.conf and (2013) "
        "net_conf.conf without executing them, and write an equivalent commented "
        "site.toml. What cannot be mapped is marked FILL IN and listed on stderr.",
    )
    p.add_argument(
        "folder",
        nargs="?",
        help="pragma_boot's folder (e.g. /opt/pragma_boot): the files are looked for in "
        "etc/, its top and drivers/kvm_rocks/",
    )
    p.add_argument("--site-conf", metavar="FILE", help="site_conf.conf")
    p.add_argument("--kvm-rocks", metavar="FILE", help="kvm_rocks.conf")
    p.add_argument("--net-conf", metavar="FILE", help="net_conf.conf (pragma_boot 2013)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    ns = p.parse_args(args)
    folder = Path(ns.folder) if ns.folder else None
    if folder is not None and not folder.is_dir():
        raise UserError(f"{folder}: not a folder (pragma_boot's, e.g. /opt/pragma_boot)")
    paths = {
        "site_conf": _find(folder, ns.site_conf, "site_conf"),
        "kvm_rocks": _find(folder, ns.kvm_rocks, "kvm_rocks"),
        "net_conf": _find(folder, ns.net_conf, "net_conf"),
    }
    if not any(paths.values()):
        raise UserError(
            "import-site: no pragma_boot configuration found"
            + (f" in {folder} (looked for {', '.join(sum(LAYOUT.values(), ()))})" if folder else "")
            + "; give the folder or --site-conf/--kvm-rocks/--net-conf"
        )
    read: dict[str, Settings | None] = {
        "site_conf": read_python_conf(paths["site_conf"]) if paths["site_conf"] else None,
        "kvm_rocks": read_python_conf(paths["kvm_rocks"]) if paths["kvm_rocks"] else None,
        "net_conf": read_shell_conf(paths["net_conf"]) if paths["net_conf"] else None,
    }
    imported = build_site_toml(read["site_conf"], read["kvm_rocks"], read["net_conf"])
    problem = _loads(imported.text)
    target = Path(ns.output) if ns.output else None
    if target is not None:
        if target.exists() and not ns.force:
            raise UserError(f"{target} exists; give --force to overwrite it")
        target.write_text(imported.text, encoding="utf-8")
        err.write(f"wrote {target}\n")
    else:
        out.write(imported.text)
    for line in imported.fill_in:
        err.write(f"FILL IN: {line}\n")
    for line in imported.notes:
        err.write(f"note: {line}\n")
    if problem is not None:
        err.write(f"the imported site config does not load yet: {problem}\n")
        return EXIT_USER
    return EXIT_OK


def _loads(text: str) -> str | None:
    """The site loader's complaint about ``text``, None when it loads."""
    with tempfile.TemporaryDirectory(prefix="pragmash-import-") as folder:
        path = Path(folder) / "site.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_site(path, {"HOME": folder})
        except UserError as exc:
            return exc.message.replace(str(path), "site.toml")
    return None
