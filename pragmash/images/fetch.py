"""Put an image into the cache, whole and verified: fetched over http(s), or joined from parts.

An image reaches a node only through here when it comes from a web repository or
in pieces (``NAME.img.gz.00``, ``.01`` … as pragma_boot served large images). The
bytes go to ``CACHE/.partial/KEY/NAME`` as they stream in, hashed on the way, never
more than the server announced; only when every byte is there and the digests match
SHA256SUMS is the file renamed to ``CACHE/KEY/NAME``. So a file under its final name is
always complete and verified, and a partial one is only ever continued, never trusted
(and never where an image's name could point at it: see :data:`PARTIAL_FOLDER`).

A download that stops (a reset, a timeout, Ctrl-C, a killed process) keeps its
partial file; the next attempt hashes what is there and asks the server for the rest
with an HTTP ``Range`` request. A server that ignores ``Range`` sends the whole file
again; the bytes already held are then skipped, not written twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pragmash.errors import RepositoryError
from pragmash.vc.formats.sums import DigestMismatch
from pragmash.vc.repository.http import (
    HttpClient,
    HttpError,
    protocol_errors,
    protocol_failure,
    transient_errors,
)

CHUNK = 1 << 20
RETRIES = 5  # a piece that stops is asked again from where it stopped, this many times in a row
BACKOFF = 1.0  # seconds, times the attempt number, before asking again
#: Beside the cache's entries (``FOLDER/KEY/NAME``), pragmash's own files: the lock of each
#: entry (``FOLDER/.partial/KEY.lock``) and its unfinished downloads
#: (``FOLDER/.partial/KEY/NAME``). A repository may name an image anything (``.lock``,
#: ``X.part``), so nothing of pragmash's lives among the images' names, where an image
#: could be taken for it (or it for an image).
PARTIAL_FOLDER = ".partial"

Progress = Callable[[float, float | None, str], None]


def _no_progress(done: float, total: float | None, label: str) -> None:
    """Default progress sink for callers that do not show progress."""


@dataclass(frozen=True)
class Piece:
    """One source of bytes: the whole image or one of its parts, local or on a web server.

    ``name`` is how messages and SHA256SUMS call it (repository-relative); ``expected``
    its listed digest, if any.
    """

    name: str
    url: str | None = None
    path: Path | None = None
    expected: str | None = None

    @property
    def shown(self) -> str:
        """How messages name it: its URL or its path."""
        return self.url or (str(self.path) if self.path else self.name)

    def size(self, client: HttpClient) -> int | None:
        """Bytes in this piece, or None where the server does not say."""
        if self.path is not None:
            return self.path.stat().st_size
        assert self.url is not None
        size = client.size(self.url)
        if size is None:
            raise RepositoryError(f"{self.url}: not found on the server (404)")
        return size if size >= 0 else None


@dataclass
class _Hashes:
    """The running digest of the whole image and of the piece being written."""

    whole: hashlib._Hash
    piece: hashlib._Hash


def is_cached(dest: Path, expected: str | None) -> bool:
    """Whether cache entry ``dest`` holds its image, complete and verified.

    A file under its final name is one; except where older versions of pragmash kept
    their own files under such a name, beside the images (``.lock``, ``NAME.part``): such
    a file is the image only if its digest says so, and is removed otherwise.
    """
    if not dest.is_file():
        return False
    if dest.name != ".lock" and not dest.name.endswith(".part"):
        return True
    if expected is not None and sha256_file(dest) == expected:
        return True
    dest.unlink()
    return False


def partial_path(dest: Path) -> Path:
    """Where the unfinished download of cache entry ``dest`` (``FOLDER/KEY/NAME``) grows."""
    return dest.parent.parent / PARTIAL_FOLDER / dest.parent.name / dest.name


def lock_path_of(entry: Path) -> Path:
    """The lock of cache entry folder ``FOLDER/KEY``: held while it is written (or pruned)."""
    return entry.parent / PARTIAL_FOLDER / f"{entry.name}.lock"


@contextlib.contextmanager
def _locked(entry: Path) -> Iterator[None]:
    """One writer per cache entry: a second run fetching the same image waits for the first."""
    lock_path = lock_path_of(entry)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_image(cache_dir: Path, key: str, filename: str) -> Path:
    """Where the verified image for ``key`` lives (whether or not it is there yet)."""
    return cache_dir / key / filename


def assemble(
    pieces: Sequence[Piece],
    dest: Path,
    *,
    expected: str | None,
    where: str,
    shown: str | None = None,
    client: HttpClient | None = None,
    progress: Progress = _no_progress,
    retries: int | None = None,
    backoff: float | None = None,
) -> tuple[Path, bool]:
    """Make ``dest`` hold the pieces' bytes in order, checked; returns (dest, newly made).

    ``expected`` is the digest of the whole (None when only the pieces are listed);
    ``where`` names the listing in messages (``http://…/SHA256SUMS:3``), ``shown`` the
    whole image (its URL or repository path; default its first piece's). A piece that
    stops mid-way is asked again from where it stopped up to ``retries`` times in a
    row; after that the error says how far it got and the ``.part`` is kept.
    """
    if is_cached(dest, expected):
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.parent):
        if is_cached(dest, expected):  # another run finished it while this one waited
            return dest, False
        web = client or HttpClient()
        sizes = [piece.size(web) for piece in pieces]
        partial = partial_path(dest)
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            _fill(
                pieces,
                sizes,
                partial,
                expected,
                where,
                shown or pieces[0].shown,
                web,
                progress,
                RETRIES if retries is None else retries,
                BACKOFF if backoff is None else backoff,
            )
        except _Unbounded:
            partial.unlink(missing_ok=True)  # bytes past any sane size: nothing to continue
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise RepositoryError(
                    f"disk full while fetching {dest.name} into {dest.parent}",
                    hint=f"free space on the file system of {dest.parent}, then run again:"
                    " the download continues where it stopped",
                ) from exc
            raise RepositoryError(f"cannot write {partial}: {exc.strerror or exc}") from exc
        os.replace(partial, dest)
    return dest, True


def _fill(
    pieces: Sequence[Piece],
    sizes: Sequence[int | None],
    partial: Path,
    expected: str | None,
    where: str,
    shown: str,
    client: HttpClient,
    progress: Progress,
    retries: int,
    backoff: float,
) -> None:
    """Continue ``partial`` to the end, hashing all of it, and check every digest."""
    known = all(s is not None for s in sizes)
    total = sum(s for s in sizes if s is not None) if known else None
    have = partial.stat().st_size if partial.exists() else 0
    if (not known and len(pieces) > 1) or (total is not None and have > total):
        have = 0  # where a kept prefix ends inside the pieces is unknown: start over
    label = f"fetching {pieces[0].name if len(pieces) == 1 else pieces[0].name.rsplit('.', 1)[0]}"
    whole = hashlib.sha256()
    with open(partial, "a+b") as out:
        out.truncate(have)
        start = 0
        for index, piece in enumerate(pieces):
            size = sizes[index]
            hashes = _Hashes(whole, hashlib.sha256())
            _rehash(out, start, have, size, hashes, progress, total)
            got = max(0, have - start)
            if size is None or got < size:
                got = _stream(
                    piece,
                    got,
                    size,
                    out,
                    hashes,
                    client,
                    progress,
                    label,
                    start,
                    total,
                    retries,
                    backoff,
                )
                have = start + got
            if size is not None and got != size:
                raise RepositoryError(
                    f"{piece.url or piece.path}: {got} bytes received, {size} expected"
                )
            digest = hashes.piece.hexdigest()
            if len(pieces) > 1 and piece.expected is not None and digest != piece.expected:
                out.close()
                partial.unlink(missing_ok=True)
                raise DigestMismatch(piece.shown, where, piece.expected, digest)
            start += got
        out.flush()
        os.fsync(out.fileno())
    got_whole = whole.hexdigest()
    single = pieces[0].expected if len(pieces) == 1 else None
    want = expected or single
    if want is not None and got_whole != want:
        partial.unlink(missing_ok=True)
        raise DigestMismatch(shown, where, want, got_whole)


class _TooSlow(TimeoutError):
    """Fewer than ``min_rate`` bytes a second over ``rate_window``: asked again, counted apart."""


class _Unbounded(RepositoryError):
    """A body with no announced size went past ``unsized_limit``."""


def _rehash(
    out: IO[bytes],
    start: int,
    have: int,
    size: int | None,
    hashes: _Hashes,
    progress: Progress,
    total: int | None,
) -> None:
    """Feed the hashes with the bytes of this piece already held from an earlier attempt."""
    end = have if size is None else min(have, start + size)
    if end <= start:
        return
    out.seek(start)
    pos = start
    while pos < end:
        block = out.read(min(CHUNK, end - pos))
        if not block:
            break
        hashes.whole.update(block)
        hashes.piece.update(block)
        pos += len(block)
        progress(pos, total, "checking the bytes fetched before")
    out.seek(0, os.SEEK_END)


def _stream(
    piece: Piece,
    got: int,
    size: int | None,
    out: IO[bytes],
    hashes: _Hashes,
    client: HttpClient,
    progress: Progress,
    label: str,
    offset: int,
    total: int | None,
    retries: int,
    backoff: float,
) -> int:
    """Append the piece's bytes from ``got`` on; returns how many of the piece are now held."""
    if piece.path is not None:
        with open(piece.path, "rb") as src:
            src.seek(got)
            while block := src.read(CHUNK):
                got = _take(block, out, hashes, got)
                progress(offset + got, total, label)
        return got
    assert piece.url is not None
    failures = 0
    slow = 0  # attempts stopped for slowness: not forgiven by the bytes they brought
    # the site's [downloads]: a rate floor over a window (a server dripping bytes never
    # trips the socket timeout), and a cap for a body whose size is not announced
    limits = client.limits
    while size is None or got < size:
        try:
            ranged = client.open_from(piece.url, got)
            with ranged.response as response:
                skip = got - ranged.start  # a server that ignored Range resends what we have
                window, window_start = 0, time.monotonic()
                # never more than the announced size: an endless body must not fill the disk;
                # read1 returns what has come, so a slow server is noticed between pieces
                while block := response.read1(
                    CHUNK if size is None else min(CHUNK, size - got + skip)
                ):
                    window += len(block)
                    if time.monotonic() - window_start >= limits.rate_window:
                        if window < limits.min_rate * limits.rate_window:
                            raise _TooSlow(
                                f"{window} bytes in {limits.rate_window:g} s, fewer than"
                                f" {limits.min_rate} a second ([downloads] min_rate)"
                            )
                        window, window_start = 0, time.monotonic()
                    if skip:
                        cut = min(skip, len(block))
                        block, skip = block[cut:], skip - cut
                        if not block:
                            continue
                    got = _take(block, out, hashes, got)
                    if size is None and got > limits.unsized_limit:
                        raise _Unbounded(
                            f"{piece.url}: more than {limits.unsized_limit} bytes and still"
                            " coming, with no size announced (no Content-Length): refused,"
                            " and what came is not kept",
                            hint="the server should send Content-Length for its images",
                        )
                    failures = 0
                    progress(offset + got, total, label)
            if size is None or got >= size:
                break
            raise ConnectionError("the server closed the connection early")
        except transient_errors() as exc:
            failures += 1
            slow += isinstance(exc, _TooSlow)
            if failures > retries or slow > retries:
                out.flush()
                raise HttpError(
                    f"{piece.url}: the download stopped at byte {got}"
                    f"{f' of {size}' if size is not None else ''}: {exc}",
                    url=piece.url,
                    server_fault=True,
                    hint="run the same command again: it continues from there (the bytes"
                    " received are kept, not trusted, until the whole image is verified)",
                ) from None
            time.sleep(backoff * failures)
        except protocol_errors() as exc:  # after transient_errors: a reset is one too
            out.flush()
            raise protocol_failure(piece.url, exc) from None
    return got


def _take(block: bytes, out: IO[bytes], hashes: _Hashes, got: int) -> int:
    out.write(block)
    hashes.whole.update(block)
    hashes.piece.update(block)
    return got + len(block)


def sha256_file(path: Path, progress: Progress = _no_progress) -> str:
    """The sha256 of a local file, with progress (for listed local images)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with open(path, "rb") as src:
        while block := src.read(CHUNK):
            digest.update(block)
            done += len(block)
            progress(done, size, f"checking {path.name}")
    return digest.hexdigest()
