"""``pragmash cache list`` and ``cache prune``: the cached images, who uses them, removing the rest.

Fixed bases and decompressed images are shared by every VC made from the same
image, and the repository images a run or ``sync`` fetched are kept for the next
run, so ``clean`` leaves them (it removes only the VC's own overlays). Pruning
removes the ones nothing uses any more. "Uses" is read from the overlays
themselves, not remembered elsewhere: a base is in use while any VC's disk in the
site's temp folder (every VC the ledger holds keeps its disks there) is an overlay
on it. A base a run is making or reading under its lock is left alone too.

Hosts with ``storage = "pool"`` hold their own copies of the bases, as volumes; there
a base is in use while a volume of the pool (a node's disk) is backed by it, and one a
run is sending, or putting a node's disk onto, is locked and left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash.driver_api import Closable, HostBase, HostStorage, SiteHosts
from pragmash.engine.run.registry import load_engine
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.errors import PragmashError
from pragmash.images.basecache import CacheEntry, list_entries, remove_entry
from pragmash.images.staging import backing_of
from pragmash.vc.config.site import SiteConfig


@dataclass(frozen=True)
class CachedImage:
    """One cached base and the VCs whose disks sit on it."""

    entry: CacheEntry
    users: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        e = self.entry
        return {
            "path": str(e.path),
            "kind": e.kind,
            "bytes": e.size,
            "source": e.source,
            "method": e.method,
            "driver": e.driver,
            "created": e.created,
            "used_by": list(self.users),
        }


def _users(site: SiteConfig) -> dict[Path, set[str]]:
    """Base path -> VCs with a disk on it, from every VC folder in the temp folder."""
    users: dict[Path, set[str]] = {}
    if not site.temp_dir.is_dir():
        return users
    for vc_dir in sorted(site.temp_dir.iterdir()):
        disks = VcFolder(vc_dir).disks
        if not disks.is_dir():
            continue
        for disk in sorted(disks.glob("*.qcow2")):
            backing = backing_of(disk)
            if backing is not None:
                users.setdefault(backing.resolve(), set()).add(vc_dir.name)
    return users


def cached_images(site: SiteConfig) -> list[CachedImage]:
    """Every image in the site's image cache with the VCs that use it.

    A fetched repository image is in use while a VC's disk sits on it or on a base
    made from it (decompressed or fixed): that VC's ``scale`` and ``reload`` read the
    image again, and would fetch it again were it pruned.
    """
    users = _users(site)
    entries = list_entries(site.image_cache)
    direct = {e.path: set(users.get(e.path.resolve(), ())) for e in entries}

    def using(entry: CacheEntry, seen: frozenset[Path]) -> set[str]:
        found = set(direct[entry.path])
        for made in entries:
            if made.path not in seen and _made_from(made, entry.path):
                found |= using(made, seen | {made.path})
        return found

    return [
        CachedImage(
            entry,
            tuple(
                sorted(
                    using(entry, frozenset({entry.path}))
                    if entry.kind == "fetched"
                    else direct[entry.path]
                )
            ),
        )
        for entry in entries
    ]


def _made_from(entry: CacheEntry, source: Path) -> bool:
    """Whether a cached base records ``source`` as what it was made from."""
    return (
        entry.kind != "fetched" and entry.source not in ("?", "") and (Path(entry.source) == source)
    )


def prune_cache(
    site: SiteConfig, *, dry_run: bool = False, note: Callable[[str], None] = lambda _t: None
) -> tuple[list[CachedImage], list[CachedImage]]:
    """Remove the bases no VC uses; returns (removed, kept). ``dry_run`` removes nothing."""
    removed: list[CachedImage] = []
    kept: list[CachedImage] = []
    for image in cached_images(site):
        if image.users:
            kept.append(image)
            note(f"kept {image.entry.path.name}: used by {', '.join(image.users)}")
        elif dry_run or remove_entry(image.entry):
            removed.append(image)
            verb = "would remove" if dry_run else "removed"
            note(f"{verb} {image.entry.path} ({image.entry.size / 2**20:.0f} MiB)")
        else:
            kept.append(image)
            note(f"kept {image.entry.path.name}: a run is making or reading it right now")
    return removed, kept


@dataclass
class HostPrune:
    """What ``prune`` did on one ``storage = "pool"`` host: its base volumes removed and
    kept (with why), or why nothing could be done there (``unreachable``)."""

    host: str
    pool: str
    removed: list[HostBase] = field(default_factory=list)
    kept: list[tuple[HostBase, str]] = field(default_factory=list)
    unreachable: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pool": self.pool,
            "removed": [{"volume": b.name, "bytes": b.bytes} for b in self.removed],
            "kept": [
                {"volume": b.name, "bytes": b.bytes, "why": why, "used_by": list(b.users)}
                for b, why in self.kept
            ],
            "unreachable": self.unreachable,
        }


def prune_hosts(
    site: SiteConfig, *, dry_run: bool = False, note: Callable[[str], None] = lambda _t: None
) -> list[HostPrune]:
    """Remove the base volumes no volume is backed by from every ``pool`` host's pool."""
    pool_hosts = [h for h in site.hosts if h.storage == "pool"]
    if not pool_hosts:
        return []
    router = load_engine(site)
    assert isinstance(router, SiteHosts)  # a site with pool hosts has [[hosts]]
    done: list[HostPrune] = []
    try:
        for host in pool_hosts:
            result = HostPrune(host.name, host.pool)
            done.append(result)
            try:
                engine = router.engine_of_host(host.name)
                if not isinstance(engine, HostStorage):
                    raise PragmashError(f"its engine {engine.name!r} has no storage API")
                store = engine.host_images(
                    host.pool, host.pool_path, site.temp_dir, lock_dir=site.state_dir
                )
                _prune_host(store.bases(), store.remove_base, result, dry_run, note)
            except PragmashError as exc:
                result.unreachable = exc.message
                note(f"{host.name}: nothing pruned there: {exc.message}")
    finally:
        if isinstance(router, Closable):
            router.close()
    return done


def _prune_host(
    bases: list[HostBase],
    remove: Callable[[str], str | None],
    result: HostPrune,
    dry_run: bool,
    note: Callable[[str], None],
) -> None:
    where = f"{result.host}: "
    for base in bases:
        why = f"used by {', '.join(base.users)}" if base.users else None
        if why is None and not dry_run:
            why = remove(base.name)
        if why is not None:
            result.kept.append((base, why))
            note(f"{where}kept {base.name}: {why}")
            continue
        result.removed.append(base)
        verb = "would remove" if dry_run else "removed"
        note(f"{where}{verb} {base.name} from pool {result.pool} ({base.bytes / 2**20:.0f} MiB)")
