"""A site of several libvirt test-driver hosts, for the fast tier of multi-host placement.

libvirt's test driver reads a host description from a file (``test:///ABS/PATH.xml``):
its ``<cpu><active>`` is the host's CPU count and ``<memory>`` its KiB, which is what
``getInfo()`` reports, so hosts of different sizes cost nothing. Each file also has
an ``ovsbr0`` interface, so the ``ovs`` private network mode (which spans hosts) finds
its bridge. A host that cannot be reached is a ``qemu+unix://`` URI whose socket does
not exist: it fails at once, with libvirt's own message.
"""

from __future__ import annotations

import io
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pragmash
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.ui.cli import main as cli
from pragmash.vc.config.site import load_site

DEMO_REPO = Path(pragmash.__file__).parent / "demo" / "repository"

HOST_XML = """\
<node>
  <cpu>
    <mhz>2000</mhz><model>x86_64</model><active>{cpus}</active>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
  </cpu>
  <memory>{memory_kib}</memory>
  <interface type="ethernet" name="ovsbr0">
    <start mode="onboot"/><mac address="aa:bb:cc:00:00:{index:02x}"/>
  </interface>
</node>
"""

SITE_HEAD = """\
[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
vlans = [100, 110]
public = [
  {{ ip = "192.0.2.10", fqdn = "vc-a.example.org" }},
  {{ ip = "192.0.2.11", fqdn = "vc-b.example.org" }},
  {{ ip = "192.0.2.12", fqdn = "vc-c.example.org" }},
]
bridges = {{ "eth0.2" = "default", "eth1" = "default" }}
private = "{private}"
{ovs}
[resources]
reserve = {reserve}
placement = "{placement}"

[paths]
state = "state"
temp = "tmp"
image_cache = "cache"
repository = "repo"
"""

UNREACHABLE_URI = "qemu+unix:///system?socket=/nonexistent/pragmash-test/libvirt-sock"


@dataclass(frozen=True)
class Host:
    """One test host: its name and size (CPUs, memory in MiB); ``up=False``: unreachable."""

    name: str
    cpus: int
    memory_mib: int = 16384
    up: bool = True


def write_hosts_site(
    root: Path,
    hosts: list[Host],
    *,
    reserve: int = 1,
    placement: str = "spread",
    private: str = "ovs",
    extra: str = "",
) -> Path:
    """A site config with one ``[[hosts]]`` per host, a demo repository copy; its path."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "repo").exists():
        shutil.copytree(DEMO_REPO, root / "repo", ignore=shutil.ignore_patterns("__pycache__"))
        with (root / "repo" / "vcdb.txt").open("a", encoding="utf-8") as vcdb:
            vcdb.write("other,calit2/vc-in.xml\n")  # a second VC of the same make
    ovs = 'ovs_bridge = "ovsbr0"\n' if private == "ovs" else ""
    parts = [SITE_HEAD.format(reserve=reserve, placement=placement, private=private, ovs=ovs)]
    for index, host in enumerate(hosts):
        path = root / f"{host.name}.xml"
        path.write_text(
            HOST_XML.format(cpus=host.cpus, memory_kib=host.memory_mib * 1024, index=index),
            encoding="utf-8",
        )
        uri = f"test://{path}" if host.up else UNREACHABLE_URI.replace("libvirt-sock", host.name)
        parts.append(f'\n[[hosts]]\nname = "{host.name}"\nuri = "{uri}"\n')
    site = root / "site.toml"
    site.write_text("".join(parts) + extra, encoding="utf-8")
    return site


RECIPE = "allocate $num_compute\nboot all\n"


def run_cli(site: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([*args, "--site", str(site)], out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def boot(site: Path, computes: int, vcname: str = "calit2") -> tuple[int, str, str]:
    recipe = site.parent / "boot.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    return run_cli(site, str(recipe), "--vcname", vcname, "--num_compute", str(computes))


def hosts_of(site: Path, vcname: str = "calit2") -> Counter[str]:
    held = current_allocation(Ledger(load_site(site)), vcname)
    assert held is not None
    return Counter(node.host for node in held.nodes)
