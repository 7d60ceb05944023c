"""The site config's ``[delivery]`` section: how nodes receive their settings.

A distro driver says how its images take a node's settings (vc-out.xml, addresses,
hostname, keys): ``disk``, written into the node's disk before it boots (one
libguestfs appliance launch per boot step), or ``seed``, a NoCloud ``cidata`` volume
attached to the node that cloud-init reads at first boot (no appliance, the disk
untouched). A site whose images differ says so per driver or per VC, the VC winning::

    [delivery]
    driver.ubuntu_cloud = "disk"    # these Ubuntu images have no cloud-init
    vc.calit2 = "seed"              # but this VC's do

Kept out of site.py so the section's rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pragmash.errors import ConfigError
from pragmash.vc.formats.names import NAME_PATTERN

Delivery = Literal["disk", "seed"]
DELIVERIES: tuple[Delivery, ...] = ("disk", "seed")


@dataclass(frozen=True)
class DeliveryChoice:
    """What ``[delivery]`` says: per VC name and per distro driver name."""

    vcs: dict[str, Delivery] = field(default_factory=dict)
    drivers: dict[str, Delivery] = field(default_factory=dict)
    source: str = ""

    def chosen(self, vcname: str, driver: str) -> tuple[Delivery, str] | None:
        """The site's choice for the VC, and the setting that made it; None: the driver's."""
        if vcname in self.vcs:
            return self.vcs[vcname], f"[delivery] vc.{vcname} ({self.source})"
        if driver in self.drivers:
            return self.drivers[driver], f"[delivery] driver.{driver} ({self.source})"
        return None


def read_delivery(table: Any, source: str) -> DeliveryChoice:
    """``[delivery]`` checked; every mistake names the key and what was expected."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table [delivery]", file=source, key="[delivery]")
    parts: dict[str, dict[str, Delivery]] = {"vc": {}, "driver": {}}
    for kind, entries in table.items():
        if kind not in parts:
            raise ConfigError(
                f'unknown key {kind!r}; expected vc.NAME = "seed" or driver.NAME = "disk"',
                file=source,
                key=f"[delivery] {kind}",
            )
        if not isinstance(entries, dict):
            raise ConfigError(
                f'expected {kind}.NAME = "seed" or "disk"',
                file=source,
                key=f"[delivery] {kind}",
            )
        for name, value in entries.items():
            key = f"[delivery] {kind}.{name}"
            if not NAME_PATTERN.match(name):
                raise ConfigError(f"{name!r} is not a {kind} name", file=source, key=key)
            if value not in DELIVERIES:
                raise ConfigError(
                    f'expected "seed" (a NoCloud cidata volume) or "disk" (written into the '
                    f"disk before boot), got {value!r}",
                    file=source,
                    key=key,
                )
            parts[kind][name] = cast(Delivery, value)
    return DeliveryChoice(parts["vc"], parts["driver"], source)
