"""Each VC's private network in a run: planned from the allocation, made through the engine.

The site's ``[network] private`` mode (:mod:`pragmash.vc.config.private_network`) and the VC's VLAN
decide the network; an engine that implements
:class:`~pragmash.driver_api.PrivateNetworks` (libvirt) makes it. The bridge is
checked against the engine host while the VLAN is being chosen, inside the
allocation's transaction, so a clash takes nothing. Status, list and clean ask here
too, so every front end shows the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pragmash.driver_api import (
    EngineDriver,
    NetworkState,
    PrivateNetworkPlan,
    PrivateNetworks,
    StageResult,
)
from pragmash.engine.hosts.capacity import locate
from pragmash.store import allocation as alloc_mod
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig


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


def preflight(engine: EngineDriver, site: SiteConfig, vcname: str, ledger: Ledger) -> None:
    """Check, before a run starts, the network the VC has or would get next (ConfigError).

    A clash or a missing site bridge is then a bad-input error before anything is
    allocated; the allocation checks its VLAN again inside its transaction, for runs
    that start at once.
    """
    held = alloc_mod.current_allocation(ledger, vcname)
    locate(engine, held)
    vlan = held.vlan if held is not None else alloc_mod.next_free_vlan(ledger, site)
    if vlan is not None:  # none free: allocation says so, with who holds them
        check(engine, plan_for(site, vcname, vlan))


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


@dataclass(frozen=True)
class PrivateNetworkStatus:
    """A VC's private network as ``status`` and ``list`` show it.

    ``found`` is None where the engine could not be asked (``why`` says why).
    """

    plan: PrivateNetworkPlan
    found: NetworkState | None
    why: str = ""

    @property
    def missing(self) -> bool:
        """Known to be absent or stopped: the VC's domains cannot start on it."""
        return self.found is not None and not self.found.active

    @property
    def state(self) -> str:
        return self.found.detail if self.found is not None else f"unknown ({self.why})"

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.plan.mode,
            "name": self.plan.network or self.plan.bridge,
            "bridge": self.plan.bridge,
            "vlan": self.plan.vlan,
            "exists": None if self.found is None else self.found.exists,
            "active": None if self.found is None else self.found.active,
            "state": self.state,
            "missing": self.missing,
        }


def network_status(
    engine: EngineDriver | None, site: SiteConfig, vcname: str, vlan: int, why: str = ""
) -> PrivateNetworkStatus:
    """The VC's private network and whether it exists; ``engine`` None: unreachable."""
    plan = plan_for(site, vcname, vlan)
    if engine is None:
        return PrivateNetworkStatus(plan, None, why or "engine unreachable")
    found = state(engine, plan)
    return PrivateNetworkStatus(plan, found, "" if found else "the engine makes no networks")


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
