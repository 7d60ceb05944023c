"""A web repository for tests: a folder served by http.server on 127.0.0.1 in a thread.

The stdlib's SimpleHTTPRequestHandler knows nothing of ``Range``, so this handler
adds it (``bytes=N-``, answered 206 with Content-Range), and can misbehave on demand:
close the connection after some bytes of a file (a dropped download), or ignore
``Range`` altogether (some servers do). Every request is logged, so tests can see
what was asked for and from which byte.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash.vc.repository.vcdb import demo_repository_path

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Request:
    method: str
    path: str
    start: int  # the Range start asked for (0 without Range)
    sent: int  # body bytes sent


@dataclass
class Behaviour:
    """How the server misbehaves: drop ``path`` after ``cut`` bytes, ``times`` times."""

    drops: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (cut, times)
    ignore_range: bool = False
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # requests being answered now: the client may have read the whole body before the
    # handler logs it, so `gets` waits for them
    busy: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)

    def drop(self, path: str, after: int, times: int = 1) -> None:
        self.drops[path] = (after, times)

    def gets(self, path: str) -> list[Request]:
        """The GETs of ``path`` answered so far (those in flight finished first, 5 s at most)."""
        with self.idle:
            self.idle.wait_for(lambda: self.busy == 0, timeout=5)
        return [r for r in self.log if r.method == "GET" and r.path == path]


class _Handler(http.server.SimpleHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept in ``behaviour.log``."""

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        with self.behaviour.idle:
            self.behaviour.busy += 1
        try:
            self._answer(body=body)
        finally:
            with self.behaviour.idle:
                self.behaviour.busy -= 1
                self.behaviour.idle.notify_all()

    def _answer(self, *, body: bool) -> None:
        path = Path(self.translate_path(self.path))
        url_path = self.path.split("?", 1)[0]
        if url_path in self.behaviour.redirects:
            self.send_response(302)
            self.send_header("Location", self.behaviour.redirects[url_path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not path.is_file():
            self.send_error(404)
            with self.behaviour.lock:
                self.behaviour.log.append(Request(self.command, url_path, 0, 0))
            return
        data = path.read_bytes()
        start = 0
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and not self.behaviour.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        sent = 0
        if body:
            payload = data[start:]
            with self.behaviour.lock:
                cut, times = self.behaviour.drops.get(url_path, (0, 0))
                if times:
                    self.behaviour.drops[url_path] = (cut, times - 1)
            if times:
                payload = payload[: max(0, cut - start)]
                self.close_connection = True
            self.wfile.write(payload)
            self.wfile.flush()
            sent = len(payload)
        with self.behaviour.lock:
            self.behaviour.log.append(Request(self.command, url_path, start, sent))


@dataclass
class Served:
    """A running server: its base URL, the folder it serves, and its behaviour/log."""

    url: str
    root: Path
    behaviour: Behaviour


@contextmanager
def serve(root: Path) -> Iterator[Served]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends."""
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        yield Served(f"http://{name}:{port}/", root, behaviour)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_sums(root: Path, names: list[str] | None = None) -> None:
    """SHA256SUMS at ``root`` for ``names`` (default: every image file), as sha256sum writes it."""
    if names is None:
        names = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file()
            and p.name not in ("SHA256SUMS", "vcdb.txt")
            and not p.name.endswith(".xml")
        )
    lines = [f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (root / "SHA256SUMS").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def demo_copy(dest: Path) -> Path:
    """A copy of the bundled demo repository (calit2, tiny) with a SHA256SUMS."""
    shutil.copytree(demo_repository_path(), dest)
    write_sums(dest)
    return dest


def split(path: Path, parts: int, width: int = 2) -> list[Path]:
    """Cut ``path`` into ``parts`` pieces NAME.00, NAME.01 … and remove the whole."""
    data = path.read_bytes()
    size = -(-len(data) // parts)
    made = []
    for i in range(parts):
        piece = path.with_name(f"{path.name}.{i:0{width}d}")
        piece.write_bytes(data[i * size : (i + 1) * size])
        made.append(piece)
    path.unlink()
    return made


@contextmanager
def serve_raw(answer: bytes | Callable[[bytes], bytes]) -> Iterator[str]:
    """A loopback server that answers every connection with ``answer``'s bytes as they are
    (or what ``answer`` makes of the request): for answers http.server cannot send, such as
    a broken status line or 200 headers. Returns its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def reply(conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                request = conn.recv(65536)
                conn.sendall(answer(request) if callable(answer) else answer)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=reply, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join()
        listener.close()
