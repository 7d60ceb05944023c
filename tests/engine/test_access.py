"""``pragmash ssh``, ``ssh-config`` and ``inventory`` against a real sshd on loopback.

The VC is booted on test:///default with addresses that are this machine's own
loopback ones: the site's public pool holds 127.0.0.1 (the frontend's address) and
the vc-in's private network is 127.1.1.0/16 (computes at 127.1.1.254, .253). One
sshd of ours listens on all three, so each "node" answers ssh at the address
pragmash says it has; a compute is reached through the frontend (the sshd's log
shows the jump's ``direct-tcpip`` channel to the compute's address, and the
session's ``$SSH_CONNECTION`` names that address as the server's). The key is the
one the run was given with ``--key FILE.pub``; its private half sits beside it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from support.loopsshd import LoopbackSshd
from support.runenv import RunEnv
from support.sshvc import COMPUTES, FRONTEND

pytestmark = pytest.mark.libvirt


def pragmash(
    ssh_env: RunEnv, *args: str, after: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process (``ssh`` replaces the process it runs in)."""
    argv = [sys.executable, "-m", "pragmash.ui.cli.main", *args, "--site", str(ssh_env.site_path)]
    return subprocess.run(
        [*argv, *(["--", *after] if after is not None else [])],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(ssh_env.root)},  # nothing from root's own ~/.ssh
        check=False,
    )


def test_ssh_config_reaches_every_node_computes_through_the_frontend(
    ssh_env: RunEnv, sshd: LoopbackSshd
) -> None:
    made = ssh_env.cli("ssh-config", "calit2", "--port", str(sshd.port))
    assert made.rc == 0, made.err
    text = made.out
    assert "Host calit2-frontend\n    HostName 127.0.0.1\n" in text
    assert f'IdentityFile "{sshd.client_key}"' in text  # the private key beside --key's .pub
    blocks = text.split("\nHost ")[1:]
    assert [b.splitlines()[0] for b in blocks] == [
        "calit2-frontend",
        "calit2-compute-0",
        "calit2-compute-1",
    ]
    assert "ProxyJump" not in blocks[0]
    assert all("ProxyJump calit2-frontend" in b for b in blocks[1:])
    config = ssh_env.root / "ssh_config"
    config.write_text(text)
    for name, address in [
        ("calit2-frontend", FRONTEND),
        *zip(["calit2-compute-0", "calit2-compute-1"], COMPUTES, strict=True),
    ]:
        done = subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", name, "echo $SSH_CONNECTION"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(ssh_env.root)},
            check=False,
        )
        assert done.returncode == 0, done.stderr + sshd.log
        assert done.stdout.split()[2:] == [address, str(sshd.port)], done.stdout
    # the computes were reached through the frontend's sshd, not straight
    for address in COMPUTES:
        assert f"to {address} port {sshd.port}" in sshd.log
    known = (ssh_env.site().temp_dir / "calit2" / "known_hosts").read_text()
    assert {line.split()[0] for line in known.splitlines()} == {
        "calit2-frontend",
        "calit2-compute-0",
        "calit2-compute-1",
    }


def test_pragmash_ssh_runs_a_command_on_a_compute(ssh_env: RunEnv, sshd: LoopbackSshd) -> None:
    done = pragmash(
        ssh_env,
        "ssh",
        "calit2",
        "compute[1]",
        "--port",
        str(sshd.port),
        after=["echo", "$SSH_CONNECTION", ";", "exit", "7"],
    )
    assert done.returncode == 7, done.stderr  # the remote command's status is ssh's
    assert done.stdout.split()[2:] == [COMPUTES[1], str(sshd.port)]
    login = pragmash(ssh_env, "ssh", "calit2", "--port", str(sshd.port), after=["echo", "-n", "x"])
    assert login.returncode == 0 and login.stdout == "x"  # frontend; '-n' was the command's


def test_inventory_hosts_are_reached_as_ansible_would(ssh_env: RunEnv, sshd: LoopbackSshd) -> None:
    made = ssh_env.cli("inventory", "calit2", "--port", str(sshd.port), "--format", "json")
    assert made.rc == 0, made.err
    data = json.loads(made.out)
    assert data["frontend"]["hosts"] == ["calit2-frontend"]
    assert data["compute"]["hosts"] == ["calit2-compute-0", "calit2-compute-1"]
    facts = data["all"]["vars"]
    assert facts["vcname"] == "calit2" and facts["vc_public_ip"] == FRONTEND
    hostvars = data["_meta"]["hostvars"]
    assert hostvars["calit2-compute-0"]["private_ip"] == COMPUTES[0]
    assert hostvars["calit2-frontend"]["public_ip"] == FRONTEND
    for host, address in [("calit2-frontend", FRONTEND), ("calit2-compute-0", COMPUTES[0])]:
        # what Ansible's ssh connection runs: ssh COMMON_ARGS … ansible_host COMMAND
        argv = ["ssh", *shlex.split(facts["ansible_ssh_common_args"]), "-o", "BatchMode=yes"]
        done = subprocess.run(
            [*argv, hostvars[host]["ansible_host"], "echo $SSH_CONNECTION"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(ssh_env.root)},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[2] == address

    ini = ssh_env.cli("inventory", "calit2", "--port", str(sshd.port)).out
    assert ini.startswith("[frontend]\ncalit2-frontend ansible_host=calit2-frontend ")
    assert "\n[compute]\ncalit2-compute-0 " in ini and "\n[all:vars]\n" in ini
    assert "private_ip=127.1.1.254" in ini and 'macs=["' in ini
    yaml = ssh_env.cli("inventory", "calit2", "--format", "yaml").out
    assert yaml.startswith("all:\n  vars:\n")
    assert "  children:\n    frontend:\n      hosts:\n        calit2-frontend:\n" in yaml
    assert '          private_ip: "127.1.1.253"\n' in yaml


def test_refusals(ssh_env: RunEnv) -> None:
    unknown = ssh_env.cli("ssh-config", "nosuch")
    assert unknown.rc == 2 and "holds no allocation" in unknown.err
    assert ssh_env.cli("inventory", "calit2", "--port", "0").rc == 2
    assert ssh_env.cli("inventory", "calit2", "--format", "toml").rc == 2
    bad = pragmash(ssh_env, "ssh", "calit2", "compute[5]", after=["true"])
    assert bad.returncode == 2 and "is not a node of calit2" in bad.stderr


def test_status_json_keeps_ip_and_gives_both(ssh_env: RunEnv) -> None:
    nodes = json.loads(ssh_env.cli("status", "calit2", "--json").out)["nodes"]
    assert [(n["ip"], n["public_ip"], n["private_ip"]) for n in nodes] == [
        (FRONTEND, FRONTEND, "127.1.1.1"),
        (COMPUTES[0], None, COMPUTES[0]),
        (COMPUTES[1], None, COMPUTES[1]),
    ]
