"""``pragmash site`` (which site config, and why) and ``pragmash site check [FILE]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from pragmash.engine.commands.site_check import check_site
from pragmash.errors import EXIT_OK, EXIT_USER
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.vc.config.site import find_site, load_site


def cmd_site(args: list[str], out: TextIO, err: TextIO) -> int:
    """Say which site config is used and why; with ``check``, ask every part of it."""
    p = ArgumentParser(
        prog="pragmash site",
        description="Say which site config pragmash uses and why (--site, $PRAGMASH_SITE, "
        "~/.config/pragmash/site.toml, /etc/pragmash/site.toml, else the embedded demo "
        "site). `site check [FILE]` loads it fully and asks every host, folder and the "
        "repository, allocating nothing.",
    )
    add_site_option(p, "the site config (see `pragmash --help`)")
    p.add_argument("action", nargs="?", choices=["check"], help="check the site config fully")
    p.add_argument("file", nargs="?", help="the site config to check (default: the one in use)")
    ns = p.parse_args(args)
    given = ns.file or ns.site
    path, reason = find_site(Path(given) if given else None, os.environ)
    site = load_site(path, os.environ)
    out.write(f"site config: {site.source} (chosen by {reason})\n")
    if ns.action != "check":
        return EXIT_OK
    findings = check_site(site)
    for finding in findings:
        out.write(f"  {'ok ' if finding.ok else 'BAD'}  {finding.subject}: {finding.detail}\n")
    bad = sum(not f.ok for f in findings)
    if bad:
        err.write(f"{bad} problem(s) in the site config {site.source}\n")
        return EXIT_USER
    out.write("the site config is usable\n")
    return EXIT_OK
