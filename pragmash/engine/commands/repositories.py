"""Repository operations the front ends offer outside a run: list what it holds, sync images.

``pragmash list repository`` and ``pragmash sync`` go through here, so the CLI never
opens repositories or fills the image cache itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pragmash.engine.run.events import EventSink, Output, Progress, ignore
from pragmash.errors import UserError
from pragmash.images.provision import ProvidedImage, sync_repository
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.repository.http import HttpClient
from pragmash.vc.repository.vcdb import Repository
from pragmash.vc.repository.web import open_repository


def site_repository(site: SiteConfig, spec: str | None) -> Repository:
    """The repository ``spec`` names (a folder or a URL), else the site's, else the demo one."""
    what = "--base_path" if spec else f"{site.source}: [paths] repository"
    client = HttpClient(limits=site.downloads)  # the site's [downloads] deadlines and caps
    return open_repository(spec or site.repository, site.image_cache, what=what, client=client)


def unknown_vc(site: SiteConfig, vcname: str, with_runs: list[str]) -> UserError | None:
    """ "No such VC" when neither the ledger (``with_runs``) nor the site's repository knows
    ``vcname``; None when the repository lists it (or cannot be read: then the caller
    says what the ledger knows). A typo in ``--attach`` is then called what it is."""
    try:
        repo = site_repository(site, None)
    except UserError:
        return None
    if vcname in repo.entries:
        return None
    return UserError(
        f"no such VC {vcname!r}: the ledger has no run of it and the repository "
        f"({repo.location}) does not list it; VCs with runs: {', '.join(with_runs) or 'none'}; "
        f"in the repository: {', '.join(sorted(repo.entries)) or 'none'}"
    )


@dataclass
class SyncReport:
    """What a sync did: each VC's images and how each was made ready."""

    location: str
    cache: Path
    images: list[tuple[str, ProvidedImage]] = field(default_factory=list)

    def count(self, how: str) -> int:
        return sum(1 for _, image in self.images if image.how == how)


def sync(site: SiteConfig, spec: str | None, *, on_event: EventSink = ignore) -> SyncReport:
    """Fetch and verify every image of every VC of the repository into the site's cache.

    Each image is reported (an ``Output`` event) as soon as it is ready; progress of
    long downloads comes as ``Progress`` events. The first image that cannot be
    fetched or does not match SHA256SUMS stops the sync with its error; the images
    already verified stay in the cache.
    """
    repo = site_repository(site, spec)
    report = SyncReport(repo.location, site.image_cache)

    def progress(done: float, total: float | None, label: str) -> None:
        on_event(Progress(-1, done, total, label))

    def on_image(vcname: str, image: ProvidedImage) -> None:
        on_event(Output(-1, f"{vcname}: {image.describe()}"))

    report.images = sync_repository(repo, site.image_cache, progress=progress, on_image=on_image)
    return report
