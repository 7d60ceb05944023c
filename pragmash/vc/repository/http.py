"""A small HTTP(S) client for repositories served over the web.

The standard library's ``urllib`` does everything a repository needs: GET of small
files (vcdb.txt, SHA256SUMS, vc-in.xml), HEAD for sizes, and ``Range`` requests to
continue an image download where it stopped. A library such as requests or urllib3
would add retries, but a retry that restarts a multi-gigabyte image from byte 0 is
the wrong retry: the caller (:mod:`pragmash.images.fetch`) retries by asking for the
bytes it does not have yet, which only it knows. So no dependency is added.

Only ``http`` and ``https`` are spoken, redirects included (urllib would otherwise
follow a redirect to ``ftp://``). Certificates are verified as the system's default
context does; proxies come from the usual ``http_proxy``/``https_proxy`` variables.

``urllib.request`` (and ``http.client``, ``ssl`` behind it) is imported on the first
request, not with this module: every command imports the repository code, and most
(``--help``, ``check``, ``status``) never speak HTTP.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import http.client
    import urllib.request

from pragmash import __version__
from pragmash.errors import EXIT_STEP_FAILED, RepositoryError

SCHEMES = ("http", "https")
USER_AGENT = f"pragmash/{__version__}"
SMALL_FILE_LIMIT = 4 * 1024 * 1024  # vcdb.txt, SHA256SUMS and vc-in.xml are far smaller
#: The defaults of the site's ``[downloads]`` settings (:class:`DownloadLimits`).
#: Seconds a small file may take whole, from connecting to its last byte, and an image's
#: answer up to its first body byte. The socket timeout alone bounds each wait for a
#: byte, so a server sending one byte every few seconds held a command forever.
DEADLINE = 120.0
#: A download slower than MIN_RATE bytes a second over RATE_WINDOW seconds is stopped and
#: asked again from where it got to (as curl's --speed-limit/--speed-time): a server
#: dripping a byte every few seconds never trips the socket timeout and held a run forever.
MIN_RATE = 1024
RATE_WINDOW = 60.0
#: The most bytes taken for an image whose size the server does not announce (no
#: Content-Length): a body that never ends must not fill the disk.
UNSIZED_LIMIT = 64 * 1024**3


@dataclass(frozen=True)
class DownloadLimits:
    """The deadlines and caps of web repositories: the site's ``[downloads]`` settings,
    today's constants by default (read when made, so a test may shorten them)."""

    deadline: float = field(default_factory=lambda: DEADLINE)
    min_rate: int = field(default_factory=lambda: MIN_RATE)
    rate_window: float = field(default_factory=lambda: RATE_WINDOW)
    unsized_limit: int = field(default_factory=lambda: UNSIZED_LIMIT)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)", re.ASCII)


@functools.cache
def transient_errors() -> tuple[type[BaseException], ...]:
    """What a dropped connection, a stalled server or a reset looks like from urllib."""
    import http.client
    import urllib.error

    return (
        TimeoutError,
        socket.timeout,
        ConnectionError,
        http.client.IncompleteRead,
        http.client.RemoteDisconnected,
        urllib.error.URLError,
    )


def is_url(text: str | None) -> bool:
    """Whether a ``--base_path`` or ``[paths] repository`` names a web repository."""
    return text is not None and text.lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an http(s) address (None when nothing does).

    urllib would raise ValueError/InvalidURL deep in a request for these (a port that
    is no number, a broken ``[IPv6]`` literal, a space or control character), which
    reached the user as a traceback; here each is said in words.
    """
    bad = next((c for c in url if c.isspace() or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return (
            f"it holds {bad!r} at column {url.index(bad) + 1}: a URL has no spaces or control"
            " characters (write a space as %20)"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", a bracketed host that is no address
        return f"its host is not valid: {exc}"
    if parts.scheme.lower() not in SCHEMES or not host:
        return "expected http://HOST/PATH/ or https://…"
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        return f"its port is not valid ({exc}): expected a number from 1 to 65535"
    return None


def check_url(url: str, what: str = "--base_path") -> str:
    """``url`` if it is an http(s) URL with a host, else a RepositoryError naming ``what``."""
    problem = url_problem(url)
    if problem is not None:
        raise RepositoryError(f"{what}: {url!r} is not a repository URL: {problem}")
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment:
        raise RepositoryError(
            f"{what}: {url!r}: a repository URL has no '?query' or '#fragment': expected the"
            " folder that holds vcdb.txt"
        )
    return url


def folder_url(url: str) -> str:
    """The URL as a folder (ending in ``/``), so relative names join beneath it."""
    return url if url.endswith("/") else url + "/"


def join(base: str, relative: str) -> str:
    """``relative`` (a repository path such as ``calit2/vc-in.xml``) under ``base``."""
    quoted = urllib.parse.quote(relative, safe="/")
    return urllib.parse.urljoin(folder_url(base), quoted)


class HttpError(RepositoryError):
    """A web repository did not give what was asked; ``status`` is the HTTP status, if any.

    ``server_fault`` marks a failure of the world, not of the user's input, so exit 3,
    not 2: an answer that breaks HTTP itself (no status line, endless headers), a server
    error (5xx), a connection refused, dropped or timed out, a server too slow.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        server_fault: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status
        if server_fault:
            self.exit_code = EXIT_STEP_FAILED


