"""A program run, or a file put, inside a VC's node over ssh: the way in where no guest
agent answers.

It goes the way ``pragmash ssh`` goes (:mod:`pragmash.engine.commands.access`): the VC's ssh
config, its key, computes through the frontend. ssh hands the remote side one command
line for the node's login shell, so an argument list is sent with each word quoted
(:func:`shlex.join`): the node's shell reads back exactly the words the recipe wrote,
and nothing in them is code. No prompt can block a step: ``BatchMode`` (no password or
passphrase question) and a connection time limit.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pragmash import stages
from pragmash.engine.commands.access import VcAccess, ssh_argv, write_ssh_config
from pragmash.engine.guests.agent import GuestRun
from pragmash.engine.steps.host_command import run_argv
from pragmash.errors import StepError
from pragmash.textsafe import printable

#: ssh's options for unattended use: fail rather than ask, and do not wait long for a node.
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
#: ssh's own exit status when it could not connect or log in (the remote command's
#: status otherwise).
SSH_FAILED = 255
#: The fixed script that writes a file from stdin beside its place and renames it in;
#: the path is its argument ``$1``, never part of the script.
_PUT_FILE = 'cat > "$1.pragmash-new" && mv -f "$1.pragmash-new" "$1"'


def _run(
    access: VcAccess, name: str, argv: Sequence[str], timeout: float, stdin: bytes | None
) -> GuestRun:
    node = access.node(name)
    write_ssh_config(access)
    command = ssh_argv(access, node, [shlex.join(argv)], options=SSH_OPTIONS)
    done = run_argv(command, timeout=timeout, stage=stages.EXEC, stdin=stdin)
    if done.returncode == SSH_FAILED:
        tail = [printable(line) for line in done.stderr.splitlines()[-5:]]
        raise StepError(
            f"ssh could not reach {name}: " + ("; ".join(tail) or f"exit {SSH_FAILED}"),
            stage=stages.EXEC,
            output_tail=tail,
        )
    return GuestRun(done.returncode, done.stdout, done.stderr)


def ssh_exec(access: VcAccess, name: str, argv: Sequence[str], timeout: float) -> GuestRun:
    """``argv`` run inside node ``name`` over ssh; a StepError when ssh cannot get in."""
    return _run(access, name, argv, timeout, None)


def ssh_write_file(access: VcAccess, name: str, path: str, data: bytes, timeout: float) -> str:
    """Put ``data`` at ``path`` inside node ``name`` over ssh; how, in words."""
    done = _run(access, name, ["sh", "-c", _PUT_FILE, "sh", path], timeout, data)
    if done.exit_code != 0:
        tail = [printable(line) for line in done.output.splitlines()[-5:]]
        raise StepError(
            f"{name}: writing {path} over ssh failed (exit {done.exit_code})",
            stage=stages.REFRESH,
            output_tail=tail,
        )
    return f"{path} written over ssh"
