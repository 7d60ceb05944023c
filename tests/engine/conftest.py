"""Fixtures the engine tests share: the access tests' sshd on loopback and the VC it serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from support.loopsshd import LoopbackSshd, missing
from support.runenv import RunEnv
from support.sshvc import boot_loopback_vc, loopback_sshd


@pytest.fixture
def sshd() -> Iterator[LoopbackSshd]:
    """An sshd of ours on the loopback VC's addresses (skipped where one cannot run)."""
    why = missing()
    if why:
        pytest.skip(why)
    with loopback_sshd() as daemon:
        yield daemon


@pytest.fixture
def ssh_env(tmp_path: Path, sshd: LoopbackSshd, testconn: libvirt.virConnect) -> RunEnv:
    """VC ``calit2`` booted on test:///default at the addresses ``sshd`` answers on."""
    return boot_loopback_vc(tmp_path / "site", sshd)
