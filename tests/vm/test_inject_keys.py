"""--key reaches root's authorized_keys in a real image (libguestfs; tier 'vm').

One guestfish session reads the file, then writes it merged: the keys already
there stay, ours is added once however often pre_boot runs (a retried boot).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support.keys import KEY, OTHER
from support.vmimage import TestImage, build_test_image

from pragmash.images.inject import AUTHORIZED_KEYS, inject_files
from pragmash.images.staging import stage_image
from pragmash.images.tools import guestfs_env

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def test_image(tmp_path_factory: pytest.TempPathFactory) -> TestImage:
    return build_test_image(tmp_path_factory.mktemp("img"))


@pytest.fixture(autouse=True)
def guestfs_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("guestfish") is None:
        pytest.skip("guestfish is not installed")
    for key, value in guestfs_env(False).items():
        monkeypatch.setenv(key, value)


def test_keys_are_merged_into_root_authorized_keys(tmp_path: Path, test_image: TestImage) -> None:
    disk = stage_image(test_image.disk_gz, tmp_path / "vc", "fe", cache_dir=tmp_path / "c")
    # the image already authorizes another key, with options
    inject_files(disk, {AUTHORIZED_KEYS: f'from="10.0.0.0/8" {OTHER}\n'.encode()}, timeout=300)
    log = tmp_path / "inject.log"
    for _ in range(2):  # pre_boot again, as a retried boot does
        inject_files(
            disk,
            {"/root/vc-out.xml": b"<vc/>\n"},
            authorized_keys=[KEY],
            timeout=300,
            log_path=log,
        )
    argv = ["guestfish", "--ro", "--format=qcow2", "-a", str(disk), "-m", "/dev/sda1", "--"]
    argv += ["cat", AUTHORIZED_KEYS, ":", "stat", AUTHORIZED_KEYS, ":", "stat", "/root/.ssh"]
    argv += [":", "cat", "/root/vc-out.xml"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    assert lines[:2] == [f'from="10.0.0.0/8" {OTHER}', KEY]
    assert out.count(KEY) == 1
    modes = [int(line.split(":")[1]) & 0o777 for line in lines if line.startswith("mode:")]
    assert modes == [0o600, 0o700]
    assert "<vc/>" in out  # the other files went in with the same session
    assert "> upload" in log.read_text()
