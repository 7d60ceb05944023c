"""From an allocation to the run's nodes: what each domain will be built from.

An allocation (fresh, or read back from the ledger on resume) says names, MACs,
IPs and CPUs; the vc-in templates say the domain XML and disks; private interfaces
join the VC's own private network, and the site maps the other vc-in bridges (the
frontend's public interface) to its networks. A :class:`~pragmash.driver_api.NodePlan`
joins the three, so drivers get one value per node and never read the ledger or vc-in.
The VC's folder and the StageContext its stages get are defined here too, once,
for a run and for the lifecycle commands alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pragmash import stages
from pragmash.driver_api import NodePlan, SeedPlan, StageContext, UpTest
from pragmash.engine.run.mem_option import Memory
from pragmash.engine.run.vcfolder import VcFolder
from pragmash.errors import StepError
from pragmash.store.allocation import Allocation
from pragmash.vc.config.site import SiteConfig
from pragmash.vc.formats.vcin import VcIn


def node_plans(
    allocation: Allocation,
    vcin: VcIn,
    site: SiteConfig,
    temp_dir: Path,
    *,
    domain_type: str,
    simulated: bool,
    previous: Mapping[str, NodePlan],
    private_network: str | None = None,
    up_tests: tuple[UpTest, ...] = (),
    authorized_keys: tuple[str, ...] = (),
    memory: Memory | None = None,
    seeds: bool = False,
) -> dict[str, NodePlan]:
    """Every node of ``allocation``; a node in ``previous`` keeps the disks it has.

    ``private_network`` is what private interfaces join (a network, ``bridge:NAME``):
    every compute interface and the frontend's first, as vc-in's MACs are allocated.
    ``up_tests`` is how the VC's nodes show they are up (the site's or the driver's);
    ``authorized_keys`` what pre_boot gives root (``--key``); ``memory`` the MiB each
    role gets where ``--mem`` overrides the templates; ``seeds`` whether each node's
    settings go in as a NoCloud seed (in the VC's folder) instead of into its disk.
    """
    templates = {"frontend": vcin.frontend, "compute": vcin.compute}
    folder = VcFolder(temp_dir)
    nodes: dict[str, NodePlan] = {}
    for lease in allocation.nodes:
        tmpl = templates[lease.role]
        assert tmpl is not None
        old = previous.get(lease.name)
        networks = tuple(
            private_network
            if private_network is not None and (lease.role == "compute" or number == 0)
            else network_for(site, iface.source)
            for number, iface in enumerate(tmpl.interfaces)
        )
        nodes[lease.name] = NodePlan(
            name=lease.name,
            role=lease.role,
            index=lease.index,
            cpus=lease.cpus,
            template_xml=tmpl.domain_xml,
            macs=lease.macs,
            networks=networks,
            disks=old.disks
            if old
            else _disks_of(lease.name, tmpl.disk_paths, site, temp_dir, simulated),
            domain_type=domain_type,
            console_log=None if simulated else str(folder.console_log(lease.name)),
            private_ip=lease.private_ip,
            host=lease.host,
            public_ip=lease.public_ip,
            up_tests=up_tests,
            authorized_keys=authorized_keys,
            memory_mib=memory.of(lease.role) if memory is not None and memory.given else None,
            seed=SeedPlan(str(folder.seed(lease.name))) if seeds and not simulated else None,
            graphics_listen=site.graphics_listen,
        )
    return nodes


def _disks_of(
    name: str, template_disks: Sequence[Path], site: SiteConfig, temp_dir: Path, simulated: bool
) -> tuple[str, ...]:
    """A node's disks as a run left them: its staged first disk where one exists.

    A resumed or attached run then shows and boots the disk the node really has,
    not the repository image it was staged from.
    """
    disks = [str(p) for p in template_disks]
    if disks and not simulated:
        staged = VcFolder(temp_dir).staged(name, site.staging)
        if staged.is_file():
            disks[0] = str(staged)
    return tuple(disks)


def network_for(site: SiteConfig, source: str | None) -> str:
    """The site network a vc-in bridge maps to (``bridge:NAME`` or ``user`` otherwise)."""
    if source and source in site.bridges:
        return site.bridges[source]
    if site.default_network:
        return site.default_network
    return f"bridge:{source}" if source else "user"


def vc_temp_dir(site: SiteConfig, vcname: str) -> Path:
    """The VC's own folder: staged disks, vc-out.xml, console and tool logs."""
    return VcFolder.of(site, vcname).path


def stage_context(
    site: SiteConfig,
    vcname: str,
    *,
    note: Callable[[str], None] = lambda _text: None,
    progress: Callable[[float, float | None, str], None] = lambda _d, _t, _l: None,
    cancelled: Callable[[], bool] = lambda: False,
    kvm_usable: bool = False,
) -> StageContext:
    """The StageContext a driver stage gets for this VC (its folder, its vc-out.xml).

    ``kvm_usable``: whether libguestfs and virt-v2v may use KVM. A run passes whether
    its nodes' domain type is ``kvm``, which the site's ``domain_type`` decides, or under
    ``auto`` the engine's ``host_info().kvm_usable`` (:func:`resolve_domain_type`): so
    the appliances use KVM exactly where the nodes do, and TCG is forced elsewhere.
    """
    folder = VcFolder.of(site, vcname)
    return StageContext(
        vcname=vcname,
        temp_dir=folder.path,
        vc_out_path=folder.vc_out,
        note=note,
        progress=progress,
        cancelled=cancelled,
        kvm_usable=kvm_usable,
        computes_vc_out=site.computes_vc_out,
    )


def template_source(vcin: VcIn, node: NodePlan) -> Path:
    """The repository image a node's first disk comes from (its vc-in template's)."""
    tmpl = vcin.frontend if node.role == "frontend" else vcin.compute
    if tmpl is None or not tmpl.disk_paths:
        raise StepError(f"{node.name} has no disk in its vc-in template", stage=stages.STAGE)
    return Path(tmpl.disk_paths[0])
