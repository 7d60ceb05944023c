"""Repository operations the front ends offer outside a run: sync images.

``pragmash sync`` goes through here, so the CLI never fills the image cache itself.
Which repository a command means is :mod:`pragmash.vc.config.repository`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pragmash.engine.run.events import EventSink, Output, Progress, ignore
from pragmash.images.provision import ProvidedImage, sync_repository
from pragmash.vc.config.repository import site_repository
from pragmash.vc.config.site import SiteConfig


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
