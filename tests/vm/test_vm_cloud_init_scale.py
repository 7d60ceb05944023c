"""Tier 3 (slow, guests talk): ``pragmash scale VC +1`` on a VC of seeded cloud images.

A 1+1 VC of the stock Debian 12 guest (cloud-init and the QEMU guest agent, nothing of
pragmash; tests/vm/test_vm_cloud_init.py boots one with seeds) is grown by one compute.
The new compute gets a NoCloud seed of its own and configures itself from it: its
hostname, its static address on the interface with the MAC its lease gave, root's
key, its own /root/vc-out.xml, and it reaches the frontend over the VC's private
network. The nodes already running keep theirs: their seed volumes are not rewritten,
their domains are not restarted, and their cloud-init instance is the one of the first
boot (the seeds of one allocation share its instance-id word, so nothing is run
twice). The frontend's /root/vc-out.xml is refreshed through its agent to name the new
compute (the day-two refresh). No libguestfs appliance is launched.
"""

from __future__ import annotations

import time
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support.clirun import cli_merged
from support.debianvc import count_appliance_launches, write_debian_vc
from support.distroimage import distro_image_path
from support.guestagent import addresses_by_mac, agent, guest_run
from support.keys import KEY
from support.vmsite import remove_vmtest_domains, write_site

from pragmash.vc.formats.vcout import compute_vc_out_path, read_vc_out

IMAGE = distro_image_path()
VC = "vmci"
PORT = 7778

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.guest_net]

RECIPE = """\
allocate 1
set cloud_config = "{extra}"
boot all
wait all up timeout 20m
"""


def seed_disk(dom: libvirt.virDomain) -> str:
    """The file of the domain's read-only seed disk (vdb)."""
    for disk in etree.fromstring(dom.XMLDesc().encode()).findall("devices/disk"):
        if disk.find("readonly") is not None:
            source = disk.find("source")
            assert source is not None
            assert disk.find("target").get("dev") == "vdb"  # type: ignore[union-attr]
            return str(source.get("file"))
    raise AssertionError(f"{dom.name()} has no read-only seed disk")


def instance_id(dom: libvirt.virDomain) -> str:
    code, out = guest_run(dom, "/bin/cat", "/var/lib/cloud/data/instance-id")
    assert code == 0, out
    return str(out).strip()


