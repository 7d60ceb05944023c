"""Tier 3: a 2013-dialect driver folder fixes and prepares real disks that really boot.

The VC's <driver> is tests/data/drivers_2013/pb2013_client, the enforcing double of a
pragma_boot v0.2 rocks6_client folder, told (``edit-images``) to change the images as
the real scripts did, with libguestfs: pre_fix_driver writes /root/pre_fix.txt, which
post_fix_driver must find on the path it is given (the same one) and replaces; pre_boot
copies VC_OUT into /root, as v0.2's did. The busybox guests then print the vc-out.xml
they found and the node they found themselves to be: only pre_boot put it there.

The second test makes tests/data/drivers_ve/pb2013_ve, a 2013 VE folder, the engine
(``[engine] driver = "scripts"``): its fix_driver edits the real image between
pre_fix_driver and post_fix_driver, and its boot starts the disk it is given.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import libvirt
import pytest
from support.dialects import PB2013, calls
from support.keys import KEY
from support.vmimage import DEFAULT_INIT, MARKER_SELF, build_test_image
from support.vmsite import console_lines, remove_vmtest_domains, write_repository, write_site

from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.vm

RECIPE = """\
allocate 1
fix all via none
boot frontend
boot compute
wait all console "PRAGMASH-SELF name=" timeout 3m
"""

VE_DATA = Path(__file__).parents[1] / "data" / "drivers_ve"


def test_a_2013_folder_fixes_and_pre_boots_real_disks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image)
    vc_in = repo / "vmtest" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "pb2013_client"))
    site_path = write_site(tmp_path, repo)
    site_path.write_text(
        site_path.read_text().replace(
            "[up]",
            '[drivers]\nfolders = ["drivers"]\ndialects = { pb2013_client = "pragma_boot-2013" }\n'
            "\n[up]",
        )
    )
    folder = tmp_path / "drivers" / "pb2013_client"
    shutil.copytree(PB2013, folder)
    (folder / "edit-images").write_text("change the images, as the real scripts did\n")
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    out, err = io.StringIO(), io.StringIO()
    conn = libvirt.open("qemu:///system")
    try:
        code = main(
            [str(recipe), "--vcname", "vmtest", "--site", str(site_path), "--key", str(key)],
            out=out,
            err=err,
        )
        print(out.getvalue() + err.getvalue())
        print((folder / "calls.log").read_text())
        assert code == 0, out.getvalue() + err.getvalue()
        held = current_allocation(Ledger(load_site(site_path, {})), "vmtest")
        assert held is not None
        logged = calls(folder)
        assert [s for s, _, _ in logged[:2]] == ["pre_fix_driver", "post_fix_driver"]
        assert logged[0][2] == logged[1][2] and logged[0][1] == logged[1][1]
        boots = {a[2]: a for s, _, a in logged if s == "pre_boot"}
        compute = held.computes[0]
        assert sorted(boots) == sorted([held.public.fqdn, compute.name])
        temp = tmp_path / "tmp" / "vmtest"
        for lease in held.nodes:
            console = temp / f"{lease.name}.console.log"
            selves = console_lines(console, MARKER_SELF)
            print(f"== {lease.name}\n" + "\n".join(selves))
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in (re.search(r"name=(\S*) ip=(\S*) mac=(\S*)", s) for s in selves)
                if m
            }
            name = lease.name if lease.role == "compute" else held.public.fqdn
            assert found.get(lease.macs[0]) == (name, lease.private_ip), selves
            assert Path(boots[name][3]).read_text() == key.read_text()
        assert main(["clean", "vmtest", "--site", str(site_path)], out=out, err=err) == 0
    finally:
        remove_vmtest_domains(conn)
        conn.close()


SELF_FILES = "PRAGMASH-FILE"
#: The test guest's init, also printing what each stage left in /root (one line each).
FILES_INIT = DEFAULT_INIT.replace(
    "while true; do sleep 3600; done",
    "for f in /root/fix_driver.txt /root/post_fix.txt /root/pre_boot.txt; do\n"
    f'    [ -f "$f" ] && echo "{SELF_FILES} $f $(cat "$f")" > "$out"\n'
    "done\n"
    "while true; do sleep 3600; done",
)

VE_RECIPE = """\
allocate 2
fix all via virt-v2v
boot frontend
boot compute
"""


def test_a_2013_ve_folder_fixes_with_its_fix_driver_and_boots_real_disks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[engine] driver = "scripts" with a 2013 VE folder: fix_driver edits the real image
    between pre_fix_driver and post_fix_driver, the site's boot starts the disk it is
    given, and every guest prints what each stage left in its /root."""
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    image = build_test_image(tmp_path / "image", init_script=FILES_INIT)
    repo = write_repository(tmp_path, image)
    vc_in = repo / "vmtest" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "pb2013_client"))
    site_path = write_site(tmp_path, repo)
    site_path.write_text(
        site_path.read_text()
        .replace('driver = "libvirt"', 'driver = "scripts"')
        .replace(
            "[up]",
            '[drivers]\nfolders = ["drivers"]\nve = "pb2013_ve"\n'
            'dialects = { pb2013_client = "pragma_boot-2013", pb2013_ve = "pragma_boot-2013" }\n'
            "\n[up]",
        )
    )
    drivers = tmp_path / "drivers"
    client, ve = drivers / "pb2013_client", drivers / "pb2013_ve"
    shutil.copytree(PB2013, client)
    shutil.copytree(VE_DATA / "pb2013_ve", ve)
    shutil.copy(VE_DATA / "pbtest.py", drivers / "pbtest.py")
    for folder in (client, ve):
        (folder / "edit-images").write_text("change the images, as the real scripts did\n")
    recipe = tmp_path / "vm.prg"
    recipe.write_text(VE_RECIPE)
    out, err = io.StringIO(), io.StringIO()
    conn = libvirt.open("qemu:///system")
    try:
        code = main([str(recipe), "--vcname", "vmtest", "--site", str(site_path)], out=out, err=err)
        print(out.getvalue() + err.getvalue())
        print((ve / "calls.log").read_text())
        assert code == 0, out.getvalue() + err.getvalue()
        held = current_allocation(Ledger(load_site(site_path, {})), "vmtest")
        assert held is not None
        fixes = [a for s, _, a in calls(ve) if s == "fix_driver"]
        assert [a[1] for a in fixes] == ["eth0.2,eth1,"]  # one image: the frontend's domain
        temp = tmp_path / "tmp" / "vmtest"
        for lease in held.nodes:
            console = temp / f"{lease.name}.console.log"
            files = console_lines(console, SELF_FILES, timeout=120)
            selves = console_lines(console, MARKER_SELF)
            print(f"== {lease.name}\n" + "\n".join(files + selves))
            said = {line.split()[1]: line.split(maxsplit=2)[2] for line in files}
            host = held.public.fqdn if lease.role == "frontend" else lease.name
            assert said == {
                "/root/fix_driver.txt": "fix_driver was here",
                "/root/post_fix.txt": "restored",
                "/root/pre_boot.txt": f"{lease.role} {host}",
            }, files
            found = {
                m.group(3): (m.group(1), m.group(2))
                for m in (re.search(r"name=(\S*) ip=(\S*) mac=(\S*)", s) for s in selves)
                if m
            }
            assert found.get(lease.macs[0]) == (host, lease.private_ip), selves
    finally:
        remove_vmtest_domains(conn)
        conn.close()
