"""Whether a VC's vc-in.xml still describes the VC its allocation made.

``scale`` reads the VC's vc-in.xml again (from the repository) to make new computes.
Edited since the VC was allocated (another private network, other vCPUs or memory
for computes), it made computes on another subnet, or unlike their siblings, and a
vc-out.xml mixing the old and the new. So the settings a scale copies are compared
with what the VC holds (its allocation, its vc-out.xml), and a difference is named:
as ``resume`` refuses a recipe edited under a run, ``scale`` refuses this.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.engine.run.mem_option import Memory
from pragmash.errors import PragmashError
from pragmash.store.allocation import Allocation, plan_compute_cpus
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcin import VcIn
from pragmash.vc.formats.vcout import read_vc_out


def vcin_changes(
    vcin: VcIn, held: Allocation, site: SiteConfig, memory: Memory | None, vc_out: Path
) -> list[str]:
    """What of ``vcin`` differs from what ``held`` was made with (empty: nothing)."""
    changes: list[str] = []
    if held.frontend.private_ip != vcin.private_ip:
        changes.append(
            f"the private network's frontend address (<networks>/<network name='private'>/"
            f"<ipaddress>) was {held.frontend.private_ip}, is now {vcin.private_ip}"
        )
    try:
        netmask: str | None = read_vc_out(vc_out).frontend.private_netmask
    except (OSError, PragmashError):
        netmask = None  # no vc-out.xml to compare with: the rest still is
    if netmask is not None and netmask != vcin.private_netmask:
        changes.append(
            f"the private netmask (<networks>/<network name='private'>/<netmask>) was"
            f" {netmask}, is now {vcin.private_netmask}"
        )
    computes = held.computes
    if not computes:
        return changes
    if vcin.compute is None:
        return [*changes, "the <compute> node template is gone"]
    had = [c.cpus for c in computes]
    if plan_compute_cpus(site, vcin, held.cpus) != had:
        changes.append(
            f"the computes' vCPUs (<compute>/<domain>/<vcpu>): the VC's computes have"
            f" {had[0]}, the template now gives {vcin.compute.vcpus}"
        )
    had_mib = computes[0].memory_mib
    if memory is not None and had_mib and memory.compute != had_mib:
        changes.append(
            f"the computes' memory (<compute>/<domain>/<memory>): the VC's computes have"
            f" {had_mib} MiB, they would now get {memory.compute} MiB"
        )
    return changes
