"""The way into a VC's nodes: ``pragmash ssh``, ``ssh-config`` and ``inventory``.

A VC's computes sit on its private network; only the frontend has a public
address. So every way in is one OpenSSH config (:func:`ssh_config`): a ``Host``
block per node, named as the node's domain, the frontend at its public address and
each compute at its private one behind ``ProxyJump`` through the frontend; ``root``
with the VC's key; the nodes' host keys kept in the VC's own ``known_hosts`` (in its
folder, so a VC cleaned and made again with the same addresses does not trip over
the old keys in ``~/.ssh/known_hosts``; first contact accepts a new key, a changed
one is refused). ``pragmash ssh`` writes that config into the VC's folder and runs
``ssh -F`` on it (:func:`ssh_argv`, an argument list: nothing goes through a local
shell); the Ansible inventory (:func:`inventory`) points at the same file, so all
three reach a node the same way.

The VC's key: the private key beside the ``--key FILE.pub`` its run was given (the
run journals the path), or that public key itself when its private half is not
there (OpenSSH then asks the agent for it), or ``--identity FILE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pragmash.engine.hosts.console import resolve_node
from pragmash.engine.run.nodes import vc_temp_dir
from pragmash.errors import UserError
from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.names import frontend_name, validate_name

#: Where OpenSSH reaches a node unless ``--port`` says otherwise.
SSH_PORT = 22
#: Who logs in: PRAGMA images (and pre_boot's ``--key``) set up root's authorized_keys.
SSH_USER = "root"


@dataclass(frozen=True)
class NodeAccess:
    """One node as ssh reaches it: ``address`` (public for the frontend, private for a
    compute, which is reached through ``jump``) and what an inventory says of it."""

    name: str
    role: str
    address: str
    private_ip: str
    public_ip: str | None
    cpus: int
    macs: tuple[str, ...]
    jump: str | None  # the frontend's name, for a compute


@dataclass(frozen=True)
class VcAccess:
    """Everything needed to reach a VC's nodes, from its allocation and its run."""

    vcname: str
    fqdn: str
    public_ip: str
    vlan: int
    nodes: tuple[NodeAccess, ...]
    folder: Path  # the VC's own folder: its ssh_config and known_hosts live there
    user: str = SSH_USER
    port: int = SSH_PORT
    identity: Path | None = None
    identity_why: str = ""  # where the identity came from, in words
    variables: dict[str, str] = field(default_factory=dict)  # the run's --set values

    @property
    def config_path(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def node(self, word: str) -> NodeAccess:
        """``frontend``, ``compute[N]`` or a node's name; a UserError naming the nodes if not."""
        names = [n.name for n in self.nodes]
        name = resolve_node(word, names, frontend_name(self.vcname), self.vcname)
        return next(n for n in self.nodes if n.name == name)


def vc_access(
    site: SiteConfig,
    vcname: str,
    *,
    user: str = SSH_USER,
    port: int = SSH_PORT,
    identity: str | None = None,
) -> VcAccess:
    """How to reach VC ``vcname``'s nodes; a UserError when it holds no allocation."""
    vcname = validate_name("VC name", vcname)
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a TCP port from 1 to 65535")
    validate_name("user", user)
    ledger = Ledger(site)
    held = current_allocation(ledger, vcname)
    if held is None:
        raise UserError(
            f"{vcname} holds no allocation in {site.ledger_path}: it has no nodes to reach",
            hint="`pragmash list` shows the VCs that have",
        )
    # the run's journaled options, read as the journal holds them (RunOptions' keys): the
    # runtime reaches guests through here, below the modules that open runs
    record = last_run(ledger, vcname)
    journaled = record.options if record else {}
    key, why = _identity(identity, journaled.get("key_file"))
    front = held.frontend.name
    nodes = tuple(
        NodeAccess(
            name=lease.name,
            role=lease.role,
            address=lease.public_ip or lease.private_ip,
            private_ip=lease.private_ip,
            public_ip=lease.public_ip,
            cpus=lease.cpus,
            macs=tuple(lease.macs),
            jump=None if lease.role == "frontend" else front,
        )
        for lease in held.nodes
    )
    return VcAccess(
        vcname=vcname,
        fqdn=held.public.fqdn,
        public_ip=held.public.ip,
        vlan=held.vlan,
        nodes=nodes,
        folder=vc_temp_dir(site, vcname),
        user=user,
        port=port,
        identity=key,
        identity_why=why,
        variables=dict(journaled.get("sets") or {}),
    )


def _identity(given: str | None, key_file: str | None) -> tuple[Path | None, str]:
    """The key ssh offers, and where it came from (see the module docstring)."""
    if given:
        path = Path(given).expanduser().absolute()
        if not path.is_file():
            raise UserError(f"--identity {given}: no such file")
        return path, "--identity"
    if not key_file:
        return None, "the VC's run was given no --key: ssh offers your own keys"
    public = Path(key_file)
    private = public.with_suffix("") if public.suffix == ".pub" else None
    if private is not None and private.is_file():
        return private, f"the private key beside the run's --key {public}"
    return public, f"the run's --key {public} (its private half from your ssh-agent)"


def _quoted(value: str, what: str) -> str:
    """A value for ssh_config, in double quotes (a path may hold spaces)."""
    if any(c in value for c in '"\n\r\t') or not value.isprintable():
        raise UserError(f"{what} {value!r}: cannot go into an ssh config (quote or control char)")
    return f'"{value}"'


def ssh_config(access: VcAccess) -> str:
    """The OpenSSH config for the VC: one ``Host`` block per node (see the module docstring)."""
    lines = [
        f"# pragmash ssh-config {access.vcname}: {access.fqdn} ({access.public_ip}), "
        f"VLAN {access.vlan}",
        f"# key: {access.identity_why}",
    ]
    for node in access.nodes:
        lines += [
            "",
            f"Host {node.name}",
            f"    HostName {node.address}",
            f"    Port {access.port}",
            f"    User {access.user}",
            f"    HostKeyAlias {node.name}",
            f"    UserKnownHostsFile {_quoted(str(access.known_hosts), 'the VC folder')}",
            "    StrictHostKeyChecking accept-new",
        ]
        if access.identity is not None:
            lines += [
                f"    IdentityFile {_quoted(str(access.identity), 'the key')}",
                "    IdentitiesOnly yes",
            ]
        if node.jump is not None:
            lines.append(f"    ProxyJump {node.jump}")
    return "\n".join(lines) + "\n"


def write_ssh_config(access: VcAccess) -> Path:
    """The VC's ssh config, written (afresh) into its folder; its path."""
    access.folder.mkdir(parents=True, exist_ok=True)
    access.config_path.write_text(ssh_config(access), encoding="utf-8")
    return access.config_path


def ssh_argv(
    access: VcAccess, node: NodeAccess, command: list[str], *, options: Sequence[str] = ()
) -> list[str]:
    """``ssh -F CONFIG [OPTIONS…] -- NODE [COMMAND…]``: an argument list for exec, never a
    shell line.

    ``--`` before the node: without it ssh would read a command word that starts
    with ``-`` as one of its own options. (The remote side joins COMMAND with spaces
    for the node's login shell, as ssh always does: a caller that means an argument
    list quotes each word, as :mod:`pragmash.engine.guests.ssh` does.)
    """
    return ["ssh", "-F", str(access.config_path), *options, "--", node.name, *command]


def inventory(access: VcAccess) -> dict[str, Any]:
    """The VC as an Ansible inventory (the ``--list`` JSON form): groups ``frontend`` and
    ``compute``, each host's addresses, and the VC's variables for ``all``.

    Hosts are named as the nodes and reached through the VC's ssh config (``-F``), so
    computes go through the frontend as ``pragmash ssh`` does.
    """
    hostvars = {
        n.name: {
            "ansible_host": n.name,
            "pragma_role": n.role,
            "private_ip": n.private_ip,
            "public_ip": n.public_ip,
            "cpus": n.cpus,
            "macs": list(n.macs),
        }
        for n in access.nodes
    }
    return {
        "_meta": {"hostvars": hostvars},
        "all": {
            "children": ["frontend", "compute"],
            "vars": {
                **access.variables,
                "ansible_ssh_common_args": f"-F {_quoted(str(access.config_path), 'the VC folder')}",
                "vcname": access.vcname,
                "vc_fqdn": access.fqdn,
                "vc_public_ip": access.public_ip,
                "vc_vlan": access.vlan,
                "vc_ssh_config": str(access.config_path),
            },
        },
        "frontend": {"hosts": [n.name for n in access.nodes if n.role == "frontend"]},
        "compute": {"hosts": [n.name for n in access.nodes if n.role == "compute"]},
    }
