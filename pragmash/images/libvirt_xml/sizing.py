"""A node's vCPUs and memory, and everything in its domain that must agree with them.

libvirt checks a domain's sizes against each other: the NUMA cells' CPUs against
``<vcpu>``, ``<cpu><topology>`` against the vCPU count, ``<vcpupin>`` ids, the
``<vcpus>`` list and ``current``; hot-plug memory devices against ``<maxMemory>``.
Allocation gives a compute a CPU count of its own (``cpus=`` in vc-out.xml) and
``--mem`` a memory size, so changing only ``<vcpu>`` or ``<memory>`` leaves a domain
that libvirt refuses (or, worse, accepts with a NUMA layout for another machine).
Each change here carries its consequences, so a template that was consistent for
its own sizes stays consistent for the node's.
"""

from __future__ import annotations

from lxml import etree

from pragmash.images.libvirt_xml.edit import drop_attr, remove

# devices that are hot-plugged memory: they need <maxMemory>, which --mem removes
_HOTPLUG_MEMORY_MODELS = ("dimm", "nvdimm", "virtio-mem", "virtio-pmem")

# libvirt's memory units, in KiB (the units <memory>/<cell memory> accept)
_KIB: dict[str, float] = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "kb": 1000 / 1024,
    "k": 1,
    "kib": 1,
    "mb": 1000**2 / 1024,
    "m": 1024,
    "mib": 1024,
    "gb": 1000**3 / 1024,
    "g": 1024**2,
    "gib": 1024**2,
    "tb": 1000**4 / 1024,
    "t": 1024**3,
    "tib": 1024**3,
}


def parse_cpuset(text: str) -> set[int]:
    """libvirt's cpuset syntax (``0-3,^2,5``) as the set of ids it names."""
    chosen: set[int] = set()
    excluded: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        target = excluded if part.startswith("^") else chosen
        part = part.lstrip("^")
        if "-" in part:
            low, high = part.split("-", 1)
            target.update(range(int(low), int(high) + 1))
        else:
            target.add(int(part))
    return chosen - excluded


def format_cpuset(ids: set[int]) -> str:
    """The shortest cpuset text for ``ids`` (ranges where they run on)."""
    ordered = sorted(ids)
    parts: list[str] = []
    start = prev = -2
    for i in [*ordered, -1]:
        if i == prev + 1:
            prev = i
            continue
        if start >= 0:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts)


def _cell_kib(cell: etree._Element) -> int:
    raw = (cell.get("memory") or "0").strip()
    factor = _KIB.get(cell.get("unit", "KiB").lower(), 1)
    try:
        return int(int(raw) * factor)
    except ValueError:
        return 0


def _trim_vcpu_sets(root: etree._Element, count: int) -> None:
    """Drop vCPU ids at or above ``count`` wherever ``<cputune>`` names them."""
    cputune = root.find("cputune")
    if cputune is None:
        return
    for pin in cputune.findall("vcpupin"):
        if int(pin.get("vcpu", "0")) >= count:
            remove(pin)
    for element in list(cputune):
        ids = element.get("vcpus")
        if ids is None:
            continue
        kept = {i for i in parse_cpuset(ids) if i < count}
        if kept:
            element.set("vcpus", format_cpuset(kept))
        else:
            remove(element)


