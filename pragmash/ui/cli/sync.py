"""``pragmash sync [REPOSITORY]``: fetch and verify a repository's images ahead of a run.

A site that boots from a web repository syncs once (on a fast link, or overnight);
later runs find every image in the cache, verified, and start at once.
"""

from __future__ import annotations

from typing import TextIO

from pragmash.engine.commands import repositories
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import json_dump
from pragmash.ui.step_printer import StepPrinter


def cmd_sync(args: list[str], out: TextIO, err: TextIO) -> int:
    """Fetch and verify every image of every VC in the repository into the image cache."""
    p = ArgumentParser(
        prog="pragmash sync",
        description="Fetch and verify every image of a repository into the site's image cache,"
        " so later runs start without downloading.",
    )
    p.add_argument(
        "repository",
        nargs="?",
        help="a folder or http(s)://host/repo/ URL (default: the site's [paths] repository)",
    )
    add_site_option(p)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = session.open_site(ns.site)
    report = repositories.sync(site, ns.repository, on_event=StepPrinter(err, err))
    if ns.json:
        data = {
            "repository": report.location,
            "cache": str(report.cache),
            "images": [
                {"vcname": vc, "name": i.name, "path": str(i.path), "how": i.how, "size": i.size}
                for vc, i in report.images
            ],
        }
        json_dump(data, out)
        return EXIT_OK
    vcs = len({vc for vc, _ in report.images})
    parts = [
        f"{report.count(how)} {word}"
        for how, word in (
            ("fetched", "fetched"),
            ("joined", "joined"),
            ("cached", "already cached"),
            ("verified", "verified in place"),
            ("local", "unlisted, used in place"),
        )
        if report.count(how)
    ]
    out.write(
        f"{report.location}: {vcs} VC(s), {len(report.images)} image(s): {', '.join(parts) or 'none'};"
        f" cache {report.cache}\n"
    )
    return EXIT_OK
