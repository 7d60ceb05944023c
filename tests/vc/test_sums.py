"""SHA256SUMS as sha256sum writes it: text and binary markers, ./ prefixes, bad lines."""

from __future__ import annotations

import pytest

from pragmash.errors import RepositoryError
from pragmash.vc.formats.sums import parse_sums

A = "a" * 64
B = "B" * 64


def test_text_and_binary_lines_comments_and_prefixes() -> None:
    sums = parse_sums(f"# made by sha256sum\n\n{A}  calit2/fe.img.gz\n{B} *./calit2/c.img\n", "S")
    assert sums.digest("calit2/fe.img.gz") == A
    assert sums.digest("./calit2/c.img") == B.lower()
    assert sums.where("calit2/c.img") == "S:4"
    assert sums.digest("calit2/absent.img") is None
    assert sums.names_under("calit2/") == ["calit2/c.img", "calit2/fe.img.gz"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("abc  x.img", "S:2: 'abc  x.img' is not a SHA256SUMS line"),
        (f"{A}x.img", "is not a SHA256SUMS line"),
        (f"{A}  ../x.img", "S:2: '../x.img' leaves the repository"),
        (f"{A}  /etc/passwd", "leaves the repository"),
        (f"{B}  one.img", "S:2: 'one.img' is listed again with another digest (first on line 1)"),
    ],
)
def test_bad_lines_are_named(line: str, words: str) -> None:
    with pytest.raises(RepositoryError) as info:
        parse_sums(f"{A}  one.img\n{line}\n", "S")
    assert words in info.value.message