def _fit_topology(root: etree._Element, count: int) -> None:
    """``<cpu><topology>``: keep its shape per socket where ``count`` fills whole sockets."""
    topology = root.find("cpu/topology")
    if topology is None:
        return
    per_socket = 1
    for attr in ("dies", "clusters", "cores", "threads"):
        per_socket *= int(topology.get(attr, "1"))
    if per_socket and count % per_socket == 0:
        topology.set("sockets", str(count // per_socket))
        return
    topology.set("sockets", str(count))
    for attr in ("dies", "clusters", "cores", "threads"):
        if topology.get(attr) is not None:
            topology.set(attr, "1")


def _numa_cells(root: etree._Element) -> list[etree._Element]:
    return root.findall("cpu/numa/cell")


def _reshape_numa(root: etree._Element, count: int) -> None:
    """Spread ``count`` vCPUs over the template's NUMA cells, dropping cells left empty.

    A dropped cell's memory goes to the last kept cell (the domain's memory is the
    cells' sum), and every reference to a dropped cell (distances, numatune) goes too.
    """
    cells = _numa_cells(root)
    if not cells:
        return
    kept = cells[: max(1, min(len(cells), count))]
    dropped = cells[len(kept) :]
    kept_ids = {cell.get("id", str(i)) for i, cell in enumerate(kept)}
    extra_kib = sum(_cell_kib(c) for c in dropped)
    for cell in dropped:
        remove(cell)
    if extra_kib:
        last = kept[-1]
        last.set("memory", str(_cell_kib(last) + extra_kib))
        last.set("unit", "KiB")
    base, spare = divmod(count, len(kept))
    first = 0
    for i, cell in enumerate(kept):
        size = base + (1 if i < spare else 0)
        cell.set("cpus", f"{first}-{first + size - 1}" if size > 1 else str(first))
        first += size
        for sibling in cell.findall("distances/sibling"):
            if sibling.get("id") not in kept_ids:
                remove(sibling)
    for memnode in root.findall("numatune/memnode"):
        if memnode.get("cellid") not in kept_ids:
            remove(memnode)


def set_vcpus(root: etree._Element, count: int) -> None:
    """The node's vCPU count, with everything libvirt checks against it.

    Every allocated vCPU is online (``current`` and the per-vCPU ``<vcpus>`` list
    go: allocation counted them all); pins and tuning of vCPUs the node does not have
    go; topology and NUMA cells are reshaped to the count.
    """
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = etree.Element("vcpu")
        name = root.find("name")
        if name is not None:
            name.addnext(vcpu)
        else:
            root.insert(0, vcpu)
    written = (vcpu.text or "").strip()
    vcpu.text = str(count)
    drop_attr(vcpu, "current")
    for listed in root.findall("vcpus"):
        remove(listed)
    _trim_vcpu_sets(root, count)
    _fit_topology(root, count)
    numa_cpus = sum(len(parse_cpuset(c.get("cpus", ""))) for c in _numa_cells(root))
    if written != str(count) or (numa_cpus and numa_cpus != count):
        _reshape_numa(root, count)


def set_memory(root: etree._Element, mib: int) -> None:
    """``--mem``: the domain's memory in MiB, with NUMA cells and hot-plug to match.

    The cells are scaled so they add up to the new size (libvirt takes the domain's
    memory from them); ``<maxMemory>`` goes, and with it the hot-plug memory devices
    that need it.
    """
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        if element is None:
            if tag == "currentMemory":
                continue  # libvirt takes <memory> for both when it is absent
            element = etree.Element(tag)
            anchor = root.find("vcpu")
            if anchor is None:
                anchor = root.find("name")
            if anchor is not None:
                anchor.addprevious(element)
            else:
                root.insert(0, element)
        element.attrib.clear()
        element.set("unit", "MiB")
        element.text = str(mib)
    for maximum in root.findall("maxMemory"):
        remove(maximum)  # a hot-plug ceiling below the new size would be refused
    for device in root.findall("devices/memory"):
        if device.get("model") in _HOTPLUG_MEMORY_MODELS:
            remove(device)
    cells = _numa_cells(root)
    if not cells:
        return
    total = sum(_cell_kib(c) for c in cells) or len(cells)
    left = mib * 1024
    for i, cell in enumerate(cells):
        share = left if i == len(cells) - 1 else max(1, mib * 1024 * _cell_kib(cell) // total)
        share = min(share, left - (len(cells) - i - 1))
        cell.set("memory", str(share))
        cell.set("unit", "KiB")
        left -= share
