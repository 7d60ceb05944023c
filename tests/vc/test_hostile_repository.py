"""Hostile or broken web repositories (issue 27, items 7, 8, 9 and 10).

A server that sends more than it announced, images whose names are those of
pragmash's own files in the cache, answers that are not HTTP, URLs urllib cannot
use, vcdb.txt entries naming folders: each test failed before the fix it names.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.clirun import cli
from support.httprepo import demo_copy, serve, serve_raw
from support.multihost import Host, write_hosts_site

from pragmash.errors import EXIT_STEP_FAILED, EXIT_USER, RepositoryError
from pragmash.images.fetch import Piece, assemble, partial_path
from pragmash.images.provision import remote_parts
from pragmash.vc.repository import http as web_client
from pragmash.vc.repository.http import DownloadLimits, HttpClient
from pragmash.vc.repository.web import load_http_repository

ROOT = Path(__file__).resolve().parents[2]

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


# -- item 9: answers that are not HTTP, URLs urllib cannot use: words, not tracebacks ----


NOT_HTTP = {
    "a bad status line": b"HTTP/1.1 abc OK\r\n\r\n",
    "no status line at all": b"hello there\r\n\r\n",
    "more than 100 headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(150))
    + b"\r\nbody",
    "a header line over 64 kB": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\nbody",
    "a chunk-size line over 64 kB": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"1" * 70_000
    + b"\r\n",
}


@pytest.mark.parametrize("answer", NOT_HTTP.values(), ids=NOT_HTTP.keys())
def test_a_server_whose_answer_is_not_http_is_named_exit_3(answer: bytes) -> None:
    """Each was a traceback from http.client (BadStatusLine, HTTPException, LineTooLong)."""
    with serve_raw(answer) as url:
        code, _, err = cli("list", "repository", "--base_path", url)
    assert code == EXIT_STEP_FAILED, err
    assert f"{url}vcdb.txt: the server's answer is not valid HTTP" in err
    assert "Traceback" not in err


def test_an_image_whose_chunked_body_breaks_http_is_refused_and_kept_apart(
    tmp_path: Path,
) -> None:
    """The body is read while the image streams in: a 64 kB chunk-size line there too."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    bad = NOT_HTTP["a chunk-size line over 64 kB"]
    dest = tmp_path / "cache" / ("0" * 64) / "x.img"
    with (
        serve_raw(lambda request: head if request.startswith(b"HEAD") else bad) as url,
        pytest.raises(RepositoryError, match="not valid HTTP") as caught,
    ):
        assemble([Piece("x.img", url=f"{url}x.img")], dest, expected="0" * 64, where="S:1")
    assert caught.value.exit_code == EXIT_STEP_FAILED
    assert not dest.exists()


def test_a_redirect_to_a_port_that_is_no_number_is_named() -> None:
    answer = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:abc/x\r\nContent-Length: 0\r\n\r\n"
    with serve_raw(answer) as url:
        code, _, err = cli("list", "repository", "--base_path", url)
    assert code == EXIT_STEP_FAILED, err
    assert "redirected to http://127.0.0.1:abc/x, its port is not valid" in err


