"""The access tests' VC: booted on test:///default with addresses an sshd of ours answers on.

The site's public pool holds 127.0.0.1 (the frontend's address) and the vc-in's
private network is 127.1.1.0/16 (computes at 127.1.1.254, .253): all loopback, so one
:class:`~support.loopsshd.LoopbackSshd` listening on the three plays every node, and a
compute is reached through the frontend as on a real site. The VC is given the sshd's
client key with ``--key FILE.pub``.
"""

from __future__ import annotations

from pathlib import Path

from support.loopsshd import LoopbackSshd
from support.runenv import BOOT_ALL, RunEnv, make_env

FRONTEND, COMPUTES = "127.0.0.1", ["127.1.1.254", "127.1.1.253"]


def loopback_sshd() -> LoopbackSshd:
    """An sshd (not yet started) on the VC's three addresses."""
    return LoopbackSshd([FRONTEND, *COMPUTES])


def boot_loopback_vc(folder: Path, sshd: LoopbackSshd) -> RunEnv:
    """A site in ``folder`` whose VC ``calit2`` (1+2) is booted on loopback addresses."""
    env = make_env(folder)
    site = env.site_path.read_text().replace("192.0.2.10", FRONTEND)
    site = site.replace('192.0.2.1"', '127.0.0.254"').replace("192.0.2.11", "127.0.0.2")
    env.site_path.write_text(site)
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("<ipaddress>10.1.1.1<", "<ipaddress>127.1.1.1<"))
    run = env.cli(
        str(env.recipe(BOOT_ALL)), "--vcname", "calit2", "--key", f"{sshd.client_key}.pub"
    )
    assert run.rc == 0, run.err
    return env
