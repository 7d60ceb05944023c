"""Node disks on hosts that do not share the head node's disks (``storage = "pool"``).

Staging and ``pre_boot`` work on the head node as on any site: each node gets a qcow2
overlay on the cached (fixed) base, and its files (vc-out.xml, keys) go into that
overlay. Just before the domain is defined on a ``pool`` host, :meth:`HostDisks.place`
sends what the host lacks through the host engine's storage API
(:class:`~pragmash.driver_api.HostImages`): the base once per host and content, then
the node's small overlay as a volume backed by it, and its NoCloud seed where it has
one. The plan handed to the engine then
names the host's own paths: the disk volume, and a console log in the pool's folder
(which the engine reads back through the same API). ``shared`` hosts, and one-host
sites, keep today's paths: nothing here runs for them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pragmash import domain_states, stages
from pragmash.driver_api import (
    EngineDriver,
    HostImages,
    HostStorage,
    NodePlan,
    SeedPlan,
    StageContext,
)
from pragmash.errors import StepError
from pragmash.images.staging import backing_of, content_digest, image_format
from pragmash.vc.config.hosts import HostConfig
from pragmash.vc.config.site import SiteConfig


def pool_host(site: SiteConfig, host: str) -> HostConfig | None:
    """Host ``host``'s config where its storage is a pool, else None (shared paths)."""
    for config in site.hosts:
        if config.name == host and config.storage == "pool":
            return config
    return None


def console_log_on(host: HostConfig, node_name: str) -> str:
    """Where a node's console log lies on a pool host: in the pool's folder."""
    return str(PurePosixPath(host.pool_path) / f"{node_name}.console.log")


class HostDisks:
    """Puts nodes' disks on the pool hosts they are placed on; one store per host."""

    def __init__(
        self,
        site: SiteConfig,
        host_of: Callable[[str], str],
        engine_of_host: Callable[[str], EngineDriver],
        work_dir: Path,
    ) -> None:
        self.site = site
        self.host_of = host_of
        self.engine_of_host = engine_of_host
        self.work_dir = work_dir
        self._stores: dict[str, HostImages] = {}
        self._lock = threading.Lock()

    def store(self, host: HostConfig) -> HostImages:
        with self._lock:
            if host.name not in self._stores:
                engine = self.engine_of_host(host.name)
                if not isinstance(engine, HostStorage):
                    raise StepError(
                        f'host {host.name} has storage = "pool" but the engine '
                        f"{engine.name!r} has no storage API to put disks there",
                        stage=stages.STORAGE,
                        hint='use storage = "shared" for that host',
                    )
                self._stores[host.name] = engine.host_images(
                    host.pool, host.pool_path, self.work_dir, lock_dir=self.site.state_dir
                )
            return self._stores[host.name]

    def place(self, node: NodePlan, ctx: StageContext) -> NodePlan:
        """The plan to boot ``node`` with: on a pool host, its disk and log are the host's."""
        host = pool_host(self.site, node.host or self.host_of(node.name))
        if host is None or not node.disks:
            return node
        overlay = Path(node.disks[0])
        base = backing_of(overlay)
        if base is None:
            raise StepError(
                f'{node.name} is placed on {host.name} (storage = "pool"), whose disks come '
                f"as a base and an overlay, but its disk {overlay} has no base",
                stage=stages.STORAGE,
                hint='use [images] staging = "overlay" on a site with pool hosts',
            )
        store = self.store(host)
        kept = store.find_node_disk(node.name)
        if (
            kept is not None
            and self.engine_of_host(host.name).state(node.name) != domain_states.ABSENT
        ):
            # booted before: its disk holds what the guest wrote since; never sent over it
            return self._on_host(node, host, kept.path, self._seed(node, store, ctx))
        digest = content_digest(base, self.site.image_cache, ctx.progress)
        base_volume = store.put_base(base, digest, image_format(base), ctx)
        if base_volume.uploaded:
            ctx.note(f"{host.name}: base {base.name} sent to pool {host.pool} once for this host")
        disk = store.put_node_disk(node.name, overlay, base_volume, ctx)
        return self._on_host(node, host, disk.path, self._seed(node, store, ctx))

    @staticmethod
    def _seed(node: NodePlan, store: HostImages, ctx: StageContext) -> SeedPlan | None:
        """The node's seed sent beside its disk (small: sent on every boot, never stale)."""
        if node.seed is None:
            return None
        volume = store.put_node_seed(node.name, Path(node.seed.path), ctx)
        return dataclasses.replace(node.seed, path=volume.path)

    @staticmethod
    def _on_host(node: NodePlan, host: HostConfig, disk: str, seed: SeedPlan | None) -> NodePlan:
        return dataclasses.replace(
            node,
            disks=(disk, *node.disks[1:]),
            console_log=console_log_on(host, node.name) if node.console_log else None,
            seed=seed,
        )


def remove_host_disk(
    site: SiteConfig, host: str, engine: EngineDriver, node_name: str
) -> list[str]:
    """After a node's domain is gone: its disk volume and console log on a pool host.

    The volumes are found by the node's name in the site's pool, not through the domain,
    so they go also when the domain was undefined by hand. Returns the volumes removed.
    """
    config = pool_host(site, host)
    if config is None:
        return []
    if not isinstance(engine, HostStorage):
        return []
    store = engine.host_images(
        config.pool, config.pool_path, site.temp_dir, lock_dir=site.state_dir
    )
    removed = store.remove_node_disks([node_name])
    engine.remove_host_file(console_log_on(config, node_name))
    return removed
