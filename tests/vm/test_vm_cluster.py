"""Tier 3: a real cluster on qemu:///system, checked from inside the guests.

Builds a tiny busybox image (gzip-compressed like the seed's), a repository and a
site config, runs a recipe of the rocks6 shape through the CLI, then reads each
node's serial console: every guest prints the name, IP and MAC it found for
itself in /root/vc-out.xml, and those must match the ledger. vc-out.xml goes into
the three computes' disks with one libguestfs appliance launch. ``shutdown`` and
``clean`` must then leave no domain, overlay or lease behind. Guests send no
network traffic: user-mode interfaces whose links are never brought up.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import libvirt
import pytest
from support.vmimage import MARKER_SELF, MARKER_UP, build_test_image
from support.vmsite import (
    CONSOLE_SELF,
    boot_recipe,
    console_lines,
    remove_vmtest_domains,
    write_repository,
    write_site,
)

from pragmash.images.tools import appliance_launches, tool_runs
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.vm

RECIPE = boot_recipe(3, CONSOLE_SELF)


def test_cluster_boots_and_each_guest_knows_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    site_path = write_site(tmp_path, repo)
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    out, err = io.StringIO(), io.StringIO()
    conn = libvirt.open("qemu:///system")
    try:
        before = tool_runs()
        code = main([str(recipe), "--vcname", "vmtest", "--site", str(site_path)], out=out, err=err)
        assert code == 0, out.getvalue() + err.getvalue()
        runs = tool_runs() - before
        # one libguestfs appliance per boot step: one for the frontend, one for all 3 computes
        assert runs["guestfish"] == 2 and appliance_launches(runs) == 2, runs
        site = load_site(site_path, {})
        held = current_allocation(Ledger(site), "vmtest")
        assert held is not None and len(held.nodes) == 4
        temp = tmp_path / "tmp" / "vmtest"
        consoles = {}
        for lease in held.nodes:
            console = temp / f"{lease.name}.console.log"
            assert console_lines(console, MARKER_UP), f"{lease.name} never printed {MARKER_UP}"
            selves = console_lines(console, MARKER_SELF)
            consoles[lease.name] = console.read_text(errors="replace")
            # each guest found itself in /root/vc-out.xml by its own MAC
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in (re.search(r"name=(\S*) ip=(\S*) mac=(\S*)", s) for s in selves)
                if m
            }
            if lease.role == "compute":
                assert found.get(lease.macs[0]) == (lease.name, lease.private_ip), selves
            else:  # the frontend reports its public fqdn as its name
                assert found.get(lease.macs[0]) == (held.public.fqdn, lease.private_ip), selves
                assert found.get(lease.macs[1]) == (held.public.fqdn, lease.public_ip), selves
            dom = conn.lookupByName(lease.name)
            assert dom.isActive()
            assert lease.macs[0] in dom.XMLDesc()
        keep = os.environ.get("PRAGMASH_KEEP_CONSOLES")
        if keep:  # for a human to read what the guests printed
            Path(keep).write_text(
                "\n".join(f"== {name} ==\n{text}" for name, text in consoles.items())
            )
        # every node has its own small overlay, not a copy
        overlays = sorted((temp / "disks").glob("*.qcow2"))
        assert [p.stem for p in overlays] == sorted(n.name for n in held.nodes)
        assert all(p.stat().st_blocks * 512 < 4 * 1024 * 1024 for p in overlays)
        # shutdown (busybox may ignore ACPI: then it says what did not stop), then clean
        main(["shutdown", "vmtest", "--site", str(site_path), "--timeout", "5"], out=out, err=err)
        assert main(["clean", "vmtest", "--site", str(site_path)], out=out, err=err) == 0
        assert current_allocation(Ledger(site), "vmtest") is None
        names = {d.name() for d in conn.listAllDomains()}
        assert not {n.name for n in held.nodes} & names
        assert not temp.exists()
    finally:
        remove_vmtest_domains(conn)
        conn.close()
