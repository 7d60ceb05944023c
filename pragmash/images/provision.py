"""Make a VC's images local and verified before anything is allocated.

Called when a run is prepared, on every engine (the simulated demo one included), and
by ``pragmash sync``. For each image a vc-in.xml names:

- in a folder repository, the file is used where it is; where the folder has a
  SHA256SUMS that lists it, it is checked first (the digest is remembered by path,
  size and mtime, so an unchanged image is read once);
- in a web repository, it must be listed in SHA256SUMS; it is fetched into the cache
  (resumable, with progress) and checked (:mod:`pragmash.images.fetch`);
- where ``NAME`` is absent but ``NAME.00``, ``NAME.01`` … (or ``.000`` …) exist, the
  parts are joined in order into the cache, checked against the whole's digest or
  each part's, whichever SHA256SUMS lists.

The result is the same vc-in with each template's disks pointing at the verified
local files, so staging, fixing and booting never see anything else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pragmash.errors import RepositoryError
from pragmash.images.fetch import Piece, assemble, is_cached
from pragmash.images.staging import content_digest
from pragmash.vc.formats.sums import DigestMismatch
from pragmash.vc.formats.vcin import NodeTemplate, VcIn, load_vc_in
from pragmash.vc.repository.http import HttpClient
from pragmash.vc.repository.vcdb import Repository
from pragmash.vc.repository.web import HttpRepository

FETCHED_FOLDER = "fetched"
MAX_PARTS = 1000
_PART = re.compile(r"\.(\d{2,3})")

Progress = Callable[[float, float | None, str], None]
How = Literal["fetched", "joined", "cached", "verified", "local"]


def _no_progress(done: float, total: float | None, label: str) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class ProvidedImage:
    """One image made ready: its repository name, the local file, and what it took."""

    name: str
    path: Path
    how: How
    size: int

    def describe(self) -> str:
        words = {
            "fetched": "fetched and verified",
            "joined": "joined from its parts and verified",
            "cached": "already in the cache, verified when fetched",
            "verified": "verified against SHA256SUMS",
            "local": "used as is (no SHA256SUMS lists it)",
        }
        return f"{self.name}: {words[self.how]} ({self.size} bytes)"


def provide_images(
    repo: Repository,
    vcin: VcIn,
    cache_dir: Path,
    *,
    progress: Progress = _no_progress,
    client: HttpClient | None = None,
) -> tuple[VcIn, list[ProvidedImage]]:
    """Fetch, join and check every image ``vcin`` names; return it pointing at the results."""
    done: dict[Path, ProvidedImage] = {}
    for tmpl in (vcin.frontend, vcin.compute):
        for path in tmpl.disk_paths if tmpl is not None else ():
            if path not in done:
                done[path] = _provide(repo, vcin, path, cache_dir, progress, client)

    def moved(tmpl: NodeTemplate | None) -> NodeTemplate | None:
        if tmpl is None:
            return None
        return dataclasses.replace(tmpl, disk_paths=tuple(done[p].path for p in tmpl.disk_paths))

    frontend = moved(vcin.frontend)
    assert frontend is not None
    resolved = dataclasses.replace(vcin, frontend=frontend, compute=moved(vcin.compute))
    return resolved, list(done.values())


def load_and_provide(
    repo: Repository,
    vcname: str,
    cache_dir: Path,
    *,
    progress: Progress = _no_progress,
    client: HttpClient | None = None,
) -> tuple[VcIn, list[ProvidedImage]]:
    """A VC's vc-in.xml from the repository, with its images made ready."""
    path = repo.vc_in_path(vcname)
    vcin = load_vc_in(path, shown=repo.shown(path))
    return provide_images(repo, vcin, cache_dir, progress=progress, client=client)


def sync_repository(
    repo: Repository,
    cache_dir: Path,
    *,
    progress: Progress = _no_progress,
    on_image: Callable[[str, ProvidedImage], None] = lambda _vc, _image: None,
    client: HttpClient | None = None,
) -> list[tuple[str, ProvidedImage]]:
    """Every image of every VC in the repository, fetched and checked ahead of time."""
    results: list[tuple[str, ProvidedImage]] = []
    for vcname in sorted(repo.entries):
        _, images = load_and_provide(repo, vcname, cache_dir, progress=progress, client=client)
        for image in images:
            on_image(vcname, image)
            results.append((vcname, image))
    return results


def _provide(
    repo: Repository,
    vcin: VcIn,
    path: Path,
    cache_dir: Path,
    progress: Progress,
    client: HttpClient | None,
) -> ProvidedImage:
    name = repo.relative(path)
    if isinstance(repo, HttpRepository):
        return _provide_remote(repo, vcin, name, cache_dir, progress, client or repo.client)
    return _provide_local(repo, vcin, path, name, cache_dir, progress)


def _provide_local(
    repo: Repository,
    vcin: VcIn,
    path: Path,
    name: str,
    cache_dir: Path,
    progress: Progress,
) -> ProvidedImage:
    sums = repo.sums
    expected = sums.digest(name) if sums else None
    if path.is_file():
        if sums is None or expected is None:
            return ProvidedImage(name, path, "local", path.stat().st_size)
        cache_dir.mkdir(parents=True, exist_ok=True)
        got = content_digest(path, cache_dir, progress)
        if got != expected:
            raise DigestMismatch(str(path), sums.where(name), expected, got)
        return ProvidedImage(name, path, "verified", path.stat().st_size)
    parts = local_parts(path)
    if not parts:
        raise RepositoryError(
            f"{vcin.shown}: the disk image {path} does not exist (nor in parts"
            f" {path.name}.00, {path.name}.01 …)",
            hint="check the <source file=…> of the vc-in.xml, relative to its folder;"
            " nothing was allocated",
        )
    digests = [sums.digest(repo.relative(p)) if sums else None for p in parts]
    pieces = [
        Piece(repo.relative(p), path=p, expected=d) for p, d in zip(parts, digests, strict=True)
    ]
    if expected is not None:
        key = expected
    elif all(d is not None for d in digests):
        key = _parts_key([d for d in digests if d is not None])
    else:
        # nothing lists them: the cache entry follows the parts' identity on disk
        ident = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in parts]
        key = "local-" + hashlib.sha256(json.dumps(ident).encode()).hexdigest()
    where = sums.where(name) if sums and expected else (sums.source if sums else str(path))
    dest, new = assemble(
        pieces,
        cache_dir / FETCHED_FOLDER / key / path.name,
        expected=expected,
        where=where,
        shown=str(path),
        progress=progress,
    )
    return ProvidedImage(name, dest, "joined" if new else "cached", dest.stat().st_size)