def test_a_content_length_that_is_a_unicode_digit_is_no_size() -> None:
    """``²`` passes str.isdigit and fails int(): size and a download's total were a ValueError."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\nbody"
    with serve_raw(answer) as url:
        client = HttpClient(timeout=5)
        assert client.size(f"{url}x") == -1
        ranged = client.open_from(f"{url}x", 0)
        with ranged.response as response:
            assert (ranged.total, response.read()) == (None, b"body")


BAD_URLS = {
    "a port that is no number": "http://127.0.0.1:abc/repo/",
    "a port out of range": "http://127.0.0.1:99999/repo/",
    "a broken IPv6 literal": "http://[::1/repo/",
    "a bracketed host that is no address": "http://[zz]/repo/",
    "a space in the path": "http://127.0.0.1/my repo/",
    "a control character": "http://127.0.0.1/repo\x01/",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_repository_url_urllib_cannot_use_is_bad_input(url: str) -> None:
    code, _, err = cli("list", "repository", "--base_path", url)
    assert code == EXIT_USER, err
    assert "is not a repository URL" in err and "Traceback" not in err


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_site_naming_such_a_url_is_refused_by_its_key_in_every_command(
    tmp_path: Path, url: str
) -> None:
    """Such a site crashed every command, ``hosts`` included, at load."""
    site = tmp_path / "site.toml"
    text = (ROOT / "tests" / "data" / "sites" / "small.toml").read_text(encoding="utf-8")
    escaped = url.replace("\x01", "\\u0001")
    site.write_text(text.replace('"repo"', f'"{escaped}"'), encoding="utf-8")
    for command in (["hosts"], ["list", "repository"], ["status", "calit2"]):
        code, _, err = cli(*command, "--site", str(site))
        assert code == EXIT_USER, (command, err)
        assert f"{site}: [paths] repository:" in err and "Traceback" not in err


def _folder_entries(root: Path, *lines: str) -> None:
    vcdb = root / "vcdb.txt"
    vcdb.write_text(vcdb.read_text(encoding="utf-8") + "".join(f"{x}\n" for x in lines))


def test_a_vcdb_entry_naming_the_repository_itself_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    """``d,.`` made the copy of the server's file at the copy's own folder: IsADirectoryError."""
    repo = demo_copy(tmp_path / "www")
    _folder_entries(repo, "d,.")
    with serve(repo) as web:
        code, _, err = cli("list", "repository", "--base_path", web.url)
    assert code == EXIT_USER, err
    assert f"{web.url}vcdb.txt:5: '.' names a folder" in err


@pytest.mark.libvirt
def test_a_vcdb_entry_naming_a_folder_is_refused_in_any_order_also_by_sync(
    tmp_path: Path,
) -> None:
    """``b,calit2`` beside ``calit2,calit2/vc-in.xml``: a server that answers for the folder
    made the copy a file where calit2's folder goes (FileExistsError), or the reverse
    (IsADirectoryError), in ``check``, a run and ``sync``."""
    repo = demo_copy(tmp_path / "www")
    _folder_entries(repo, "b,calit2")
    recipe = str(ROOT / "recipes" / "rocks6.prg")
    with serve(repo) as web:
        web.behaviour.redirects["/calit2"] = "/calit2/vc-in.xml"  # a server answering for it
        assert cli("check", recipe, "--vcname", "b", "--base_path", web.url)[0] == 0
        code, _, err = cli("check", recipe, "--vcname", "calit2", "--base_path", web.url)
        assert code == 0, err  # the stale copy at calit2 gave way to the folder
        code, _, err = cli("check", recipe, "--vcname", "b", "--base_path", web.url)
        assert code == EXIT_USER, err
        assert f"{web.url}vcdb.txt:5: the vc-in.xml of 'b' is a folder: {web.url}calit2" in err
        code, _, err = cli("sync", web.url)
        assert code == EXIT_USER, err
        assert "the vc-in.xml of 'b' is a folder" in err and "Traceback" not in err


def test_a_local_vcdb_entry_naming_a_folder_says_so(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "repo")
    _folder_entries(repo, "b,calit2")
    recipe = str(ROOT / "recipes" / "rocks6.prg")
    code, _, err = cli("check", recipe, "--vcname", "b", "--base_path", str(repo))
    assert code == EXIT_USER
    assert f"{repo}/vcdb.txt:5: the vc-in.xml of 'b' is a folder: {repo}/calit2" in err


# -- item 10: deadlines, bodies cut short or without end, ambiguous split images --------


class _Drip(http.server.BaseHTTPRequestHandler):
    """Sends ``head`` at once, then ``answer`` one byte every 0.25 s (a HEAD: ``head``)."""

    head = b""
    answer = b""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_HEAD(self) -> None:
        self.wfile.write(self.head)

    def do_GET(self) -> None:
        try:
            self.wfile.write(self.head)
            for i in range(len(self.answer)):
                self.wfile.write(self.answer[i : i + 1])
                self.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass  # the client gave up: what the deadline is for
        self.close_connection = True


def test_a_server_dripping_bytes_is_given_up_on_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each byte came before the socket timeout, so `list repository` waited as long as the
    server pleased (this one: 11 s for its status line, headers and vcdb.txt), silently."""
    monkeypatch.setattr(web_client, "DEADLINE", 1.0)
    body = b"calit2,calit2/vc-in.xml\n"
    drip = type("Drip", (_Drip,), {"answer": b"HTTP/1.1 200 OK\r\n\r\n" + body})
    with _serve(drip) as url:
        code, _, err = cli("list", "repository", "--base_path", url)
    assert code == EXIT_STEP_FAILED, err
    assert f"{url}vcdb.txt: gave up after 1 s" in err and "too slow" in err


