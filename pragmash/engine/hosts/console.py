"""Which console ``pragmash console VC NODE`` (and the REPL's ``console NODE``) attaches to.

A node is named as in recipes: its domain name, ``frontend`` or ``compute[N]``. It
must be a node of the VC's allocation, on an engine that has consoles: libvirt's
simulated ``test://`` engine has none, and says so instead of pretending.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pragmash.driver_api import Consoles, ConsoleStream, EngineDriver
from pragmash.engine.hosts.capacity import locate
from pragmash.engine.run.diskwork import DiskWork
from pragmash.engine.run.registry import load_engine
from pragmash.errors import UserError
from pragmash.store import allocation as alloc_mod
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig

_COMPUTE = re.compile(r"compute\[(\d+)\]")


__all__ = ["ConsoleStream", "console_of", "open_node_console", "resolve_node"]


def resolve_node(word: str, names: Sequence[str], frontend: str, vcname: str) -> str:
    """``frontend``, ``compute[N]`` or a node name, as the node's name; unknown is a UserError."""
    if word == "frontend":
        return frontend
    match = _COMPUTE.fullmatch(word)
    computes = [n for n in names if n != frontend]
    if match:
        index = int(match.group(1))
        wanted = next((n for n in computes if n.endswith(f"-{index}")), None)
        if wanted is not None:
            return wanted
    elif word in names:
        return word
    raise UserError(
        f"{word!r} is not a node of {vcname}: expected frontend, compute[N] or one of"
        f" {', '.join(names)}"
    )


def console_of(engine: EngineDriver, disk_work: DiskWork, name: str) -> ConsoleStream:
    """The console of node ``name`` on ``engine``; an engine without consoles says so
    (``disk_work``: whether the engine is simulated, the run's or the command's answer)."""
    if disk_work.simulated:
        raise UserError(
            disk_work.no_console(name),
            hint="on a site with a real engine (qemu:///system …) `pragmash console` attaches"
            " to the node's serial console",
        )
    if not isinstance(engine, Consoles):
        raise UserError(f"{name}: the engine driver {engine.name!r} offers no console")
    engine.check()
    return engine.open_console(name)


def open_node_console(site: SiteConfig, vcname: str, node: str) -> tuple[str, ConsoleStream]:
    """Attach to ``node`` of ``vcname``: (its name, the open console)."""
    held = alloc_mod.current_allocation(Ledger(site), vcname)
    if held is None:
        raise UserError(
            f"{vcname}: no such VC in the ledger ({site.ledger_path}), nothing to attach to"
        )
    names = [n.name for n in held.nodes]
    name = resolve_node(node, names, held.frontend.name, vcname)
    engine = load_engine(site)
    locate(engine, held)
    return name, console_of(engine, DiskWork.of(engine, site), name)