@functools.cache
def protocol_errors() -> tuple[type[BaseException], ...]:
    """A server's answer that is not HTTP: a bad status line, >100 headers, a 64 kB line.

    Not transient (asking again gets the same answer): such a server is refused at once.
    Check :func:`transient_errors` first: a dropped connection is an HTTPException too.
    """
    import http.client

    return (http.client.HTTPException,)


def protocol_failure(url: str, exc: BaseException) -> HttpError:
    """The error for an answer that is not HTTP (one of :func:`protocol_errors`)."""
    detail = str(exc).strip() or exc.__class__.__name__
    if len(detail) > 200:
        detail = detail[:200] + "…"
    return HttpError(
        f"{url}: the server's answer is not valid HTTP ({exc.__class__.__name__}: {detail!r})",
        url=url,
        server_fault=True,
    )


@dataclass
class _Watch:
    """The sockets of one request, shut at its deadline so no read waits past it."""

    sockets: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake a read blocked on ``sock`` (it sees the end of the stream)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("_WATCH", default=None)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[_Watch]:
    """Every connection opened in this block (redirects too) is shut ``seconds`` from now."""
    watch = _Watch()
    token = _WATCH.set(watch)
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _WATCH.reset(token)


@functools.cache
def _watched(connection: type[Any]) -> type[Any]:
    """``connection`` (http.client's HTTP or HTTPS connection) telling the deadline its socket."""

    class Watched(connection):  # type: ignore[misc]
        def connect(self) -> None:
            super().connect()
            watch = _WATCH.get()
            if watch is not None:
                watch.add(self.sock)

    return Watched


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener, following redirects only to http(s) (built on the first request)."""
    import urllib.request

    class WatchedHttp(urllib.request.HTTPHandler):
        def do_open(self, http_class: Any, req: Any, **kw: Any) -> Any:
            return super().do_open(cast(Any, _watched(http_class)), req, **kw)

    class WatchedHttps(urllib.request.HTTPSHandler):
        def do_open(self, http_class: Any, req: Any, **kw: Any) -> Any:
            return super().do_open(cast(Any, _watched(http_class)), req, **kw)

    class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        """A repository may not send us to ftp or a file."""

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: IO[bytes],
            code: int,
            msg: str,
            headers: Any,
            newurl: str,
        ) -> urllib.request.Request | None:
            problem = url_problem(newurl)
            if problem is not None:
                scheme = newurl.split(":", 1)[0].lower() if ":" in newurl else ""
                if scheme not in SCHEMES:
                    problem = "which is not http(s)"
                raise HttpError(
                    f"{req.full_url}: redirected to {newurl}, {problem}",
                    url=req.full_url,
                    status=code,
                    server_fault=True,
                )
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HttpOnlyRedirects(), WatchedHttp(), WatchedHttps())


def _failures() -> tuple[type[BaseException], ...]:
    """What a request may raise besides an HTTP status: transient faults, OS errors, answers
    that are not HTTP, and ValueError (urllib's word for a URL it cannot use: a redirect to
    ``http://[::1``)."""
    return (*transient_errors(), OSError, *protocol_errors(), ValueError)


def _request(url: str, method: str | None = None) -> urllib.request.Request:
    import urllib.request

    return urllib.request.Request(url, method=method)


def content_length(value: str | None) -> int | None:
    """A Content-Length header's number; None when absent or not ASCII digits (``²`` is a
    digit to ``str.isdigit`` and a ValueError to ``int``)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


@dataclass(frozen=True)
class Ranged:
    """An open response for ``[start, total)`` of a file; ``start`` is where it really begins.

    A server that ignores ``Range`` answers 200 with the whole file: ``start`` is then 0
    and the caller must throw away what it had.
    """

    response: http.client.HTTPResponse
    start: int
    total: int | None


@dataclass(frozen=True)
class HttpClient:
    """GET, HEAD and ranged GET with a timeout; every failure a RepositoryError naming the URL."""

    timeout: float = 30.0
    limits: DownloadLimits = field(default_factory=DownloadLimits)

    @property
    def deadline(self) -> float:
        return self.limits.deadline

    def _open(self, request: urllib.request.Request) -> Any:
        request.add_header("User-Agent", USER_AGENT)
        return _opener().open(request, timeout=self.timeout)

    def _fail(self, url: str, exc: BaseException) -> HttpError:
        import http.client
        import urllib.error

        if isinstance(exc, urllib.error.HTTPError):
            return HttpError(
                f"{url}: the server answered {exc.code} {exc.reason}",
                url=url,
                status=exc.code,
                server_fault=exc.code >= 500,
            )
        if isinstance(exc, urllib.error.URLError):  # refused, no route, a name not found
            return HttpError(f"{url}: cannot connect: {exc.reason}", url=url, server_fault=True)
        if isinstance(exc, ValueError | http.client.InvalidURL):
            return HttpError(f"{url}: cannot be asked for: {exc}", url=url)
        if isinstance(exc, protocol_errors()) and not isinstance(exc, transient_errors()):
            return protocol_failure(url, exc)
        # a timeout, a reset, a dropped connection, the disk: the world, not the input
        return HttpError(f"{url}: {exc.__class__.__name__}: {exc}", url=url, server_fault=True)

    def _too_slow(self, url: str) -> HttpError:
        return HttpError(
            f"{url}: gave up after {self.deadline:g} s without a whole answer: the server is"
            " too slow (or sends a byte now and then)",
            url=url,
            server_fault=True,
        )

    def get(self, url: str, *, limit: int = SMALL_FILE_LIMIT) -> bytes | None:
        """A small file's bytes, or None when the server says 404/410 (absent)."""
        import urllib.error

        data = bytearray()
        missing: int | None = None
        with _deadline(self.deadline) as watch:
            try:
                with self._open(_request(url)) as response:
                    # read1: what has come, so the deadline is looked at between pieces
                    while len(data) <= limit and (block := response.read1(limit + 1 - len(data))):
                        data += block
                    missing = response.length  # bytes announced and not received
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 410):
                    return None
                raise self._fail(url, exc) from None
            except HttpError:
                raise
            except _failures() as exc:
                if not watch.expired:
                    raise self._fail(url, exc) from None
        if watch.expired:
            raise HttpError(
                f"{url}: gave up after {self.deadline:g} s with {len(data)} bytes received:"
                " the server is too slow (or sends a byte now and then); a small file is"
                " expected at once",
                url=url,
                server_fault=True,
            )
        if len(data) > limit:
            raise HttpError(
                f"{url}: larger than {limit} bytes; a small text file is expected", url=url
            )
        if missing:
            raise HttpError(
                f"{url}: cut short: {len(data)} bytes received of the {len(data) + missing}"
                " the server announced; nothing of it is used",
                url=url,
                server_fault=True,
            )
        return bytes(data)

    def size(self, url: str) -> int | None:
        """The file's size from a HEAD request; None when absent (404/410).

        A server that sends no Content-Length gives -1: the file exists, its size is unknown.
        """
        import urllib.error

        with _deadline(self.deadline) as watch:
            try:
                with self._open(_request(url, "HEAD")) as response:
                    length = response.headers.get("Content-Length")
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 410):
                    return None
                raise self._fail(url, exc) from None
            except HttpError:
                raise
            except _failures() as exc:
                if watch.expired:
                    raise self._too_slow(url) from None
                raise self._fail(url, exc) from None
        size = content_length(length)
        return -1 if size is None else size

    def open_from(self, url: str, start: int) -> Ranged:
        """The file from byte ``start`` on (a ``Range`` request when ``start`` > 0).

        Transient failures (reset, timeout) propagate as they are, so the caller can
        count them and ask again from where it got to; HTTP errors become HttpError.
        """
        import urllib.error

        request = _request(url)
        if start > 0:
            request.add_header("Range", f"bytes={start}-")
        with _deadline(self.deadline) as watch:  # up to the headers; the body is the caller's
            try:
                response = self._open(request)
            except urllib.error.HTTPError as exc:
                raise self._fail(url, exc) from None
            except HttpError:
                raise
            except _failures() as exc:
                if watch.expired:
                    raise self._too_slow(url) from None
                if isinstance(exc, transient_errors()):
                    raise
                raise self._fail(url, exc) from None
        status = response.status
        length = response.headers.get("Content-Length")
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None or int(match.group(1)) != start:
                response.close()
                raise HttpError(
                    f"{url}: the server sent a partial answer that does not start at byte {start}",
                    url=url,
                    status=status,
                )
            total = None if match.group(3) == "*" else int(match.group(3))
            return Ranged(response, start, total)
        return Ranged(response, 0, content_length(length))
