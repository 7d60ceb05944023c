"""``pragmash ssh``, ``ssh-config`` and ``inventory``: the ways into a VC's nodes.

What to reach and how is :mod:`pragmash.engine.commands.access`'s (one OpenSSH config for the
VC); this prints it, or formats it as an Ansible inventory (INI, YAML or JSON), or
replaces this process with ``ssh`` on it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, TextIO

from pragmash.engine.commands import access
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK, UserError
from pragmash.ui.arguments import ArgumentParser, add_site_option
from pragmash.ui.render import json_dump


def _parser(name: str, description: str) -> ArgumentParser:
    p = ArgumentParser(prog=f"pragmash {name}", description=description)
    p.add_argument("vcname", metavar="VCNAME")
    add_site_option(p)
    p.add_argument(
        "--port",
        type=int,
        default=access.SSH_PORT,
        help=f"the nodes' ssh port (default {access.SSH_PORT})",
    )
    p.add_argument(
        "--user", default=access.SSH_USER, help=f"who logs in (default {access.SSH_USER})"
    )
    p.add_argument(
        "--identity",
        metavar="FILE",
        help="the private key to offer (default: the one beside the run's --key FILE.pub)",
    )
    return p


def _access(ns: Any) -> access.VcAccess:
    site = session.open_site(ns.site)
    return access.vc_access(site, ns.vcname, user=ns.user, port=ns.port, identity=ns.identity)


SSH_CONFIG_DESCRIPTION = """\
Print an OpenSSH config for the VC: a Host block per node, named as the node; the
frontend at its public address, each compute at its private one with ProxyJump
through the frontend; root with the VC's key; host keys kept in the VC's own
known_hosts. Use it with `ssh -F FILE NODE`, or append it to ~/.ssh/config."""


def cmd_ssh_config(args: list[str], out: TextIO, err: TextIO) -> int:
    """Print the VC's ssh config."""
    ns = _parser("ssh-config", SSH_CONFIG_DESCRIPTION).parse_args(args)
    out.write(access.ssh_config(_access(ns)))
    return EXIT_OK


SSH_DESCRIPTION = """\
Log in to a node of the VC (the frontend unless NODE says otherwise: its name,
`frontend` or `compute[N]`) or run a command there (after --). Computes are reached
through the frontend. Runs ssh with the config `pragmash ssh-config` prints, written
into the VC's folder; the command's words go to ssh as they are, through no local
shell (the node's login shell joins them, as ssh always does)."""


def cmd_ssh(args: list[str], out: TextIO, err: TextIO) -> int:
    """Replace this process with ssh to a node (never returns unless refused)."""
    command: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, command = args[:cut], args[cut + 1 :]
    p = _parser("ssh", SSH_DESCRIPTION)
    p.add_argument("node", nargs="?", default="frontend", metavar="NODE")
    ns = p.parse_args(args)
    vc = _access(ns)
    node = vc.node(ns.node)
    if shutil.which("ssh") is None:
        raise UserError("ssh is not installed (apt-get install openssh-client)")
    access.write_ssh_config(vc)
    argv = access.ssh_argv(vc, node, command)
    out.flush()
    err.flush()
    os.execvp(argv[0], argv)
    return EXIT_OK  # not reached: exec replaced this process


INVENTORY_DESCRIPTION = """\
Print the VC as an Ansible inventory: groups `frontend` and `compute`, each host's
addresses, CPUs and MACs, and for `all` the VC's name, address, VLAN and its run's
--set values. Hosts are reached through the VC's ssh config (written into its
folder now), so computes go through the frontend:
`ansible -i <(pragmash inventory VC) compute -m ping`."""


def cmd_inventory(args: list[str], out: TextIO, err: TextIO) -> int:
    """Print the VC's Ansible inventory in the format asked for."""
    p = _parser("inventory", INVENTORY_DESCRIPTION)
    p.add_argument("--format", choices=["ini", "yaml", "json"], default="ini")
    ns = p.parse_args(args)
    vc = _access(ns)
    access.write_ssh_config(vc)
    data = access.inventory(vc)
    if ns.format == "json":
        json_dump(data, out)
    elif ns.format == "yaml":
        out.write(inventory_yaml(data))
    else:
        out.write(inventory_ini(data))
    return EXIT_OK


def _scalar(value: Any) -> str:
    """A value as JSON, which YAML reads as the same value (and INI inventories too)."""
    return json.dumps(value)


def inventory_ini(data: dict[str, Any]) -> str:
    """The INI form: ``[frontend]``, ``[compute]`` with host variables, ``[all:vars]``."""
    hostvars = data["_meta"]["hostvars"]
    lines: list[str] = []
    for group in ("frontend", "compute"):
        lines.append(f"[{group}]")
        for host in data[group]["hosts"]:
            pairs = " ".join(f"{k}={_ini_value(v)}" for k, v in hostvars[host].items())
            lines.append(f"{host} {pairs}")
        lines.append("")
    lines.append("[all:vars]")
    lines += [f"{k}={_ini_value(v)}" for k, v in data["all"]["vars"].items()]
    return "\n".join(lines) + "\n"


def _ini_value(value: Any) -> str:
    """Lists and text with spaces quoted (JSON), so Ansible's INI parser reads them whole."""
    if isinstance(value, str) and value and not any(c in value for c in " \"'=#;\\"):
        return value
    return _scalar(value)


def inventory_yaml(data: dict[str, Any]) -> str:
    """The YAML form: ``all: {vars, children: {frontend: {hosts}, compute: {hosts}}}``."""
    hostvars = data["_meta"]["hostvars"]
    lines = ["all:", "  vars:"]
    lines += [f"    {k}: {_scalar(v)}" for k, v in data["all"]["vars"].items()]
    lines.append("  children:")
    for group in ("frontend", "compute"):
        hosts = data[group]["hosts"]
        lines.append(f"    {group}:")
        lines.append("      hosts:" + ("" if hosts else " {}"))
        for host in hosts:
            lines.append(f"        {host}:")
            lines += [f"          {k}: {_scalar(v)}" for k, v in hostvars[host].items()]
    return "\n".join(lines) + "\n"
