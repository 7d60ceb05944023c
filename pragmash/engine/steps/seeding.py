"""How a VC's nodes receive their settings: a NoCloud seed each, or writes into their disks.

The distro driver declares its way (``delivery = "seed"``: the bundled ``cloud_init``
and ``ubuntu_cloud``); the site's ``[delivery]`` overrides it per VC or per driver.
A seeded node's plan names its seed volume (:func:`pragmash.engine.run.nodes.node_plans`),
which the driver's ``pre_boot_many`` makes and the engine attaches read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from pragmash.driver_api import DistroDriver, NodePlan, StageContext, StageResult
from pragmash.errors import UserError
from pragmash.vc.config.delivery import Delivery
from pragmash.vc.config.site import SiteConfig


@runtime_checkable
class SeedDelivery(Protocol):
    """A distro driver that can deliver settings as NoCloud seeds (``[delivery]`` ``seed``).

    Its ``pre_boot_many`` makes each seeded node's volume at ``node.seed.path`` (the
    bundled drivers do: :class:`pragmash.drivers.distros.base.GuestFilesDriver`).
    """

    def seed_many(
        self, nodes: Sequence[tuple[NodePlan, Path]], vc_out: Path, ctx: StageContext
    ) -> dict[str, StageResult]: ...


#: The recipe variable naming a #cloud-config file that seeded nodes' user-data adds.
CLOUD_CONFIG_VARIABLE = "cloud_config"


def delivery_of(site: SiteConfig, vcname: str, distro: DistroDriver) -> tuple[Delivery, str]:
    """``seed`` or ``disk`` for this VC, and who chose it (for messages).

    The site's ``[delivery]`` (per VC, then per driver) wins over the driver's own
    ``delivery``; a driver that declares none writes disks, as drivers always did.
    """
    seeds = getattr(distro, "delivery", "disk") == "seed"
    chosen = site.delivery.chosen(vcname, distro.name) or (
        "seed" if seeds else "disk",
        f"the distro driver {distro.name}",
    )
    if chosen[0] == "seed" and not isinstance(distro, SeedDelivery):
        raise UserError(
            f"{chosen[1]}: asks for NoCloud seeds, but the distro driver "
            f"{distro.name!r} cannot make them",
            hint='say "disk" for it in [delivery]',
        )
    return chosen


def plan_now(
    plans: MutableMapping[str, NodePlan], name: str, variables: Mapping[str, str]
) -> NodePlan:
    """Node ``name``'s plan for its boot, a seeded node's carrying the recipe's
    ``$cloud_config`` as it is at this step (kept in ``plans``)."""
    node = plans[name]
    added = variables.get(CLOUD_CONFIG_VARIABLE) or None
    if node.seed is not None and node.seed.cloud_config != added:
        node = dataclasses.replace(node, seed=dataclasses.replace(node.seed, cloud_config=added))
        plans[name] = node
    return node
