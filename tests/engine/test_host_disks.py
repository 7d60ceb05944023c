"""The boot step's hand-off of node disks to ``storage = "pool"`` hosts (unit tier).

The storage API itself is tested against a real second libvirtd
(tests/vm/test_host_storage.py, tests/vm/test_vm_two_hosts.py); here a recording fake
stands in for it, to pin what :class:`HostDisks` asks of it and hands the engine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.multihost import Host, write_hosts_site

from pragmash import domain_states
from pragmash.driver_api import HostVolume, NodePlan, StageContext
from pragmash.engine.hosts.disks import HostDisks, console_log_on
from pragmash.errors import ConfigError, StepError
from pragmash.vc.config.site import load_site


class FakeImages:
    """Records calls; the base is 'there' after the first put_base."""

    def __init__(self) -> None:
        self.bases: list[tuple[Path, str, str]] = []
        self.disks: list[tuple[str, Path, str]] = []

    def put_base(self, local: Path, digest: str, fmt: str, ctx: StageContext) -> HostVolume:
        first = not self.bases
        self.bases.append((local, digest, fmt))
        return HostVolume("pragmash", f"b-{digest[:8]}", f"/pool/b-{digest[:8]}", fmt, first)

    def put_node_disk(
        self, node_name: str, overlay: Path, base: HostVolume, ctx: StageContext
    ) -> HostVolume:
        self.disks.append((node_name, overlay, base.path))
        return HostVolume("pragmash", f"{node_name}.qcow2", f"/pool/{node_name}.qcow2", "qcow2")

    def find_node_disk(self, node_name: str) -> HostVolume | None:
        found = [d for d in self.disks if d[0] == node_name]
        if not found:
            return None
        return HostVolume("pragmash", f"{node_name}.qcow2", f"/pool/{node_name}.qcow2", "qcow2")

    def remove_node_disks(self, node_names: Sequence[str]) -> list[str]:
        return []


class FakeEngine:
    name = "fake"

    def __init__(self) -> None:
        self.images = FakeImages()
        self.states: dict[str, str] = {}

    def state(self, name: str) -> str:
        return self.states.get(name, domain_states.ABSENT)

    def host_images(
        self, pool: str, pool_path: str, work_dir: Path, *, lock_dir: Path
    ) -> FakeImages:
        return self.images

    def remove_host_file(self, path: str) -> bool:  # the rest of driver_api.HostStorage
        return False


def _site(tmp_path: Path, storage: str = "pool", extra: str = "") -> Path:
    path = write_hosts_site(tmp_path, [Host("h1", 4), Host("h2", 4)])
    text = path.read_text()
    marker = 'name = "h2"\n'
    assert marker in text
    path.write_text(text.replace(marker, f'{marker}storage = "{storage}"\n{extra}', 1))
    return path


def _node(name: str, disk: Path) -> NodePlan:
    return NodePlan(
        name=name,
        role="compute",
        index=0,
        cpus=1,
        template_xml="<domain/>",
        macs=(),
        networks=(),
        disks=(str(disk),),
        domain_type="qemu",
        console_log=f"/head/tmp/{name}.console.log",
    )


def _overlay(tmp_path: Path) -> Path:
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 65536)
    overlay = tmp_path / "n.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
        check=True,
    )
    return overlay


def test_a_node_on_a_pool_host_boots_from_its_volume(tmp_path: Path) -> None:
    site = load_site(_site(tmp_path), {})
    engine = FakeEngine()
    notes: list[str] = []
    ctx = StageContext("vc", tmp_path, tmp_path / "vc-out.xml", note=notes.append)
    disks = HostDisks(site, lambda name: "h2", lambda host: engine, tmp_path / "up")  # type: ignore[arg-type, return-value]
    overlay = _overlay(tmp_path)

    plans = [disks.place(_node(f"c-{i}", overlay), ctx) for i in range(2)]

    assert [p.disks for p in plans] == [("/pool/c-0.qcow2",), ("/pool/c-1.qcow2",)]
    host = site.hosts[1]
    assert plans[0].console_log == console_log_on(host, "c-0")
    assert plans[0].console_log == "/var/lib/libvirt/images/pragmash/c-0.console.log"
    assert {b[0] for b in engine.images.bases} == {tmp_path / "base.raw"}
    assert {b[2] for b in engine.images.bases} == {"raw"}
    assert len([n for n in notes if "sent to pool pragmash once" in n]) == 1

    # booted again (a repeated `boot`): a defined domain's disk is never sent over
    engine.states["c-0"] = domain_states.RUNNING
    again = disks.place(_node("c-0", overlay), ctx)
    assert again.disks == ("/pool/c-0.qcow2",)
    assert [d[0] for d in engine.images.disks] == ["c-0", "c-1"]
    # its domain gone (undefined by hand): the disk is sent anew
    engine.states["c-0"] = domain_states.ABSENT
    disks.place(_node("c-0", overlay), ctx)
    assert [d[0] for d in engine.images.disks] == ["c-0", "c-1", "c-0"]


def test_a_node_on_a_shared_host_keeps_the_head_nodes_paths(tmp_path: Path) -> None:
    site = load_site(_site(tmp_path, storage="shared"), {})
    engine = FakeEngine()
    ctx = StageContext("vc", tmp_path, tmp_path / "vc-out.xml")
    disks = HostDisks(site, lambda name: "h2", lambda host: engine, tmp_path / "up")  # type: ignore[arg-type, return-value]
    node = _node("c-0", _overlay(tmp_path))
    assert disks.place(node, ctx) is node
    assert engine.images.bases == []


def test_a_standalone_disk_cannot_go_to_a_pool_host(tmp_path: Path) -> None:
    site = load_site(_site(tmp_path), {})
    ctx = StageContext("vc", tmp_path, tmp_path / "vc-out.xml")
    disks = HostDisks(site, lambda name: "h2", lambda host: FakeEngine(), tmp_path / "up")  # type: ignore[arg-type, return-value]
    raw = tmp_path / "copy.raw"
    raw.write_bytes(b"\0" * 4096)
    with pytest.raises(StepError, match="has no base") as caught:
        disks.place(_node("c-0", raw), ctx)
    assert caught.value.hint is not None and 'staging = "overlay"' in caught.value.hint


def test_pool_path_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pool_path"):
        load_site(_site(tmp_path, extra='pool_path = "images/pragmash"\n'), {})
    site = load_site(_site(tmp_path, extra='pool_path = "/srv/vm"\n'), {})
    assert site.hosts[1].pool_path == "/srv/vm"
