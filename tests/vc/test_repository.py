"""The repository: vcdb.txt parsing, unknown names, path escapes, the bundled demo."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pragmash.errors import RepositoryError
from pragmash.vc.repository.vcdb import Repository, demo_repository_path, load_repository


def make_repo(tmp_path: Path, vcdb: str, files: tuple[str, ...] = ()) -> Path:
    base = tmp_path / "repo"
    base.mkdir()
    (base / "vcdb.txt").write_text(vcdb, encoding="utf-8")
    for name in files:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<vc/>", encoding="utf-8")
    return base


def test_entries_comments_and_blank_lines(tmp_path: Path) -> None:
    base = make_repo(
        tmp_path,
        "# our VCs\n\ncalit2,calit2/vc-in.xml\n  tiny , small/tiny.xml  \n",
        ("calit2/vc-in.xml", "small/tiny.xml"),
    )
    repo = load_repository(base)
    assert isinstance(repo, Repository)
    assert repo.base_path == base
    assert repo.entries == {
        "calit2": base / "calit2" / "vc-in.xml",
        "tiny": base / "small" / "tiny.xml",
    }
    assert repo.vc_in_path("calit2") == base / "calit2" / "vc-in.xml"
    assert repo.vc_in_path("tiny").read_text(encoding="utf-8") == "<vc/>"


def test_relative_base_path_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repo(tmp_path, "a,a.xml\n", ("a.xml",))
    monkeypatch.chdir(tmp_path)
    repo = load_repository(Path("repo"))
    assert repo.base_path.is_absolute()
    assert repo.vc_in_path("a") == tmp_path / "repo" / "a.xml"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("calit2", "expected 'name,relative/path/vc-in.xml'"),
        ("calit2,", "expected 'name,relative/path/vc-in.xml'"),
        (",calit2/vc-in.xml", "expected 'name,relative/path/vc-in.xml'"),
        ("bad name,x.xml", "is not a VC name"),
        ("-dash,x.xml", "is not a VC name"),
        ("a" * 64 + ",x.xml", "is not a VC name"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, words: str) -> None:
    base = make_repo(tmp_path, f"# header\nok,ok.xml\n{line}\n", ("ok.xml",))
    with pytest.raises(RepositoryError) as info:
        load_repository(base)
    assert f"{base / 'vcdb.txt'}:3:" in info.value.message
    assert words in info.value.message


def test_duplicate_name_is_refused(tmp_path: Path) -> None:
    base = make_repo(tmp_path, "a,a.xml\na,b.xml\n", ("a.xml", "b.xml"))
    with pytest.raises(RepositoryError, match=r"vcdb.txt:2: 'a' is already defined on line 1"):
        load_repository(base)


def test_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    base = make_repo(tmp_path, "zeta,z.xml\nalpha,a.xml\n", ("z.xml", "a.xml"))
    repo = load_repository(base)
    with pytest.raises(RepositoryError) as info:
        repo.vc_in_path("calit3")
    assert "no VC named 'calit3'" in info.value.message
    assert "known VCs: alpha, zeta" in info.value.message


def test_unknown_name_in_empty_repository(tmp_path: Path) -> None:
    repo = load_repository(make_repo(tmp_path, "# nothing yet\n"))
    assert repo.entries == {}
    with pytest.raises(RepositoryError, match="known VCs: none"):
        repo.vc_in_path("calit2")


@pytest.mark.parametrize("vcname", ["../calit2", "", "a b", "x" * 64, "calit2/vc"])
def test_vcname_is_validated(tmp_path: Path, vcname: str) -> None:
    repo = load_repository(make_repo(tmp_path, "calit2,c.xml\n", ("c.xml",)))
    with pytest.raises(RepositoryError, match="is not a VC name"):
        repo.vc_in_path(vcname)


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside/vc-in.xml", "a/../../x.xml"])
def test_path_escaping_the_repository_is_refused(tmp_path: Path, target: str) -> None:
    base = make_repo(tmp_path, f"evil,{target}\n")
    with pytest.raises(RepositoryError) as info:
        load_repository(base)
    assert "vcdb.txt:1:" in info.value.message
    assert "leaves the repository" in info.value.message


def test_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "vc-in.xml").write_text("<vc/>", encoding="utf-8")
    base = make_repo(tmp_path, "evil,link/vc-in.xml\n")
    (base / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RepositoryError, match=r"vcdb.txt:1: .*outside the repository"):
        load_repository(base)


def test_symlink_inside_the_repository_is_fine(tmp_path: Path) -> None:
    base = make_repo(tmp_path, "a,alias/vc-in.xml\n", ("real/vc-in.xml",))
    (base / "alias").symlink_to(base / "real", target_is_directory=True)
    assert load_repository(base).vc_in_path("a") == base / "alias" / "vc-in.xml"


def test_missing_vc_in_names_the_vcdb_line(tmp_path: Path) -> None:
    base = make_repo(tmp_path, "ok,ok.xml\n\ngone,gone/vc-in.xml\n", ("ok.xml",))
    repo = load_repository(base)  # one stale entry does not break the others
    assert repo.vc_in_path("ok").is_file()
    with pytest.raises(RepositoryError, match=r"vcdb.txt:3: the vc-in.xml of 'gone' does not"):
        repo.vc_in_path("gone")


def test_missing_base_path(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="repository folder does not exist"):
        load_repository(tmp_path / "nowhere")


def test_base_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(RepositoryError, match="is not a folder"):
        load_repository(tmp_path / "file")


def test_missing_vcdb(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError) as info:
        load_repository(tmp_path)
    assert str(tmp_path / "vcdb.txt") in info.value.message
    assert "missing" in info.value.message


def test_bundled_demo_repository() -> None:
    repo = load_repository(None)
    assert repo.base_path == demo_repository_path()
    assert set(repo.entries) == {"calit2", "tiny"}
    calit2 = repo.vc_in_path("calit2")
    assert calit2.name == "vc-in.xml"
    images = sorted(p.name for p in calit2.parent.glob("*.img.gz"))
    assert images == ["calit2-compute.img.gz", "calit2-frontend.img.gz"]
    for image in calit2.parent.glob("*.img.gz"):
        assert image.stat().st_size < 64 * 1024  # the demo stays small
        with gzip.open(image) as raw:
            data = raw.read()
        assert len(data) == 1024 * 1024
