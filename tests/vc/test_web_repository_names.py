"""An error about a web repository's vc-in.xml names its URL, never pragmash's local copy.

The copy (``CACHE/repositories/KEY/…``) is how the rest of pragmash reads a web
repository as a folder; the user never wrote that path and cannot fix anything there.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import libvirt
import pytest
from support.httprepo import demo_copy, serve, write_sums

from pragmash.errors import EXIT_USER
from pragmash.ui.cli.main import main

ROCKS6 = str(Path(__file__).resolve().parents[2] / "recipes" / "rocks6.prg")

pytestmark = pytest.mark.libvirt


def _check(url: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", ROCKS6, "--vcname", "calit2", "--base_path", url], out=out, err=err)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda xml: xml.replace("rocks6_client", "rocky9", 1),
            "calit2/vc-in.xml: /vc/driver: unknown distro driver 'rocky9'",
        ),
        (
            lambda xml: re.sub(r"<compute>.*</compute>", "", xml, flags=re.DOTALL),
            "but {url}calit2/vc-in.xml has no <compute> node template",
        ),
    ],
)
def test_the_url_is_named(
    tmp_path: Path, testconn: libvirt.virConnect, change: object, said: str
) -> None:
    repo = demo_copy(tmp_path / "www")
    vc_in = repo / "calit2" / "vc-in.xml"
    assert callable(change)
    vc_in.write_text(change(vc_in.read_text()))
    write_sums(repo)
    with serve(repo) as web:
        code, err = _check(web.url)
    assert code == EXIT_USER
    assert said.format(url=web.url) in err, err
    assert "repositories/" not in err
