"""The site config: one TOML file saying what this site has and how to reach it.

Loaded from ``--site FILE`` or ``$PRAGMASH_SITE``; with neither, the embedded demo
site (``pragmash/demo/site.toml``: libvirt's ``test:///default`` engine and the
bundled demo repository). Unknown keys and bad values are errors naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DomainType = Literal["kvm", "qemu", "auto"]
Staging = Literal["overlay", "copy"]


@dataclass(frozen=True)
class PublicAddress:
    """One public address the site can give a VC's frontend."""

    ip: str
    fqdn: str


@dataclass(frozen=True)
class SiteConfig:
    """Everything a site decides. Paths are absolute (relative ones resolve next to the file)."""

    source: str  # the file it came from, or "embedded demo site"
    engine: str
    uri: str
    domain_type: DomainType
    public_pool: tuple[PublicAddress, ...]
    netmask: str
    gateway: str
    dns: str
    dns_search: str
    dns_domain: str
    vlan_first: int
    vlan_last: int
    mac_prefix: str  # three octets, e.g. "7a:77:6e"
    cpu_capacity: int
    cpu_reserve: int
    smp: bool  # may pack several CPUs into one compute node
    max_cpus_per_node: int
    temp_dir: Path
    state_dir: Path
    image_cache: Path
    repository: Path | None  # default --base_path; None means the bundled demo repository
    staging: Staging = "overlay"
    boot_parallelism: int = 4
    bridges: dict[str, str] = field(default_factory=dict)  # vc-in bridge -> site network
    default_network: str | None = None  # site network for bridges not in `bridges`
    driver_dirs: tuple[Path, ...] = ()
    recipe_dirs: tuple[Path, ...] = ()
    allow_run: bool = False
    embedded: bool = False

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"
