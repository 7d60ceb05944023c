"""``pragmash cache list`` and ``pragmash cache prune``: the site's cached images.

The shared bases (fixed, decompressed) and the repository images ``sync`` or a run
fetched (``fetched/``): everything the cache folder holds, so what ``list`` shows is
what ``prune`` may free.
"""

from __future__ import annotations

import time
from typing import TextIO

from pragmash.engine.commands.cache import CachedImage, cached_images, prune_cache, prune_hosts
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK, EXIT_STEP_FAILED
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import json_dump


def _row(image: CachedImage) -> str:
    e = image.entry
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
    users = ", ".join(image.users) or "unused"
    if e.kind == "fetched":  # fetched/KEY/NAME: the key names it, the file says what it is
        key, what = e.path.parent.name, f"{e.path.name} from a repository"
    else:
        key = e.path.stem
        what = (
            f"{e.method} by {e.driver} from {e.source}"
            if e.kind == "fixed"
            else (f"decompressed from {e.source}")
        )
    return (
        f"{key[:16]:16}  {e.kind:12}  {e.size / 2**20:8.0f} MiB  {when}  {what}  used by: {users}"
    )


def cmd_cache(args: list[str], out: TextIO, err: TextIO) -> int:
    """Show or prune the site's cached images: bases (fixed, decompressed) and fetched ones."""
    p = ArgumentParser(
        prog="pragmash cache",
        description="Show (list) or remove (prune) the site's cached images: fixed and "
        "decompressed bases, and the repository images sync or a run fetched. An image a "
        "VC's disks still sit on (directly or through a base made from it) is never pruned; "
        "`clean VCNAME` first to free it. prune also removes the base volumes no volume is "
        'backed by from the pools of storage = "pool" hosts, saying per host what it removed.',
    )
    p.add_argument("action", choices=["list", "prune"])
    add_site_option(p)
    p.add_argument(
        "--dry-run", action="store_true", help="prune: say what would go, remove nothing"
    )
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args)
    site = session.open_site(ns.site)
    if ns.action == "list":
        images = cached_images(site)
        if ns.json:
            json_dump([i.to_json() for i in images], out)
            return EXIT_OK
        if not images:
            out.write(f"no cached images in {site.image_cache}\n")
            return EXIT_OK
        out.write(f"{site.image_cache}:\n")
        for image in images:
            out.write(_row(image) + "\n")
        return EXIT_OK
    notes: list[str] = []
    removed, kept = prune_cache(site, dry_run=ns.dry_run, note=notes.append)
    hosts = prune_hosts(site, dry_run=ns.dry_run, note=notes.append)
    status = EXIT_STEP_FAILED if any(h.unreachable for h in hosts) else EXIT_OK
    if ns.json:
        json_dump(
            {
                "removed": [i.to_json() for i in removed],
                "kept": [i.to_json() for i in kept],
                "hosts": [h.to_json() for h in hosts],
            },
            out,
        )
        return status
    for line in notes:
        out.write(line + "\n")
    freed = sum(i.entry.size for i in removed) / 2**20
    verb = "would free" if ns.dry_run else "freed"
    out.write(f"{len(removed)} removed, {len(kept)} kept; {verb} {freed:.0f} MiB\n")
    for host in hosts:
        if host.unreachable is None:
            freed = sum(b.bytes for b in host.removed) / 2**20
            out.write(
                f"{host.host} (pool {host.pool}): {len(host.removed)} removed, "
                f"{len(host.kept)} kept; {verb} {freed:.0f} MiB\n"
            )
    return status
