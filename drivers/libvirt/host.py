"""What a libvirt host offers a domain definition: its emulator and whether KVM is usable.

Read from libvirt's capabilities XML by the engine driver (:mod:`.libvirt_engine`),
once per connection; kept apart because it is pure (XML in, HostInfo out).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lxml import etree

from pragmash.driver_api import HostInfo
from pragmash.vc.formats.xmlsafe import safe_parser


def _safe_xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"), safe_parser())


def kvm_usable(domain_types: Iterable[str]) -> bool:
    """Whether ``auto`` may choose KVM on this host.

    A real probe would have to boot a guest: on nested hosts ``/dev/kvm`` exists and
    libvirt offers ``kvm``, yet guests hang. So the rule is simple and overridable:
    ``PRAGMASH_KVM=1``/``0`` decides outright; otherwise KVM is usable when
    ``/dev/kvm`` exists, the engine offers domain type ``kvm`` and ``PRAGMASH_NO_KVM``
    is unset. Sites with broken KVM set ``domain_type = "qemu"`` or ``PRAGMASH_NO_KVM=1``.
    """
    forced = os.environ.get("PRAGMASH_KVM")
    if forced is not None and forced.strip() != "":
        return forced.strip().lower() in ("1", "yes", "true", "on")
    if os.environ.get("PRAGMASH_NO_KVM"):
        return False
    return Path("/dev/kvm").exists() and "kvm" in set(domain_types)


def host_info_from_capabilities(caps_xml: str) -> HostInfo:
    """HostInfo from libvirt's capabilities XML (hvm guests only).

    The emulator is the x86_64 hvm guest's (pragma_boot images are x86_64), or the
    first hvm guest's where there is no x86_64 (the test driver offers i686 only).
    """
    root = _safe_xml(caps_xml)
    arches: list[str] = []
    domain_types: list[str] = []
    emulators: dict[str, str] = {}
    for guest in root.findall("guest"):
        if (guest.findtext("os_type") or "").strip() != "hvm":
            continue
        for arch in guest.findall("arch"):
            arch_name = arch.get("name", "")
            if arch_name and arch_name not in arches:
                arches.append(arch_name)
            path = (arch.findtext("emulator") or "").strip()
            if path and arch_name not in emulators:
                emulators[arch_name] = path
            for domain in arch.findall("domain"):
                dtype = domain.get("type", "")
                if dtype and dtype not in domain_types:
                    domain_types.append(dtype)
    return HostInfo(
        emulator=emulators.get("x86_64") or next(iter(emulators.values()), None),
        kvm_usable=kvm_usable(domain_types),
        arches=tuple(arches),
        domain_types=tuple(domain_types),
    )