def _provide_remote(
    repo: HttpRepository,
    vcin: VcIn,
    name: str,
    cache_dir: Path,
    progress: Progress,
    client: HttpClient,
) -> ProvidedImage:
    sums = repo.sums
    assert sums is not None
    url = repo.url_of(name)
    expected = sums.digest(name)
    filename = name.rsplit("/", 1)[-1]
    unlisted = RepositoryError(
        f"{url}: not listed in {sums.source}: every image of a web repository must be, so"
        " that it can be checked; nothing was fetched",
        hint=f"add its line to SHA256SUMS on the server (sha256sum {name} >> SHA256SUMS)",
    )
    if expected is not None:
        cached = cache_dir / FETCHED_FOLDER / expected / filename
        if is_cached(cached, expected):
            return ProvidedImage(name, cached, "cached", cached.stat().st_size)
    if client.size(url) is not None:
        if expected is None:
            raise unlisted
        pieces = [Piece(name, url=url, expected=expected)]
        key = expected
    else:
        part_names = remote_parts(repo, name, client)
        if not part_names:
            raise RepositoryError(
                f"{url}: not on the server (404), nor in parts {filename}.00, {filename}.01 …;"
                f" {vcin.shown} names it",
                hint="nothing was fetched or allocated",
            )
        digests = [sums.digest(n) for n in part_names]
        if expected is None and any(d is None for d in digests):
            raise unlisted
        key = expected or _parts_key([d for d in digests if d is not None])
        pieces = [
            Piece(n, url=repo.url_of(n), expected=d)
            for n, d in zip(part_names, digests, strict=True)
        ]
    where = sums.where(name) if expected else sums.where(pieces[0].name)
    dest, new = assemble(
        pieces,
        cache_dir / FETCHED_FOLDER / key / filename,
        expected=expected,
        where=where,
        shown=url,
        client=client,
        progress=progress,
    )
    return ProvidedImage(name, dest, "fetched" if new else "cached", dest.stat().st_size)


def _parts_key(digests: Sequence[str]) -> str:
    """A cache key for an image known only by its parts' digests."""
    return "parts-" + hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _in_order(found: Sequence[str], where: str) -> list[str]:
    """Part names (``NAME.00`` …) ordered by number: one width, from 0, without gaps.

    Each name is looked at, whatever order the folder or SHA256SUMS lists them in: a
    ``.01`` beside a ``.001`` was once kept or dropped by which came last.
    """
    if not found:
        return []
    numbered = sorted((int(n.rsplit(".", 1)[1]), len(n.rsplit(".", 1)[1]), n) for n in found)
    widths = {width for _, width, _ in numbered}
    if len(widths) > 1:
        by_width = {width: name for _, width, name in numbered}
        raise RepositoryError(
            f"{where}: split parts mix numberings ({by_width[min(widths)]} and"
            f" {by_width[max(widths)]}): expected one (.00, .01 … or .000, .001 …);"
            " remove the parts of the other"
        )
    (width,) = widths
    numbers = [number for number, _, _ in numbered]
    missing = [i for i in range(numbers[-1] + 1) if i not in set(numbers)]
    if missing:
        raise RepositoryError(
            f"{where}: split image part .{missing[0]:0{width}d} is missing: expected parts"
            f" numbered from .{0:0{width}d} without gaps"
        )
    return [name for _, _, name in numbered]


def local_parts(path: Path) -> list[Path]:
    """``NAME.00``, ``NAME.01`` … (or ``.000`` …) beside a missing ``NAME``, in order."""
    if not path.parent.is_dir():
        return []
    found = [
        sibling.name
        for sibling in path.parent.iterdir()
        if sibling.name.startswith(path.name)
        and _PART.fullmatch(sibling.name[len(path.name) :])
        and sibling.is_file()
    ]
    return [path.parent / n for n in _in_order(found, str(path))]


def remote_parts(repo: HttpRepository, name: str, client: HttpClient) -> list[str]:
    """A web image's parts: as SHA256SUMS lists them, else found by asking the server."""
    assert repo.sums is not None
    found = [
        listed
        for listed in repo.sums.names_under(name + ".")
        if _PART.fullmatch(listed[len(name) :])
    ]
    if found:
        return _in_order(found, repo.url_of(name))
    for width, other in ((2, 3), (3, 2)):
        names: list[str] = []
        while (
            len(names) < MAX_PARTS
            and client.size(repo.url_of(f"{name}.{len(names):0{width}d}")) is not None
        ):
            names.append(f"{name}.{len(names):0{width}d}")
        if names:
            # the server lists no folder: ask for the other numbering's first parts too
            others = [f"{name}.{i:0{other}d}" for i in (0, 1)]
            return _in_order(
                names + [n for n in others if client.size(repo.url_of(n)) is not None],
                repo.url_of(name),
            )
    return []
