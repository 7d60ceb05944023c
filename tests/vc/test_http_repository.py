"""Web repositories: a loopback http server serves a repository; images are checked first.

The server is http.server on 127.0.0.1 (port 0) in a thread, started by each test
(tests/support/httprepo.py). Runs go through the real CLI on the embedded demo site
(test:///default), so "nothing allocated" is read back from the real ledger.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli
from support.httprepo import demo_copy, serve, split, write_sums

from pragmash.errors import EXIT_OK, EXIT_STEP_FAILED, EXIT_USER, RepositoryError
from pragmash.images import fetch
from pragmash.images.fetch import PARTIAL_FOLDER, Piece, assemble, partial_path
from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site
from pragmash.vc.repository.http import HttpClient

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
FRONTEND = "calit2/calit2-frontend.img.gz"
COMPUTE = "calit2/calit2-compute.img.gz"

pytestmark = pytest.mark.libvirt


@pytest.fixture(autouse=True)
def _demo_engine(testconn: libvirt.virConnect) -> Iterator[None]:
    yield


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "BACKOFF", 0.0)


def image_cache() -> Path:
    return load_site(None, os.environ).image_cache


def fetched_files() -> list[Path]:
    root = image_cache() / "fetched"
    return sorted(p for p in root.rglob("*") if p.is_file() and PARTIAL_FOLDER not in p.parts)


def nothing_allocated() -> bool:
    ledger = Ledger(load_site(None, os.environ))
    return current_allocation(ledger, "calit2") is None and last_run(ledger, "calit2") is None


def big_gzip(path: Path, size: int = 3 * 1024 * 1024) -> bytes:
    """Replace an image by a larger one (random, so gzip cannot shrink it)."""
    data = gzip.compress(os.urandom(size), compresslevel=1)
    path.write_bytes(data)
    return data


# -- a good repository ------------------------------------------------------------------


def test_a_run_from_a_web_repository_fetches_and_verifies_every_image(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        code, out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        log = web.behaviour
    assert code == EXIT_OK, err
    assert f"{FRONTEND}: fetched and verified" in out
    assert f"{COMPUTE}: fetched and verified" in out
    assert "calit2: finished" in out
    # vcdb.txt, SHA256SUMS and the vc-in.xml came from the server, each image once
    for path in ("/vcdb.txt", "/SHA256SUMS", "/calit2/vc-in.xml", f"/{FRONTEND}", f"/{COMPUTE}"):
        assert len(log.gets(path)) == 1, (path, log.log)
    cached = {p.name: p.read_bytes() for p in fetched_files()}
    assert cached["calit2-frontend.img.gz"] == (repo / FRONTEND).read_bytes()
    partial = image_cache() / "fetched" / PARTIAL_FOLDER
    assert not [p for p in partial.rglob("*") if p.is_file() and p.suffix != ".lock"]
    # the run knows the repository by its URL
    ledger = Ledger(load_site(None, os.environ))
    assert current_allocation(ledger, "calit2") is not None


def test_a_vc_from_a_web_repository_can_be_scaled_and_knows_its_url(tmp_path: Path) -> None:
    """The run's options keep the URL as typed (it was once made a path under the current
    folder, ``…/http:/127.0.0.1:PORT``, so ``scale`` and ``resume`` looked for a folder)."""
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        assert cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)[0] == EXIT_OK
        record = last_run(Ledger(load_site(None, os.environ)), "calit2")
        assert record is not None and record.options["base_path"] == web.url
        code, out, err = cli("scale", "calit2", "+1")
        assert code == EXIT_OK, err
        assert "vc-out.xml rewritten: 3 computes" in out


def test_a_second_run_uses_the_cache_and_fetches_no_image_again(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        assert cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)[0] == EXIT_OK
        assert cli("clean", "calit2")[0] == EXIT_OK
        code, out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        assert code == EXIT_OK, err
        assert f"{FRONTEND}: already in the cache" in out
        assert len(web.behaviour.gets(f"/{FRONTEND}")) == 1
        assert len(web.behaviour.gets("/calit2/vc-in.xml")) == 2  # always read fresh


def test_list_repository_over_http(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        code, out, err = cli("list", "repository", "--base_path", web.url)
        assert code == EXIT_OK, err
        assert f"repository {web.url}:" in out
        assert re.search(rf"calit2\s+{re.escape(web.url)}calit2/vc-in.xml", out), out
        code, out, _ = cli("list", "repository", "--base_path", web.url, "--json")
    rows = json.loads(out)
    assert {r["vcname"]: r["vc_in"] for r in rows} == {
        "calit2": f"{web.url}calit2/vc-in.xml",
        "tiny": f"{web.url}tiny/vc-in.xml",
    }


def test_the_site_config_can_name_a_web_repository(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    site = tmp_path / "site.toml"
    base = (ROOT / "tests" / "data" / "sites" / "small.toml").read_text(encoding="utf-8")
    with serve(repo) as web:
        site.write_text(base.replace('"repo"', f'"{web.url}"'), encoding="utf-8")
        code, out, err = cli("list", "repository", "--site", str(site))
    assert code == EXIT_OK, err
    assert f"repository {web.url}:" in out


def test_a_bad_repository_url_in_the_site_config_is_named_by_its_key(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    base = (ROOT / "tests" / "data" / "sites" / "small.toml").read_text(encoding="utf-8")
    site.write_text(base.replace('"repo"', '"http:///no-host"'), encoding="utf-8")
    code, _, err = cli("list", "repository", "--site", str(site))
    assert code == EXIT_USER
    assert f"{site}: [paths] repository:" in err
    assert "expected http://HOST/PATH/" in err


# -- refused: nothing is allocated ----------------------------------------------------------


def test_a_corrupted_image_is_refused_and_nothing_is_allocated(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    listed = hashlib.sha256((repo / COMPUTE).read_bytes()).hexdigest()
    data = bytearray((repo / COMPUTE).read_bytes())
    data[100] ^= 0xFF
    (repo / COMPUTE).write_bytes(bytes(data))
    got = hashlib.sha256(bytes(data)).hexdigest()
    with serve(repo) as web:
        code, out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
    assert code == EXIT_USER
    assert f"error: {web.url}{COMPUTE}: SHA256 mismatch" in err  # the file, by its URL
    assert listed in err and got in err  # both digests
    assert f"{web.url}SHA256SUMS:" in err  # the listing's line
    assert "allocate" not in out
    assert nothing_allocated()
    assert not [p for p in fetched_files() if "calit2-compute" in p.name]  # nothing kept


def test_an_image_not_listed_in_sha256sums_is_never_fetched(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    write_sums(repo, [FRONTEND])
    with serve(repo) as web:
        code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        assert web.behaviour.gets(f"/{COMPUTE}") == []
    assert code == EXIT_USER
    assert f"{web.url}{COMPUTE}: not listed in {web.url}SHA256SUMS" in err
    assert nothing_allocated()


def test_a_web_repository_without_sha256sums_is_refused(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    (repo / "SHA256SUMS").unlink()
    with serve(repo) as web:
        code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        assert web.behaviour.gets(f"/{FRONTEND}") == []
    assert code == EXIT_USER
    assert f"{web.url}SHA256SUMS: not found (404): a web repository must publish SHA256SUMS" in err
    assert nothing_allocated()


def test_a_bad_sha256sums_line_is_named(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    with (repo / "SHA256SUMS").open("a", encoding="utf-8") as sums:
        sums.write("not-a-digest  calit2/x.img\n")
    with serve(repo) as web:
        code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
    assert code == EXIT_USER
    assert f"{web.url}SHA256SUMS:4: 'not-a-digest  calit2/x.img' is not a SHA256SUMS line" in err


def test_a_vc_in_error_names_its_url(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    vcin = repo / "calit2" / "vc-in.xml"
    vcin.write_text(vcin.read_text(encoding="utf-8").replace("<vcpu", "<vcpux", 1), "utf-8")
    with serve(repo) as web:
        code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
    assert code == EXIT_USER
    assert f"error: {web.url}calit2/vc-in.xml:" in err
    assert nothing_allocated()


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with serve(tmp_path) as web:
        url = web.url
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", url)
    assert code == EXIT_STEP_FAILED  # the world failed, not the user's input
    assert f"{url}vcdb.txt: cannot connect:" in err
    assert "Traceback" not in err


def test_a_server_that_accepts_and_never_answers_is_a_timeout_exit_3() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/vcdb.txt"
        with pytest.raises(RepositoryError, match="TimeoutError") as caught:
            HttpClient(timeout=0.3).get(url)  # the connection is queued, never served
    assert caught.value.exit_code == EXIT_STEP_FAILED


# -- split images ---------------------------------------------------------------------------


@pytest.mark.parametrize("listing", ["whole", "parts"])
def test_split_images_are_joined_in_order_and_checked(tmp_path: Path, listing: str) -> None:
    repo = demo_copy(tmp_path / "www")
    whole = big_gzip(repo / FRONTEND, 200_000)
    write_sums(repo, [FRONTEND, COMPUTE])
    parts = split(repo / FRONTEND, 3)
    if listing == "parts":
        write_sums(repo, [COMPUTE, *(p.relative_to(repo).as_posix() for p in parts)])
    with serve(repo) as web:
        code, _out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        asked = [r.path for r in web.behaviour.log if r.method == "GET" and ".img.gz." in r.path]
    assert code == EXIT_OK, err
    assert asked == [f"/{FRONTEND}.00", f"/{FRONTEND}.01", f"/{FRONTEND}.02"]
    joined = [p for p in fetched_files() if p.name == "calit2-frontend.img.gz"]
    assert len(joined) == 1 and joined[0].read_bytes() == whole


def test_a_corrupted_part_is_refused(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    parts = split(repo / FRONTEND, 2, width=3)
    write_sums(repo, [COMPUTE, *(p.relative_to(repo).as_posix() for p in parts)])
    damaged = bytearray(parts[1].read_bytes())
    damaged[10] ^= 0xFF
    parts[1].write_bytes(bytes(damaged))
    with serve(repo) as web:
        code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
    assert code == EXIT_USER
    assert f"{FRONTEND}.001: SHA256 mismatch" in err
    assert nothing_allocated()
    assert not [p for p in fetched_files() if "calit2-frontend" in p.name]


def test_local_split_images_are_joined_and_checked_when_listed(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "repo")
    whole = (repo / FRONTEND).read_bytes()
    split(repo / FRONTEND, 2)
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", str(repo))
    assert code == EXIT_OK, err
    assert f"{FRONTEND}: joined from its parts and verified" in out
    assert f"{COMPUTE}: verified against SHA256SUMS" in out
    assert [p.read_bytes() for p in fetched_files()] == [whole]


def test_a_local_image_that_does_not_match_sha256sums_is_refused(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "repo")
    (repo / COMPUTE).write_bytes(b"not the image")
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", str(repo))
    assert code == EXIT_USER
    assert f"{repo / COMPUTE}: SHA256 mismatch: {repo / 'SHA256SUMS'}:" in err
    assert nothing_allocated()


def test_a_missing_local_image_is_named_before_anything_is_allocated(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "repo")
    (repo / COMPUTE).unlink()
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", str(repo))
    assert code == EXIT_USER
    assert f"the disk image {repo / COMPUTE} does not exist" in err
    assert nothing_allocated()


# -- sync -----------------------------------------------------------------------------------


def test_sync_fills_the_cache_and_a_later_run_fetches_nothing(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path / "www")
    with serve(repo) as web:
        code, out, err = cli("sync", web.url)
        assert code == EXIT_OK, err
        assert "calit2: calit2/calit2-frontend.img.gz: fetched and verified" in err
        assert "tiny: tiny/tiny-frontend.img.gz: fetched and verified" in err
        assert f"{web.url}: 2 VC(s), 3 image(s): 3 fetched" in out
        names = sorted(p.name for p in fetched_files())
        assert names == ["calit2-compute.img.gz", "calit2-frontend.img.gz", "tiny-frontend.img.gz"]
        images_before = [r for r in web.behaviour.log if r.path.endswith(".img.gz")]
        code, out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        assert code == EXIT_OK, err
        assert [r for r in web.behaviour.log if r.path.endswith(".img.gz")] == images_before
        code, out, _ = cli("sync", web.url, "--json")
    report = json.loads(out)
    assert {i["how"] for i in report["images"]} == {"cached"}


# -- interrupted downloads --------------------------------------------------------------------


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path: Path) -> None:
    repo = tmp_path / "www"
    repo.mkdir()
    data = os.urandom(2_500_000)
    (repo / "big.img").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "cache" / digest / "big.img"
    seen: list[tuple[float, float | None]] = []
    with serve(repo) as web:
        web.behaviour.drop("/big.img", after=1_000_000)
        piece = Piece("big.img", url=f"{web.url}big.img", expected=digest)
        with pytest.raises(RepositoryError, match=r"stopped at byte 1000000 of 2500000"):
            assemble([piece], dest, expected=digest, where="SHA256SUMS:1", retries=0)
        partial = partial_path(dest)
        assert partial.stat().st_size == 1_000_000  # kept, not trusted
        assert not dest.exists()
        path, new = assemble(
            [piece],
            dest,
            expected=digest,
            where="SHA256SUMS:1",
            progress=lambda done, total, label: seen.append((done, total)),
        )
        gets = web.behaviour.gets("/big.img")
    assert new and path.read_bytes() == data
    assert [(r.start, r.sent) for r in gets] == [(0, 1_000_000), (1_000_000, 1_500_000)]
    assert seen[-1] == (2_500_000, 2_500_000)  # progress up to the whole size
    assert not partial.exists()


def test_a_dropped_connection_is_resumed_within_the_run(tmp_path: Path, no_backoff: None) -> None:
    repo = demo_copy(tmp_path / "www")
    data = big_gzip(repo / FRONTEND, 2_000_000)
    write_sums(repo)
    with serve(repo) as web:
        web.behaviour.drop(f"/{FRONTEND}", after=700_000, times=2)
        code, _out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        gets = web.behaviour.gets(f"/{FRONTEND}")
    assert code == EXIT_OK, err
    assert [r.start for r in gets] == [0, 700_000, 700_000]
    assert sum(r.sent for r in gets) == len(data)  # no byte fetched twice
    assert (
        next(p for p in fetched_files() if p.name == "calit2-frontend.img.gz").read_bytes() == data
    )


def test_a_run_stopped_mid_download_continues_in_the_next_run(
    tmp_path: Path, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = demo_copy(tmp_path / "www")
    data = big_gzip(repo / FRONTEND, 2_000_000)
    write_sums(repo)
    monkeypatch.setattr(fetch, "RETRIES", 1)
    with serve(repo) as web:
        web.behaviour.drop(f"/{FRONTEND}", after=900_000, times=2)
        code, _out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        assert code == EXIT_STEP_FAILED
        assert "the download stopped at byte 900000" in err
        assert "run the same command again: it continues from there" in err
        assert nothing_allocated()
        code, _out, err = cli(ROCKS6, "--vcname", "calit2", "--base_path", web.url)
        gets = web.behaviour.gets(f"/{FRONTEND}")
    assert code == EXIT_OK, err
    assert [r.start for r in gets] == [0, 900_000, 900_000]
    assert sum(r.sent for r in gets) == len(data)


def test_a_server_that_ignores_range_still_gives_a_correct_image(
    tmp_path: Path, no_backoff: None
) -> None:
    repo = tmp_path / "www"
    repo.mkdir()
    data = os.urandom(1_500_000)
    (repo / "big.img").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "cache" / digest / "big.img"
    with serve(repo) as web:
        web.behaviour.ignore_range = True
        web.behaviour.drop("/big.img", after=600_000)
        piece = Piece("big.img", url=f"{web.url}big.img", expected=digest)
        path, _ = assemble([piece], dest, expected=digest, where="SHA256SUMS:1", retries=1)
    assert path.read_bytes() == data


def test_http_client_refuses_a_redirect_off_http(tmp_path: Path) -> None:
    (tmp_path / "vcdb.txt").write_text("calit2,calit2/vc-in.xml\n", encoding="utf-8")
    with serve(tmp_path) as web:
        client = HttpClient(timeout=5)
        assert client.get(f"{web.url}absent") is None  # 404 is "absent", not an error
        assert client.size(f"{web.url}absent") is None
        assert client.get(f"{web.url}vcdb.txt") == b"calit2,calit2/vc-in.xml\n"
        web.behaviour.redirects["/moved/vcdb.txt"] = "ftp://127.0.0.1/vcdb.txt"
        with pytest.raises(
            RepositoryError, match=re.escape("redirected to ftp://127.0.0.1/vcdb.txt")
        ):
            client.get(f"{web.url}moved/vcdb.txt")
        web.behaviour.redirects["/elsewhere/vcdb.txt"] = f"{web.url}vcdb.txt"
        assert client.get(f"{web.url}elsewhere/vcdb.txt") == b"calit2,calit2/vc-in.xml\n"
