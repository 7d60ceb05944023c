"""Hostile or broken web repositories (issue 27, items 7 and 8).

A server that sends more than it announced, and images whose names are those of
pragmash's own files in the cache: each test failed before the fix it names.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pragmash.images.fetch import Piece, assemble, partial_path

ANNOUNCED = 300_000


class _Endless(http.server.BaseHTTPRequestHandler):
    """Announces ``ANNOUNCED`` bytes (HEAD and GET), then streams three times as many."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(ANNOUNCED))
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()  # no Content-Length on the body: it just goes on
        try:
            for _ in range(3):
                self.wfile.write(b"x" * ANNOUNCED)
        except OSError:
            pass  # the client stopped reading: what a capped download does


@contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_download_stops_at_the_announced_size(tmp_path: Path) -> None:
    """Item 7: a server announcing 300 kB and streaming on: at most 300 kB are kept."""
    digest = hashlib.sha256(b"x" * ANNOUNCED).hexdigest()
    dest = tmp_path / "cache" / digest / "big.img"
    with _serve(_Endless) as url:
        path, new = assemble(
            [Piece("big.img", url=f"{url}big.img", expected=digest)],
            dest,
            expected=digest,
            where="SHA256SUMS:1",
        )
    assert new and path.stat().st_size == ANNOUNCED
    assert not partial_path(dest).exists()


def test_an_image_named_like_the_caches_lock_is_fetched_and_checked(tmp_path: Path) -> None:
    """Item 8: an image called ``.lock`` was taken from pragmash's own 0-byte lock file."""
    data = b"the real image " * 1000
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / "source.img"
    source.write_bytes(data)
    dest = tmp_path / "cache" / digest / ".lock"
    path, new = assemble([Piece(".lock", path=source)], dest, expected=digest, where="SUMS:1")
    assert new and path.read_bytes() == data


def test_an_image_named_like_a_partial_download_is_not_one(tmp_path: Path) -> None:
    """Item 8: ``X.part`` with X's digest was taken from X's interrupted download."""
    data = b"0123456789" * 30_000
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / "source.img"
    source.write_bytes(data)
    entry = tmp_path / "cache" / digest
    x_partial = partial_path(entry / "X")
    x_partial.parent.mkdir(parents=True)
    x_partial.write_bytes(data[:100_000])  # X's download, interrupted
    legacy = entry / "X.part"  # where older versions kept it
    entry.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(data[:100_000])
    path, _new = assemble(
        [Piece("X.part", path=source)], entry / "X.part", expected=digest, where="SUMS:1"
    )
    assert path.read_bytes() == data
