"""What the command line changes about a VC's nodes: ``--mem`` (and the host check for it).

pragma_boot's ``mem=FRONTEND[:COMPUTE]`` (MiB; one number for both) overrides the
memory the vc-in templates ask for. A ``--mem`` that gives one node more memory than
its host has is refused when the run starts, and one whose nodes together need more
than the host has is refused at ``allocate`` (and at ``scale +N``), before any lease
is taken. The templates' own memory is left as sites had it (hosts may overcommit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pragmash.driver_api import EngineDriver, HostResources, SiteHosts
from pragmash.errors import AllocationError, UserError
from pragmash.vc.formats.vcin import VcIn

KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Memory:
    """MiB per role, and whether it came from ``--mem`` (else from the templates)."""

    frontend: int
    compute: int
    given: bool = False

    def of(self, role: str) -> int:
        return self.frontend if role == "frontend" else self.compute

    def to_json(self) -> dict[str, int]:
        return {"frontend": self.frontend, "compute": self.compute}


def parse_mem(text: str) -> tuple[int, int]:
    """``--mem 2048`` (both) or ``--mem 4096:2048`` (frontend:compute), in MiB."""
    parts = text.split(":")
    if len(parts) > 2 or not all(
        p.strip().isascii() and p.strip().isdigit() and int(p) > 0 for p in parts
    ):
        raise UserError(
            f"--mem {text!r}: expected MiB as FRONTEND[:COMPUTE], e.g. --mem 4096:2048"
            " (one number sets both)"
        )
    frontend = int(parts[0])
    return frontend, int(parts[-1])


def effective_memory(vcin: VcIn, mem: str | None) -> Memory:
    """The memory each role's nodes get: ``--mem`` where given, else the templates'."""
    if mem is not None:
        frontend, compute = parse_mem(mem)
        return Memory(frontend, compute, given=True)
    fe = -(-vcin.frontend.memory_kib // KIB_PER_MIB)
    co = -(-vcin.compute.memory_kib // KIB_PER_MIB) if vcin.compute is not None else fe
    return Memory(fe, co)


def host_memory_mib(engine: EngineDriver) -> int | None:
    """The host's memory as the engine reports it; None for an engine that cannot say,
    and for one over several hosts: a VC's nodes are not held to all hosts' memory
    together but to each host's own, which placement checks (the sum let through
    nodes no host could hold, and named the first host for all)."""
    if isinstance(engine, SiteHosts) or not isinstance(engine, HostResources):
        return None
    value = engine.host_memory_mib()
    return int(value) if isinstance(value, int) else None


def largest_host(engine: EngineDriver, uri: str) -> tuple[int | None, str]:
    """The memory of the host a node could have most of, and how messages name that host."""
    if not isinstance(engine, SiteHosts):
        return host_memory_mib(engine), f"the host ({uri})"
    sizes = {
        name: int(value)
        for name, host in engine.reachable().items()
        if isinstance(host, HostResources) and isinstance(value := host.host_memory_mib(), int)
    }
    if not sizes:
        return None, uri
    name = max(sizes, key=lambda n: sizes[n])
    return sizes[name], f"the largest host ({name})"


def check_nodes_fit(memory: Memory, engine: EngineDriver, uri: str) -> None:
    """Each node alone must fit a host: a bigger ``--mem`` is a mistake, refused at once."""
    host_mib, host = largest_host(engine, uri)
    if host_mib is None or not memory.given:
        return
    for role in ("frontend", "compute"):
        if memory.of(role) > host_mib:
            raise UserError(
                f"--mem: a {role} would get {memory.of(role)} MiB, but {host} has"
                f" {host_mib} MiB in all",
                hint="give a smaller --mem FRONTEND[:COMPUTE] (MiB)",
            )


def check_vc_fits(
    memory: Memory, counts: Mapping[str, int], host_mib: int | None, uri: str
) -> None:
    """All the VC's nodes together must fit the host; else nothing is allocated."""
    if host_mib is None or not memory.given:
        return
    total = sum(memory.of(role) * n for role, n in counts.items())
    if total > host_mib:
        parts = " + ".join(
            f"{n} x {memory.of(role)} MiB ({role})" for role, n in counts.items() if n
        )
        raise AllocationError(
            f"not enough memory on {uri}: the VC's nodes need {parts} = {total} MiB, the host"
            f" has {host_mib} MiB; nothing was allocated (a smaller --mem, or fewer computes)"
        )
