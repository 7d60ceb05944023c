"""A repository on a web server: ``--base_path http://host/repo/`` or ``[paths] repository``.

It holds what a folder repository holds — ``vcdb.txt``, each VC's vc-in.xml, the
images — plus a ``SHA256SUMS`` at its root, which is required: an http answer
proves nothing about the bytes, so every image must be listed (see
:mod:`pragmash.vc.formats.sums`). vcdb.txt and SHA256SUMS are read from the server each
time the repository is opened, a VC's vc-in.xml each time it is asked for, so a
fix made on the server is seen by the next run.

They are kept in a local copy (``CACHE/repositories/KEY/``, KEY from the URL) laid
out like the server, so the rest of pragmash reads a web repository exactly as a
folder; messages name the URL, never the copy. Images are not copied here: they are
fetched, verified and cached by content (:mod:`pragmash.images.fetch`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pragmash.atomic_files import write_atomic
from pragmash.errors import RepositoryError
from pragmash.vc.formats.sums import SUMS_NAME, DigestMismatch, Sums, parse_sums
from pragmash.vc.repository.http import HttpClient, check_url, folder_url, is_url, join
from pragmash.vc.repository.vcdb import (
    VCDB_NAME,
    Repository,
    load_repository,
    parse_vcdb,
)

MIRROR_FOLDER = "repositories"


@dataclass(frozen=True)
class HttpRepository(Repository):
    """A web repository; ``base_path`` is its local copy, ``url`` the server's folder."""

    url: str = ""
    client: HttpClient = field(default_factory=HttpClient)

    @property
    def location(self) -> str:
        return self.url

    @property
    def remote(self) -> str | None:
        return self.url

    def shown(self, path: Path) -> str:
        return join(self.url, self.relative(path))

    def url_of(self, relative: str) -> str:
        return join(self.url, relative)

    def vc_in_path(self, vcname: str) -> Path:
        """Fetch ``vcname``'s vc-in.xml into the local copy and return the copy's path."""
        path = self.entry(vcname, vcdb="the server's vcdb.txt")
        relative = self.relative(path)
        url = self.url_of(relative)
        if path.is_dir():  # other entries' files lie beneath it: a folder on the server
            raise self.names_a_folder(vcname, url)
        data = self.client.get(url)
        if data is None:
            raise RepositoryError(
                f"{self.where(vcname)}: the vc-in.xml of {vcname!r} is not on the server:"
                f" {url} (404)"
            )
        assert self.sums is not None
        expected = self.sums.digest(relative)
        if expected is not None:
            got = hashlib.sha256(data).hexdigest()
            if got != expected:
                raise DigestMismatch(url, self.sums.where(relative), expected, got)
        _clear_stale_files(self.base_path, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, durable=False)  # a copy that can be fetched again
        except IsADirectoryError:
            raise self.names_a_folder(vcname, url) from None
        except OSError as exc:
            raise RepositoryError(
                f"{self.where(vcname)}: cannot keep the copy of {url} at {path}:"
                f" {exc.strerror or exc}"
            ) from None
        return path


def _clear_stale_files(mirror: Path, path: Path) -> None:
    """Remove copies standing where ``path``'s folders go: the server now serves a folder
    there (an entry such as ``b,calit2`` once copied a file to ``calit2``). The copy is
    only a cache of the server, so nothing is lost."""
    for parent in reversed(path.relative_to(mirror).parents):
        folder = mirror / parent
        if folder != mirror and (folder.is_file() or folder.is_symlink()):
            folder.unlink()


def mirror_folder(cache_dir: Path, url: str) -> Path:
    """The local copy's folder for the repository at ``url``."""
    key = hashlib.sha256(folder_url(url).encode("utf-8")).hexdigest()[:16]
    return cache_dir / MIRROR_FOLDER / key


def _text(data: bytes, url: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RepositoryError(f"{url}: is not UTF-8 text") from None


def load_http_repository(
    url: str, cache_dir: Path, *, client: HttpClient | None = None, what: str = "--base_path"
) -> HttpRepository:
    """Read vcdb.txt and SHA256SUMS from the server at ``url``; both must be there."""
    url = folder_url(check_url(url, what))
    web = client or HttpClient()
    vcdb_url = join(url, VCDB_NAME)
    vcdb = web.get(vcdb_url)
    if vcdb is None:
        raise RepositoryError(
            f"{vcdb_url}: not found (404): a repository holds vcdb.txt with"
            f" 'name,relative/path/vc-in.xml' lines ({what} {url})"
        )
    sums_url = join(url, SUMS_NAME)
    sums_data = web.get(sums_url)
    if sums_data is None:
        raise RepositoryError(
            f"{sums_url}: not found (404): a web repository must publish SHA256SUMS at its"
            " root, listing every image (`sha256sum */*.img.gz > SHA256SUMS`); without it"
            " nothing it serves can be checked, so nothing is fetched",
        )
    mirror = mirror_folder(cache_dir, url)
    sums: Sums = parse_sums(_text(sums_data, sums_url), sums_url)
    mirror.mkdir(parents=True, exist_ok=True)
    write_atomic(mirror / VCDB_NAME, vcdb, durable=False)
    write_atomic(mirror / SUMS_NAME, sums_data, durable=False)
    entries, lines = parse_vcdb(_text(vcdb, vcdb_url), vcdb_url, mirror, url)
    return HttpRepository(
        base_path=mirror, entries=entries, lines=lines, sums=sums, url=url, client=web
    )


def open_repository(
    spec: str | Path | None,
    cache_dir: Path,
    *,
    what: str = "--base_path",
    client: HttpClient | None = None,
) -> Repository:
    """The repository ``spec`` names: a URL (web), a folder, or None (the bundled demo)."""
    if isinstance(spec, str) and is_url(spec):
        return load_http_repository(spec, cache_dir, client=client, what=what)
    return load_repository(Path(spec) if spec is not None else None)
