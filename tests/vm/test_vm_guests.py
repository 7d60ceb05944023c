"""Tier 3 (slow): inside real guests through their QEMU guest agent: ``exec`` and ``refresh``.

A frontend-only VC of the stock Debian 12 guest (cloud-init and qemu-guest-agent,
nothing of pragmash; the bundled ``cloud_init`` driver seeds it) runs a recipe whose
``exec`` statements run inside the frontend: its output is the step's, and the file
the command wrote is read back through the agent by the test itself. Then ``scale +1``
boots a compute and refreshes the running nodes: the frontend's ``/root/vc-out.xml``,
read back through the agent, now lists the new compute, and the recipe's ``on grow``
handler ran inside the frontend after that (the file it wrote from the new vc-out).
``pragmash refresh`` puts a file a guest's admin broke back as the ledger says it is,
on both nodes; ``scale -1``: the frontend's file no longer names the compute, and the
``on shrink`` handler saw that.

Guests talk only inside the network namespace scripts/test made for libvirtd.
"""

from __future__ import annotations

import time
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli_merged
from support.debianvc import write_debian_vc
from support.distroimage import distro_image_path
from support.guestagent import guest_run
from support.vmsite import remove_vmtest_domains, write_site

from pragmash.vc.formats.vcout import compute_vc_out_path, read_vc_out

IMAGE = distro_image_path()
VC = "vmci"

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.guest_net]

RECIPE = """\
allocate
set cloud_config = "{extra}"
boot all
wait all up timeout 20m
exec frontend "cloud-init status --wait" timeout 15m
exec frontend "sh -c 'hostname -f | tee /root/exec-ran; echo to-stderr >&2'"
on grow exec frontend "sh -c 'grep -o vmci-compute-[0-9] /root/vc-out.xml > /root/grew'"
on shrink exec frontend "sh -c 'grep -c vmci-compute /root/vc-out.xml > /root/shrunk; true'" timeout 1m
"""


def test_exec_and_refresh_reach_inside_real_guests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not IMAGE.is_file():
        pytest.fail(f"no Debian test image at {IMAGE}: run scripts/build-distro-image first")
    monkeypatch.delenv("PRAGMASH_STATE_DIR", raising=False)
    repo = tmp_path / "repo"
    write_debian_vc(repo, VC, IMAGE, driver="cloud_init", template_host=False)
    site = write_site(tmp_path, repo, up={VC: ["agent"]})
    recipe = tmp_path / "inside.prg"
    extra = tmp_path / "extra.yaml"  # the locale this minbase image has (as test_vm_cloud_init)
    extra.write_text("locale: C.UTF-8\n")
    recipe.write_text(RECIPE.format(extra=extra))
    conn = libvirt.open("qemu:///system")
    remove_vmtest_domains(conn, f"{VC}-")
    folder = tmp_path / "tmp" / VC
    frontend_name = f"{VC}-frontend"
    try:
        started = time.monotonic()
        code, output = cli_merged(str(recipe), "--vcname", VC, "--site", str(site), "--allow-run")
        print(output)
        assert code == 0, output
        fqdn = read_vc_out(folder / "vc-out.xml").frontend.public_fqdn
        # the command's output is the step's, and the journal keeps it
        assert f"    {fqdn}\n" in output and "    to-stderr\n" in output
        assert "sh exited 0 on vmci-frontend (guest agent)" in output
        frontend = conn.lookupByName(frontend_name)
        code, ran = guest_run(frontend, "/bin/cat", "/root/exec-ran")
        assert (code, ran.strip()) == (0, fqdn)
        print(f"recipe with exec: {time.monotonic() - started:.0f} s")

        # a scale: the running frontend learns of its new compute without a reboot
        started = time.monotonic()
        code, output = cli_merged("scale", VC, "+1", "--site", str(site), "--timeout", "1200")
        print(output)
        assert code == 0, output
        assert "refresh all" in output and f"updated {frontend_name}" in output
        code, seen = guest_run(frontend, "/bin/cat", "/root/vc-out.xml")
        assert seen == (folder / "vc-out.xml").read_text()
        assert f'name="{VC}-compute-0"' in seen
        # the recipe's grow handler ran inside the frontend, after the refresh
        assert guest_run(frontend, "/bin/cat", "/root/grew") == (0, f"{VC}-compute-0\n")
        print(f"--- {frontend_name}:/root/vc-out.xml after scale +1 "
              f"({time.monotonic() - started:.0f} s):\n{seen}")  # fmt: skip

        # refresh on demand puts back what the ledger says, for every running node
        compute = conn.lookupByName(f"{VC}-compute-0")
        assert guest_run(frontend, "/bin/sh", "-c", "echo stale > /root/vc-out.xml")[0] == 0
        code, output = cli_merged("refresh", VC, "--site", str(site))
        print(output)
        assert code == 0, output
        assert guest_run(frontend, "/bin/cat", "/root/vc-out.xml")[1] == seen
        own = compute_vc_out_path(folder / "vc-out.xml", f"{VC}-compute-0").read_text()
        assert guest_run(compute, "/bin/cat", "/root/vc-out.xml")[1] == own
        # a scale down: the frontend learns that its compute is gone
        code, output = cli_merged("scale", VC, "-1", "--site", str(site))
        print(output)
        assert code == 0, output
        assert f"updated {frontend_name}" in output
        code, seen = guest_run(frontend, "/bin/cat", "/root/vc-out.xml")
        assert seen == (folder / "vc-out.xml").read_text() and f"{VC}-compute-0" not in seen
        assert guest_run(frontend, "/bin/cat", "/root/shrunk") == (0, "0\n")
        code, cleaned = cli_merged("clean", VC, "--site", str(site))
        assert code == 0, cleaned
    finally:
        remove_vmtest_domains(conn, f"{VC}-")
        conn.close()
