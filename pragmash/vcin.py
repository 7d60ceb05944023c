"""vc-in.xml: a VC's description, read exactly as pragma_boot's sites wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class InterfaceTemplate:
    """One ``<interface>`` of a template domain, as written."""

    type: str
    source: str | None  # the bridge or network name
    mac: str | None
    model: str | None


@dataclass(frozen=True)
class NodeTemplate:
    """A ``<frontend>`` or ``<compute>``: the libvirt ``<domain>`` kept unchanged as text."""

    role: Literal["frontend", "compute"]
    domain_xml: str
    name: str
    domain_type: str
    vcpus: int
    memory_kib: int
    interfaces: tuple[InterfaceTemplate, ...]
    disk_sources: tuple[str, ...]  # as written in <source file=…>
    disk_paths: tuple[Path, ...]  # resolved against the vc-in.xml's folder


@dataclass(frozen=True)
class VcIn:
    path: Path
    vc_type: str
    engine: str
    virt_type: str
    arch: str
    driver: str
    frontend: NodeTemplate
    compute: NodeTemplate | None
    boot_wait_seconds: int | None  # <boot_dependency><wait type='clock' value=…>
    private_ip: str
    private_netmask: str
    frontend_public_iface: str | None
