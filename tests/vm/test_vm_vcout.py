"""Tier 3: every node of a real VC boots with the vc-out PRAGMA images can configure from.

A 1+2 VC of busybox guests (vmimage.py) is booted by a recipe on qemu:///system with
``--key``, then grown by ``scale +1``. Each guest prints its /root/vc-out.xml on its
serial console; after the run the domains are stopped and each node's
/root/vc-out.xml is read back from its own disk (one read-only guestfish for all of
them). tests/support/vcoutreader.py (vc-out-parser's decisions) must find, for every node,
before and after the scale: the right role, host name, interfaces (matched by the
node's own MACs, the gateway on the right one), /etc/hosts entries, the frontend's
/tmp/machinefile (a line per compute CPU), the key and the DNS server. The frontend
keeps the file it booted with; the VC's current whole file on the head node lists the
new compute too. ``PRAGMASH_KEEP_VCOUT=FILE`` writes every node's file there.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import libvirt
import pytest
from support.vcoutreader import GuestConfig, Interface, parse
from support.vmimage import build_test_image
from support.vmsite import boot_recipe, remove_vmtest_domains, write_repository, write_site

from pragmash.store.allocation import Allocation, NodeLease, current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import SiteConfig, load_site

pytestmark = pytest.mark.vm

RECIPE = boot_recipe(2)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzbY2o0Ck6+0dTt0zmw1F0wkwFEDyCnbHMm4L7tFXnF vmtest"
LOCALHOST = "127.0.0.1\tlocalhost.localdomain localhost"


def expected(held: Allocation, node: NodeLease, site: SiteConfig) -> GuestConfig:
    """What vc-out-parser must configure on ``node`` of ``held``, from the ledger alone."""
    fe = held.frontend
    fqdn = held.public.fqdn
    if node.role == "compute":
        return GuestConfig(
            role="compute",
            hostname=f"{node.name}.local",
            interfaces=(
                Interface(
                    "private", node.private_ip, "255.255.0.0", node.macs[0], "1500", fe.private_ip
                ),
            ),
            hosts=(
                LOCALHOST,
                f"{node.private_ip}\t{node.name}.local {node.name}",
                f"{fe.private_ip}\t{fqdn} {fqdn.split('.')[0]}",
            ),
            machinefile=(),
            key=KEY,
            dns=(site.dns,),
        )
    return GuestConfig(
        role="frontend",
        hostname=fqdn,
        interfaces=(
            Interface("public", held.public.ip, site.netmask, fe.macs[1], "1500", site.gateway),
            Interface("private", fe.private_ip, "255.255.0.0", fe.macs[0], "1500", None),
        ),
        hosts=(
            LOCALHOST,
            f"{held.public.ip}\t{fqdn}",
            f"{fe.private_ip}\t{fe.name}.local {fe.name}",
            *(f"{c.private_ip}\t{c.name}.local {c.name}" for c in held.computes),
        ),
        machinefile=tuple(c.name for c in held.computes for _ in range(c.cpus)),
        key=KEY,
        dns=(site.dns,),
    )


def console_vc_out(console: Path, timeout: float = 120.0) -> str:
    """The /root/vc-out.xml the guest printed on its serial console at boot."""
    deadline = time.monotonic() + timeout
    while True:
        text = console.read_text(errors="replace").replace("\r", "") if console.exists() else ""
        start = text.find("<?xml")
        end = text.find("</vc>", start)
        if start >= 0 and end >= 0:
            return text[start : end + len("</vc>")] + "\n"
        assert time.monotonic() < deadline, f"{console}: no vc-out.xml printed:\n{text[-2000:]}"
        time.sleep(1)


def read_from_disks(disks: dict[str, Path]) -> dict[str, str]:
    """Each disk's /root/vc-out.xml, all disks in one read-only libguestfs appliance."""
    argv = ["guestfish", "--ro"]
    commands: list[str] = ["run"]
    for i, (name, disk) in enumerate(disks.items()):
        argv += ["--format=qcow2", "-a", str(disk)]
        device = f"/dev/sd{chr(ord('a') + i)}1"
        commands += [f"echo @@{name}", f"mount-ro {device} /", "cat /root/vc-out.xml", "umount-all"]
    out = subprocess.run(
        argv, input="\n".join(commands) + "\n", capture_output=True, text=True, check=True
    ).stdout
    files: dict[str, str] = {}
    for chunk in out.split("@@")[1:]:
        name, _, text = chunk.partition("\n")
        files[name] = text
    return files


def check_node(text: str, held: Allocation, node: NodeLease, site: SiteConfig) -> None:
    got = parse(text, macs=node.macs)
    assert got == expected(held, node, site), f"{node.name}:\n{text}"


def test_each_node_configures_itself_from_its_own_vc_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    site_path = write_site(tmp_path, repo)
    site = load_site(site_path, {})
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    temp = tmp_path / "tmp" / "vmtest"
    conn = libvirt.open("qemu:///system")
    shown: list[str] = []

    def cli(*args: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        code = main([*args, "--site", str(site_path)], out=out, err=err)
        shown.append(f"$ pragmash {' '.join(args)}\n{out.getvalue()}{err.getvalue()}")
        assert code == 0, shown[-1]

    booted: dict[str, str] = {}
    try:
        cli(str(recipe), "--vcname", "vmtest", "--key", str(key))
        before = current_allocation(Ledger(site), "vmtest")
        assert before is not None and len(before.computes) == 2
        assert "under TCG" in shown[-1]  # the site says domain_type = "qemu": no KVM anywhere
        for node in before.nodes:
            booted[node.name] = console_vc_out(temp / f"{node.name}.console.log")
            own = temp / ("vc-out.xml" if node.role == "frontend" else f"{node.name}.xml")
            assert booted[node.name] == own.read_text(), node.name  # the node's own file
            check_node(booted[node.name], before, node, site)

        cli("scale", "vmtest", "+1", "--timeout", "300")
        after = current_allocation(Ledger(site), "vmtest")
        assert after is not None and len(after.computes) == 3
        new = after.computes[-1]
        booted[new.name] = console_vc_out(temp / f"{new.name}.console.log")
        assert booted[new.name] == (temp / f"{new.name}.xml").read_text()
        check_node(booted[new.name], after, new, site)
        # the head node's files are the VC as it is now: what a refresh would give each node
        for node in after.nodes:
            own = temp / ("vc-out.xml" if node.role == "frontend" else f"{node.name}.xml")
            check_node(own.read_text(), after, node, site)

        # read back from the disks: each node still holds the file it booted with
        for node in after.nodes:
            conn.lookupByName(node.name).destroy()
        on_disk = read_from_disks({n.name: temp / "disks" / f"{n.name}.qcow2" for n in after.nodes})
        assert sorted(on_disk) == sorted(n.name for n in after.nodes)
        for node in before.nodes:  # the frontend knows the computes it booted with
            assert on_disk[node.name].strip() == booted[node.name].strip(), node.name
            check_node(on_disk[node.name], before, node, site)
        check_node(on_disk[new.name], after, new, site)
        cli("clean", "vmtest")
    finally:
        keep = os.environ.get("PRAGMASH_KEEP_VCOUT")
        if keep:  # for a human to read: each node's file, then the commands' output
            Path(keep).write_text(
                "".join(f"== {name}: /root/vc-out.xml ==\n{text}" for name, text in booted.items())
                + "\n".join(shown)
            )
        remove_vmtest_domains(conn)
        conn.close()
