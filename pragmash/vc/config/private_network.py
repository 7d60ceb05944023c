"""The site's ``[network] private`` setting: how each VC gets a private network of its own.

Every Rocks VC uses the same private addresses (10.1.1.1, 10.1.1.254, …), so two VCs on
one shared network answer each other's ARP. Each VC's private interfaces therefore go
to a network of their own, on the VC's VLAN, made one of three ways:

``isolated`` (the default)
    pragmash defines a libvirt network per VC: no forward mode, no address on the
    host, its bridge named from the VLAN by ``private_bridge`` (default
    ``pragma{vlan}``). For a site of one host.
``ovs``
    a libvirt network per VC over the site's Open vSwitch bridge (``ovs_bridge``),
    tagged with the VC's VLAN: the private network spans hosts over a trunk.
``bridge``
    the site made one bridge per VLAN on every host (the Rocks way, over
    ``eth0.{vlan}``); ``private_bridge`` names it, e.g. ``br{vlan}``, and the private
    interfaces join it directly.

This module reads and checks the setting (pure: no engine). Whether a bridge exists
or clashes is the engine's to say, before anything is allocated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pragmash.driver_api import PrivateMode, PrivateNetworkPlan

MODES: tuple[PrivateMode, ...] = ("isolated", "ovs", "bridge")
KEYS = ("private", "private_bridge", "ovs_bridge")
PLACEHOLDER = "{vlan}"
ISOLATED_PATTERN = "pragma{vlan}"
IFNAME_MAX = 15  # Linux IFNAMSIZ is 16 with the terminating NUL
_IFNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PrivateNetworkSetting:
    """The site's choice; ``explicit`` is False when the site config did not say."""

    mode: PrivateMode = "isolated"
    bridge_pattern: str = ISOLATED_PATTERN
    ovs_bridge: str | None = None
    explicit: bool = False

    def bridge_for(self, vlan: int) -> str:
        """The bridge a VC on ``vlan`` uses: the pattern's, or the one OVS bridge."""
        if self.mode == "ovs":
            assert self.ovs_bridge is not None
            return self.ovs_bridge
        return self.bridge_pattern.replace(PLACEHOLDER, str(vlan))

    @property
    def bridge_setting(self) -> str:
        """The site setting that names the bridge, for error messages."""
        return "[network] ovs_bridge" if self.mode == "ovs" else "[network] private_bridge"

    def plan(self, vcname: str, vlan: int, site_source: str = "") -> PrivateNetworkPlan:
        """The private network of VC ``vcname`` on ``vlan``."""
        return PrivateNetworkPlan(
            vcname=vcname,
            mode=self.mode,
            vlan=vlan,
            bridge=self.bridge_for(vlan),
            network=None if self.mode == "bridge" else network_name(vcname),
            setting=self.bridge_setting,
            site_source=site_source,
        )


def network_name(vcname: str) -> str:
    """The libvirt network of VC ``vcname``: named by the VC alone, so ``clean`` finds it
    even after the ledger has forgotten the VLAN."""
    return f"{vcname}-private"


Fail = Callable[[str, str], Exception]


def read_private_setting(
    table: Mapping[str, Any], fail: Fail, vlans: tuple[int, int]
) -> PrivateNetworkSetting:
    """Check ``private``, ``private_bridge`` and ``ovs_bridge`` of a ``[network]`` table.

    ``fail(key, message)`` makes the caller's error naming the file and key; ``vlans``
    is the site's ``[first, last]`` VLAN range, so the longest bridge name is checked
    against the 15-character limit now rather than at the thousandth VC.
    """
    explicit = "private" in table
    mode = table.get("private", "isolated")
    if not isinstance(mode, str) or mode not in MODES:
        raise fail(
            "private",
            f"expected {', '.join(repr(m) for m in MODES[:-1])} or {MODES[-1]!r}, got {mode!r}",
        )
    pattern = table.get("private_bridge")
    ovs_bridge = table.get("ovs_bridge")
    if mode == "ovs":
        if pattern is not None:
            raise fail(
                "private_bridge",
                "is not used when private = 'ovs' (the VLAN tag separates the VCs on "
                "ovs_bridge); remove it, or choose private = 'bridge'",
            )
        if ovs_bridge is None:
            raise fail("ovs_bridge", "missing: private = 'ovs' needs the site's OVS bridge name")
        return PrivateNetworkSetting(
            mode="ovs",
            bridge_pattern="",
            ovs_bridge=_interface_name(ovs_bridge, "ovs_bridge", fail),
            explicit=True,
        )
    if ovs_bridge is not None:
        raise fail("ovs_bridge", f"is only used when private = 'ovs', not {mode!r}; remove it")
    if pattern is None:
        if mode == "bridge":
            raise fail(
                "private_bridge",
                "missing: private = 'bridge' needs the pattern naming the site's bridge "
                "for each VLAN, such as 'br{vlan}'",
            )
        pattern = ISOLATED_PATTERN
    if not isinstance(pattern, str):
        raise fail("private_bridge", f"expected a pattern such as 'br{{vlan}}', got {pattern!r}")
    if pattern.count(PLACEHOLDER) != 1:
        raise fail(
            "private_bridge",
            f"expected a pattern with {PLACEHOLDER} once, such as 'br{{vlan}}', got {pattern!r}: "
            "each VC's VLAN must give it a bridge of its own",
        )
    rest = pattern.replace(PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise fail("private_bridge", f"only {PLACEHOLDER} may be substituted, got {pattern!r}")
    longest = pattern.replace(PLACEHOLDER, str(vlans[1]))
    _interface_name(longest, "private_bridge", fail, pattern=pattern)
    return PrivateNetworkSetting(mode=mode, bridge_pattern=pattern, explicit=explicit)


def _interface_name(value: object, key: str, fail: Fail, *, pattern: str | None = None) -> str:
    """A Linux interface name: 1..15 characters, no '/', ':' or blanks."""
    if not isinstance(value, str) or not value:
        raise fail(key, f"expected an interface name such as 'ovsbr0', got {value!r}")
    given = f"{pattern!r} gives {value!r}" if pattern is not None else repr(value)
    if len(value) > IFNAME_MAX:
        raise fail(
            key,
            f"{given}: {len(value)} characters; Linux interface names have at most {IFNAME_MAX}",
        )
    if not _IFNAME.match(value):
        raise fail(
            key,
            f"{given}: an interface name takes letters, digits, '_', '.' and '-' (not first)",
        )
    return value
