"""Reaching a node over ssh where its guest agent does not answer, against a real sshd.

The VC is test_access's (support/sshvc.py): booted on test:///default (whose domains have no guest agent:
libvirt's test driver answers no agent command) with loopback addresses one sshd of
ours listens on. So :class:`~pragmash.engine.guests.inside.GuestReach` finds no agent and
goes the way ``pragmash ssh`` goes: the VC's key, a compute through the frontend.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.loopsshd import LoopbackSshd
from support.runenv import RunEnv
from support.sshvc import COMPUTES

from pragmash.engine.commands.access import vc_access
from pragmash.engine.guests.agent import Clock
from pragmash.engine.guests.inside import GuestReach
from pragmash.engine.run.registry import load_engine

pytestmark = pytest.mark.libvirt


@pytest.fixture
def reach(ssh_env: RunEnv, sshd: LoopbackSshd, monkeypatch: pytest.MonkeyPatch) -> GuestReach:
    monkeypatch.setenv("HOME", str(ssh_env.root))  # nothing from root's own ~/.ssh
    site = ssh_env.site()
    return GuestReach(
        load_engine(site),
        lambda: vc_access(site, "calit2", port=sshd.port),
        Clock(time.sleep, time.monotonic),
    )


def test_a_command_goes_over_ssh_as_the_words_it_was(reach: GuestReach) -> None:
    argv = ["sh", "-c", 'echo $SSH_CONNECTION; printf "%s\\n" "$@"', "sh", "a;b $HOME", "'q'"]
    run, via = reach.exec("calit2-compute-1", argv, 60)
    assert via == "ssh" and run.exit_code == 0, run.output
    connection, *args = run.stdout.splitlines()
    assert connection.split()[2] == COMPUTES[1]  # reached at its own address, through the frontend
    assert args == ["a;b $HOME", "'q'"]  # nothing expanded, split or run by a shell
    failed, _ = reach.exec("calit2-frontend", ["sh", "-c", "exit 7"], 60)
    assert failed.exit_code == 7


def test_a_file_goes_in_over_ssh(reach: GuestReach, tmp_path: Path) -> None:
    target = tmp_path / "vc out.xml"
    said = reach.write_file("calit2-compute-0", str(target), b"<vc/>\n")
    assert said == f"{target} written over ssh"
    assert target.read_bytes() == b"<vc/>\n"
    assert not Path(f"{target}.pragmash-new").exists()
