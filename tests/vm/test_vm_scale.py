"""Tier 3: ``pragmash scale`` on a running VC on qemu:///system, checked from inside the guests.

A 1+1 VC of busybox guests is booted by a recipe, grown by two computes, then shrunk
by three (every compute, the first one too; the frontend keeps running). The new computes must come up and print, from their own /root/vc-out.xml,
their own entry (found by their MAC) in their own file; their disks must be
overlays on the base compute-0's is on, all injected with one libguestfs launch.
Shrinking must leave no domain, disk or lease of the removed computes behind.
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
    boot_recipe,
    console_lines,
    remove_vmtest_domains,
    write_repository,
    write_site,
)

from pragmash.images.staging import backing_of
from pragmash.images.tools import appliance_launches, tool_runs
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcout import read_vc_out

pytestmark = pytest.mark.vm

RECIPE = boot_recipe(1)


def test_a_running_vc_grows_by_two_then_shrinks_by_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    site_path = write_site(tmp_path, repo)
    site = load_site(site_path, {})
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    temp = tmp_path / "tmp" / "vmtest"
    conn = libvirt.open("qemu:///system")
    shown: list[str] = []

    def cli(*args: str) -> int:
        out, err = io.StringIO(), io.StringIO()
        code = main([*args, "--site", str(site_path)], out=out, err=err)
        shown.append(f"$ pragmash {' '.join(args)}\n{out.getvalue()}{err.getvalue()}")
        assert code == 0, shown[-1]
        return code

    try:
        cli(str(recipe), "--vcname", "vmtest")
        first = current_allocation(Ledger(site), "vmtest")
        assert first is not None and [n.name for n in first.computes] == ["vmtest-compute-0"]

        before = tool_runs()
        cli("scale", "vmtest", "+2", "--timeout", "300")
        runs = tool_runs() - before
        # the new computes' vc-out.xml went in with one appliance launch for both
        assert runs["guestfish"] == 1 and appliance_launches(runs) == 1, runs
        held = current_allocation(Ledger(site), "vmtest")
        assert held is not None
        assert [n.name for n in held.computes] == [f"vmtest-compute-{i}" for i in range(3)]
        assert held.nodes[:2] == first.nodes  # the old nodes kept their leases
        vc_out = read_vc_out(temp / "vc-out.xml")
        assert [(c.name, c.ip, c.mac) for c in vc_out.computes] == [
            (n.name, n.private_ip, n.macs[0]) for n in held.computes
        ]
        base = backing_of(temp / "disks" / "vmtest-compute-0.qcow2")
        assert base is not None
        for lease in held.computes[1:]:
            assert backing_of(temp / "disks" / f"{lease.name}.qcow2") == base
            console = temp / f"{lease.name}.console.log"
            assert console_lines(console, MARKER_UP), f"{lease.name} never printed {MARKER_UP}"
            selves = console_lines(console, MARKER_SELF)
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in (re.search(r"name=(\S*) ip=(\S*) mac=(\S*)", s) for s in selves)
                if m
            }
            # the guest found itself in its /root/vc-out.xml by its own MAC ...
            assert found.get(lease.macs[0]) == (lease.name, lease.private_ip), selves
            # ... which is its own (printed whole), as pragma_boot gave each compute
            text = console.read_text(errors="replace")
            assert f'<compute name="{lease.name}" gw="{held.frontend.private_ip}">' in text
            assert (temp / f"{lease.name}.xml").is_file()
            assert conn.lookupByName(lease.name).isActive()
        assert conn.lookupByName("vmtest-compute-0").isActive()

        cli("scale", "vmtest", "-3")  # as the issue asks: +2 then -3, every compute gone
        shrunk = current_allocation(Ledger(site), "vmtest")
        assert shrunk is not None and shrunk.nodes == first.nodes[:1]  # the frontend's lease
        names = {d.name() for d in conn.listAllDomains()}
        assert "vmtest-frontend" in names
        assert not {f"vmtest-compute-{i}" for i in range(3)} & names
        assert conn.lookupByName("vmtest-frontend").isActive()  # never touched
        assert sorted(p.name for p in (temp / "disks").glob("*.qcow2")) == ["vmtest-frontend.qcow2"]
        assert read_vc_out(temp / "vc-out.xml").computes == ()
        assert not list(temp.glob("vmtest-compute-*.xml"))  # their own files went with them
        cli("status", "vmtest")
        main(["shutdown", "vmtest", "--site", str(site_path), "--timeout", "5"])
        cli("clean", "vmtest")
    finally:
        keep = os.environ.get("PRAGMASH_KEEP_SCALE")
        if keep:  # the commands' output, for a human to read
            Path(keep).write_text("\n".join(shown))
        remove_vmtest_domains(conn)
        conn.close()