def test_the_deadline_is_the_sites_downloads_setting(tmp_path: Path) -> None:
    """``[downloads] deadline`` (seconds) replaces the 120 s default for the site's commands."""
    site = write_hosts_site(tmp_path, [Host("h1", 2)], extra="\n[downloads]\ndeadline = 1\n")
    drip = type("Drip", (_Drip,), {"answer": b"HTTP/1.1 200 OK\r\n\r\ncalit2,x/vc-in.xml\n"})
    with _serve(drip) as url:
        code, _, err = cli("list", "repository", "--base_path", url, "--site", str(site))
    assert code == EXIT_STEP_FAILED, err
    assert f"{url}vcdb.txt: gave up after 1 s" in err


def test_a_vcdb_cut_short_is_refused(tmp_path: Path) -> None:
    """A server announcing 1000 bytes and closing after 30: the VCs past byte 30 vanished."""
    vcdb = b"calit2,calit2/vc-in.xml\ntiny,tiny/vc-in.xml\n"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + vcdb[:30]
    with serve_raw(answer) as url:
        code, _, err = cli("list", "repository", "--base_path", url)
    assert code == EXIT_STEP_FAILED, err
    assert f"{url}vcdb.txt: cut short: 30 bytes received of the 1000" in err


def test_an_image_dripping_in_is_stopped_and_asked_again_then_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's body: under ``[downloads] min_rate`` over ``rate_window`` it is cut and
    counted as a failure, not forgiven by the bytes it brought (each attempt brought some)."""
    client = HttpClient(timeout=5, limits=DownloadLimits(rate_window=0.5))
    data = b"x" * 40
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
    drip = type("Drip", (_Drip,), {"head": head, "answer": data})
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "cache" / digest / "slow.img"
    with (
        _serve(drip) as url,
        pytest.raises(RepositoryError, match="fewer than 1024 a second") as caught,
    ):
        assemble(
            [Piece("slow.img", url=f"{url}slow.img", expected=digest)],
            dest,
            expected=digest,
            where="S:1",
            client=client,
            retries=1,
            backoff=0,
        )
    assert "the download stopped at byte" in caught.value.message
    assert not dest.exists()


def test_a_body_without_announced_size_is_capped_and_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Content-Length anywhere: the endless body went on into the cache's partial file."""
    client = HttpClient(timeout=5, limits=DownloadLimits(unsized_limit=ANNOUNCED))

    class Unannounced(_Endless):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

    dest = tmp_path / "cache" / ("0" * 64) / "big.img"
    with (
        _serve(Unannounced) as url,
        pytest.raises(RepositoryError, match="no size announced") as caught,
    ):
        assemble(
            [Piece("big.img", url=f"{url}big.img")],
            dest,
            expected="0" * 64,
            where="S:1",
            client=client,
        )
    assert "not kept" in caught.value.message
    assert not dest.exists() and not partial_path(dest).exists()


@pytest.mark.parametrize(
    "parts", [(".00", ".01", ".001"), (".000", ".001", ".01")], ids=["00-01-001", "000-001-01"]
)
def test_a_split_image_numbered_both_ways_is_refused(tmp_path: Path, parts: tuple[str]) -> None:
    """``.01`` beside ``.001``: refused or joined with a part dropped, by listing order."""
    repo = demo_copy(tmp_path / "www")
    name = "calit2/big.img.gz"
    for suffix in parts:
        (repo / f"{name}{suffix}").write_bytes(suffix.encode())
    sums = (repo / "SHA256SUMS").read_text(encoding="utf-8")
    listed = "".join(
        f"{hashlib.sha256(s.encode()).hexdigest()}  {name}{s}\n" for s in reversed(parts)
    )
    (repo / "SHA256SUMS").write_text(sums + listed, encoding="utf-8")
    with serve(repo) as web:
        loaded = load_http_repository(web.url, tmp_path / "cache")
        with pytest.raises(RepositoryError, match=r"split parts mix numberings .*\.01 and"):
            remote_parts(loaded, name, HttpClient(timeout=5))
        (repo / "SHA256SUMS").write_text(sums, encoding="utf-8")  # not listed: found by asking
        loaded = load_http_repository(web.url, tmp_path / "cache")
        with pytest.raises(RepositoryError, match="split parts mix numberings"):
            remote_parts(loaded, name, HttpClient(timeout=5))
