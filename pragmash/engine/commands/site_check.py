"""``pragmash site check``: is this site config usable, before anything is allocated?

Loading the file already refuses every malformed key (naming it). What only the
machines can tell is asked here: every host answers on its URI, the folders pragmash
writes to can be written, the repository is there. Nothing is allocated or changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pragmash.engine.hosts.capacity import site_hosts
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.repository.http import is_url


@dataclass(frozen=True)
class Finding:
    """One thing checked: what, whether it is fine, and in words."""

    subject: str
    ok: bool
    detail: str


def _writable(path: Path) -> tuple[bool, str]:
    """Whether pragmash could make and write ``path`` (it makes missing folders)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False, "no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return False, f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return False, f"{probe} is not writable by this user"
    return True, "exists" if probe == path else f"will be made inside {probe}"


def check_site(site: SiteConfig) -> list[Finding]:
    """Every host, folder and the repository of ``site``, each with its verdict."""
    findings: list[Finding] = []
    for host in site_hosts(site):
        detail = host.uri if host.reachable else f"{host.uri}: {host.problem}"
        findings.append(Finding(f"host {host.name}", host.reachable, detail))
    folders = (
        ("state folder (ledger)", site.state_dir),
        ("temp folder", site.temp_dir),
        ("image cache", site.image_cache),
    )
    for what, folder in folders:
        ok, why = _writable(folder)
        findings.append(Finding(f"{what} {folder}", ok, why))
    repo = site.repository
    if isinstance(repo, Path):
        vcdb = repo / "vcdb.txt"
        findings.append(
            Finding(
                f"repository {repo}",
                vcdb.is_file(),
                "has vcdb.txt" if vcdb.is_file() else "no vcdb.txt in it",
            )
        )
    elif isinstance(repo, str) and is_url(repo):
        findings.append(Finding(f"repository {repo}", True, "a web repository (read at each run)"))
    return findings
