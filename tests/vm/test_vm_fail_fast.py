"""Tier 3: a guest that powers itself off fails its `wait … up` at once, on real QEMU.

The busybox guest here prints a line and powers off a moment after boot, like a
misconfigured image. The recipe waits for it with a five-minute timeout; the step
must fail because the node is shut off (the reason libvirt gives, and its console
tail), not because the timeout ran out. Checked by what the step says, never by
how long it took.
"""

from __future__ import annotations

import io
from pathlib import Path

import libvirt
import pytest
from support.vmimage import build_test_image
from support.vmsite import remove_vmtest_domains, write_repository, write_site

from pragmash.errors import EXIT_STEP_FAILED
from pragmash.ui.cli.main import main

pytestmark = pytest.mark.vm

POWER_OFF_INIT = """#!/bin/sh
export PATH=/bin:/sbin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
out=/dev/ttyS0
[ -c "$out" ] || out=/dev/console
echo "misconfigured image: giving up" > "$out"
poweroff -f
"""

RECIPE = """\
set frontend_only = 0
allocate $frontend_only
boot frontend
wait frontend up timeout 5m
echo "never reached"
"""


def test_a_guest_that_powers_off_fails_wait_up_with_shut_off_not_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image", init_script=POWER_OFF_INIT)
    repo = write_repository(tmp_path, image)
    site = write_site(tmp_path, repo)
    recipe = tmp_path / "off.prg"
    recipe.write_text(RECIPE)
    out, err = io.StringIO(), io.StringIO()
    conn = libvirt.open("qemu:///system")
    try:
        code = main([str(recipe), "--vcname", "vmtest", "--site", str(site)], out=out, err=err)
        text = out.getvalue() + err.getvalue()
        assert code == EXIT_STEP_FAILED, text
        failed = [line for line in text.splitlines() if line.startswith("FAIL")]
        assert len(failed) == 1 and "wait frontend up timeout 5m" in failed[0], text
        assert (
            "vmtest-frontend is shut off (the guest shut down (powered itself off)) "
            "while waiting for it to be up" in text
        ), text
        assert "timed out" not in text
        assert "misconfigured image: giving up" in text  # its console tail
        assert "never reached" not in text
        assert main(["clean", "vmtest", "--site", str(site)], out=out, err=err) == 0
    finally:
        remove_vmtest_domains(conn)
        conn.close()
