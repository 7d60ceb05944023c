"""Each VC's private network in a run: planned from the allocation, made through the engine.

The site's ``[network] private`` mode (:mod:`pragmash.vc.privnet`) and the VC's VLAN
decide the network; an engine that implements
:class:`~pragmash.driver_api.PrivateNetworks` (libvirt) makes it. The bridge is
checked against the engine host while the VLAN is being chosen, inside the
allocation's transaction, so a clash takes nothing. Status, list and clean ask here
too, so every front end shows the same thing.
"""

from __future__ import annotations

from pragmash.driver_api import (
    EngineDriver,
    NetworkState,
    PrivateNetworkPlan,
    PrivateNetworks,
    StageResult,
)
from pragmash.vc.site import SiteConfig


def plan_for(site: SiteConfig, vcname: str, vlan: int) -> PrivateNetworkPlan:
    """VC ``vcname``'s private network on ``vlan``, as the site's mode makes it."""
    return site.private_network.plan(vcname, vlan, site.source)


def networks_of(engine: EngineDriver) -> PrivateNetworks | None:
    """The engine's private-network side, or None for an engine that leaves it to the site."""
    return engine if isinstance(engine, PrivateNetworks) else None


def check(engine: EngineDriver, plan: PrivateNetworkPlan) -> None:
    """Raise ConfigError (naming the site setting) when the engine host cannot carry ``plan``."""
    networks = networks_of(engine)
    if networks is not None:
        networks.check_private_network(plan)


def ensure(engine: EngineDriver, plan: PrivateNetworkPlan) -> StageResult | None:
    """Make the network exist and run (idempotent); None when the engine makes none."""
    networks = networks_of(engine)
    if networks is None:
        return None
    return networks.ensure_private_network(plan)


def made_anew(result: StageResult | None) -> bool:
    """Whether ``ensure`` had to create or start the network (it was missing or stopped)."""
    return result is not None and result.message.startswith(("created", "started"))


def state(engine: EngineDriver, plan: PrivateNetworkPlan) -> NetworkState | None:
    networks = networks_of(engine)
    return None if networks is None else networks.private_network_state(plan)


def remove(engine: EngineDriver, vcname: str) -> bool:
    """Remove the VC's network from the engine; True when there was one."""
    networks = networks_of(engine)
    return networks is not None and networks.remove_private_network(vcname)


def describe_state(plan: PrivateNetworkPlan, found: NetworkState | None) -> dict[str, object]:
    """The private network for ``status --json`` and ``list --json``."""
    return {
        "mode": plan.mode,
        "name": plan.network or plan.bridge,
        "bridge": plan.bridge,
        "vlan": plan.vlan,
        "exists": None if found is None else found.exists,
        "active": None if found is None else found.active,
        "state": "unknown (the engine makes no networks)" if found is None else found.detail,
    }


def default_mode_note(site: SiteConfig) -> str | None:
    """The note for a site config that does not say how private networks are made."""
    if site.private_network.explicit or site.embedded:
        return None
    return (
        f"note: {site.source} has no [network] private: each VC gets its own isolated libvirt "
        f"network on its VLAN (bridge {site.private_network.bridge_pattern}), and private "
        "interfaces no longer "
        'follow `bridges`/`default_network`; add private = "isolated" (or "ovs", "bridge") '
        "to say so and silence this note"
    )