def test_scale_gives_the_new_compute_its_own_seed_and_leaves_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not IMAGE.is_file():
        pytest.fail(f"no Debian test image at {IMAGE}: run scripts/build-distro-image first")
    launches = count_appliance_launches(tmp_path, monkeypatch)
    monkeypatch.delenv("PRAGMASH_STATE_DIR", raising=False)
    repo = tmp_path / "repo"
    write_debian_vc(repo, VC, IMAGE, driver="cloud_init", template_host=False)
    site = write_site(tmp_path, repo, up={VC: ["agent"]})
    extra = tmp_path / "extra.yaml"
    extra.write_text("locale: C.UTF-8\n")  # the locale this minbase image has
    recipe = tmp_path / "seeded.prg"
    recipe.write_text(RECIPE.format(extra=extra))
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    folder = tmp_path / "tmp" / VC
    conn = libvirt.open("qemu:///system")
    remove_vmtest_domains(conn, f"{VC}-")
    started = time.monotonic()
    try:
        code, output = cli_merged(
            str(recipe), "--vcname", VC, "--site", str(site), "--key", str(key)
        )
        print(output)
        assert code == 0, output
        old = [f"{VC}-frontend", f"{VC}-compute-0"]
        doms = {name: conn.lookupByName(name) for name in old}
        ids_before = {name: dom.ID() for name, dom in doms.items()}
        seeds_before = {}
        for name, dom in doms.items():
            seed = Path(seed_disk(dom))
            assert seed == folder / "seeds" / f"{name}.cidata.img"
            seeds_before[name] = (seed.read_bytes(), seed.stat().st_mtime_ns)
            out = guest_run(dom, "/usr/bin/cloud-init", "status", "--wait")[1]
            assert "status: done" in out, out
        first_ids = {name: instance_id(dom) for name, dom in doms.items()}

        code, output = cli_merged("scale", VC, "+1", "--site", str(site), "--timeout", "1800")
        print(output)
        assert code == 0, output
        assert "NoCloud seed made" in output
        decided = read_vc_out(folder / "vc-out.xml")
        new = decided.computes[1]
        assert new.name == f"{VC}-compute-1"
        dom = conn.lookupByName(new.name)
        assert seed_disk(dom) == str(folder / "seeds" / f"{new.name}.cidata.img")
        # the running nodes kept their seeds and were not restarted
        for name, before in doms.items():
            seed = folder / "seeds" / f"{name}.cidata.img"
            assert (seed.read_bytes(), seed.stat().st_mtime_ns) == seeds_before[name], name
            assert conn.lookupByName(name).ID() == ids_before[name], f"{name} was restarted"
            assert instance_id(before) == first_ids[name]
        # the new compute configured itself from its own seed
        out = guest_run(dom, "/usr/bin/cloud-init", "status", "--wait", "--long")[1]
        print(f"--- {new.name}: cloud-init status\n{out}")
        assert "status: done" in out, out
        nonce = first_ids[old[0]].removeprefix(f"{old[0]}-")
        assert instance_id(dom) == f"{new.name}-{nonce}"  # the allocation's word
        assert guest_run(dom, "/bin/cat", "/etc/hostname")[1].strip() == new.name
        have = addresses_by_mac(dom)
        print(f"--- {new.name}: addresses by MAC {have}")
        assert f"{new.ip}/16" in have.get(new.mac, []), have
        assert KEY in guest_run(dom, "/bin/cat", "/root/.ssh/authorized_keys")[1]
        own = compute_vc_out_path(folder / "vc-out.xml", new.name).read_text()
        assert guest_run(dom, "/bin/cat", "/root/vc-out.xml")[1] == own
        # the frontend heard of it (refreshed through its agent, no reboot)
        frontend = doms[old[0]]
        fe_file = guest_run(frontend, "/bin/cat", "/root/vc-out.xml")[1]
        assert fe_file == (folder / "vc-out.xml").read_text()
        assert new.name in fe_file
        # and the new compute reaches the frontend over the private network
        fe_ip = decided.frontend.private_ip
        listener = (
            "import socket\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{fe_ip}', {PORT}))\n"
            "s.listen(1)\n"
            "s.settimeout(600)\n"
            "c, _ = s.accept()\n"
            "open('/root/heard-scaled', 'w').write(c.recv(100).decode())\n"
        )
        agent(
            frontend,
            "guest-exec",
            {"path": "/usr/bin/python3", "arg": ["-c", listener], "capture-output": True},
        )
        time.sleep(20)  # python starts slowly under TCG
        sender = (
            "import socket, time\n"
            "for _ in range(30):\n"
            "    try:\n"
            f"        s = socket.create_connection(('{fe_ip}', {PORT}), 10); break\n"
            "    except OSError: time.sleep(5)\n"
            f"s.sendall(b'{new.name}')\n"
        )
        code, out = guest_run(dom, "/usr/bin/python3", "-c", sender)
        assert code == 0, out
        assert guest_run(frontend, "/bin/cat", "/root/heard-scaled")[1] == new.name
        assert not launches.exists(), "the libguestfs appliance was launched"
        print(
            f"seeded scale +1 checked in {time.monotonic() - started:.0f} s, 0 appliance launches"
        )
        code, cleaned = cli_merged("clean", VC, "--site", str(site))
        assert code == 0, cleaned
        assert not (folder / "seeds").exists()
    finally:
        remove_vmtest_domains(conn, f"{VC}-")
        conn.close()
