"""A repository and a site for the real-VM tests: VC ``vmtest`` on qemu:///system.

The VC's templates boot the busybox test image (vmimage.py) by direct kernel boot;
the site maps the bridges to user-mode networking whose links the guests never
bring up, so no guest sends traffic. Importable as ``from support.vmsite import …``.
"""

from __future__ import annotations

import time
from pathlib import Path

import libvirt

from support import secondhost
from support.secondhost import SecondHost
from support.vmimage import TestImage

DOMAIN = """\
    <domain type='kvm'>
      <name>{name}</name>
      <memory unit='MiB'>192</memory>
      <vcpu>1</vcpu>
      <os>
        <type arch='x86_64'>hvm</type>
        <kernel>{kernel}</kernel>
        <initrd>{initrd}</initrd>
        <cmdline>{cmdline}</cmdline>
      </os>
      <features><acpi/><apic/></features>
      <devices>
        <emulator>/usr/libexec/qemu-kvm</emulator>
{interfaces}
        <disk type='file' device='disk'>
          <driver name='qemu' type='raw'/>
          <source file='busybox.img.gz'/>
          <target dev='vda' bus='virtio'/>
        </disk>
        <console tty='/dev/pts/0'/>
      </devices>
    </domain>"""

IFACE = """\
        <interface type='bridge'>
          <source bridge='{bridge}'/>
          <mac address='{mac}'/>
          <model type='virtio'/>
        </interface>"""


GOOD_CMDLINE = "console=ttyS0 root=/dev/vda1 rw quiet"

CONSOLE_SELF = (
    'wait all console "PRAGMASH-SELF name=" timeout 2m\n'  # each guest has said who it is
)


def boot_recipe(computes: int, then: str = "") -> str:
    """The busybox VC booted in the rocks6 shape on a real engine: no fix, the frontend
    up, then ``computes`` computes up (5 minutes each at most under TCG); ``then``, more
    statements after."""
    return (
        f"allocate {computes}\nfix all via none\nboot frontend\nwait frontend up timeout 5m\n"
        f"boot compute\nwait compute up timeout 5m\n{then}"
    )


def vc_in_xml(driver: str, frontend: str, compute: str, dependency: str = "") -> str:
    """A test VC's vc-in.xml: the seed's shape around the two ``<domain>`` templates, a
    frontend on the private and public networks, a compute on the private one; the
    compute's ``<boot_dependency>`` when given."""
    compute = f"    {dependency}\n{compute}" if dependency else compute
    return f"""<vc type='Local Beowulf'>
  <virtualization engine='kvm' type='hvm' arch='x86_64'/>
  <driver>{driver}</driver>
  <frontend>
{frontend}
  </frontend>
  <compute>
{compute}
  </compute>
  <networks>
    <network name='private'><ipaddress>10.1.1.1</ipaddress><netmask>255.255.0.0</netmask></network>
    <frontend><public>eth1</public></frontend>
  </networks>
</vc>
"""


def write_repository(root: Path, image: TestImage, *, compute_cmdline: str = GOOD_CMDLINE) -> Path:
    """A repository with VC ``vmtest``: a frontend and a compute template on the test image.

    ``compute_cmdline`` is the compute's kernel command line, for tests that break it.
    """
    repo = root / "repo"
    vc = repo / "vmtest"
    vc.mkdir(parents=True)
    (vc / "busybox.img.gz").write_bytes(image.disk_gz.read_bytes())
    fe_ifaces = "\n".join(
        [
            IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:00:07"),
            IFACE.format(bridge="eth1", mac="7a:77:6e:40:00:08"),
        ]
    )
    frontend = DOMAIN.format(
        name="vmtest-fe",
        kernel=image.kernel,
        initrd=image.initrd,
        cmdline=GOOD_CMDLINE,
        interfaces=fe_ifaces,
    )
    compute = DOMAIN.format(
        name="vmtest-c",
        kernel=image.kernel,
        initrd=image.initrd,
        cmdline=compute_cmdline,
        interfaces=IFACE.format(bridge="eth0.2", mac="7a:77:6e:40:00:0a"),
    )
    dependency = (
        "<boot_dependency parent='frontend'><wait type='clock' value='300'/></boot_dependency>"
    )
    (vc / "vc-in.xml").write_text(vc_in_xml("rocks6_client", frontend, compute, dependency))
    (repo / "vcdb.txt").write_text("vmtest,vmtest/vc-in.xml\n")
    return repo


def _network(vlans: str, private: str = "") -> str:
    """The test sites' ``[network]``: user-mode bridges, made-up public address."""
    return f"""[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
dns = "192.0.2.53"
mac_prefix = "7a:77:6f"
vlans = {vlans}
default_network = "user"
{private}public = [ {{ ip = "192.0.2.10", fqdn = "vmtest.example.org" }} ]
"""


def _paths(root: Path, repo: Path) -> str:
    """The test sites' ``[paths]``: everything below ``root``."""
    return f"""[paths]
temp = "{root / "tmp"}"
state = "{root / "state"}"
image_cache = "{root / "cache"}"
repository = "{repo}"
"""


def write_site(root: Path, repo: Path, up: dict[str, list[str]] | None = None) -> Path:
    """The site; ``up`` overrides per VC how nodes show they are up.

    The busybox guest prints no login prompt and runs no guest agent: it prints the
    PRAGMASH-UP marker itself, so ``vmtest`` is held to the marker by default.
    """
    overrides = {"vmtest": ["marker"]} if up is None else up
    up_lines = "".join(
        f"{vc} = [{', '.join(repr(t) for t in tests)}]\n" for vc, tests in overrides.items()
    )
    site = root / "site.toml"
    site.write_text(
        f"""[engine]
driver = "libvirt"
uri = "qemu:///system"
domain_type = "qemu"
boot_parallelism = 2

{_network("[10, 20]")}
[resources]
cpus = 8
reserve = 1

{_paths(root, repo)}
[policy]
ssh_to_guests = false  # the guests' addresses are made up: no ssh may leave this machine

[up]
{up_lines}"""
    )
    return site


TRUNK_BRIDGE = "pmtr10"  # the two-host site's bridge for VLAN 10, on both hosts


def write_two_host_site(root: Path, repo: Path, host2: SecondHost) -> Path:
    """A site of two hosts: this run's libvirtd, whose disks the head node shares, and
    ``host2``, reached only through libvirt (``storage = "pool"``).

    The VC's private network is ``bridge`` mode on :data:`TRUNK_BRIDGE` (VLAN 10 on
    both hosts: the tier's ``trunked_host2`` fixture joins the two bridges).
    """
    site = root / "site.toml"
    private = 'private = "bridge"\nprivate_bridge = "pmtr{vlan}"\n'
    site.write_text(
        f"""[engine]
driver = "libvirt"
domain_type = "qemu"
boot_parallelism = 2

[[hosts]]
name = "host1"
uri = "qemu:///system"
cpus = 2

[[hosts]]
name = "host2"
uri = "{host2.uri}"
cpus = 2
storage = "pool"
pool = "pragmash"
pool_path = "{secondhost.POOL_DIR}"

{_network("[10, 10]", private)}
[resources]
reserve = 0

{_paths(root, repo)}
[up]
vmtest = ["marker"]
"""
    )
    return site


def console_lines(path: Path, marker: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        lines = [line.strip() for line in text.splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def remove_vmtest_domains(conn: libvirt.virConnect, prefix: str = "vmtest-") -> None:
    """Whatever a failed test left on the engine under the VC's names: destroyed, undefined.

    The VCs' private networks (``VCNAME-private``) too, after the domains that use them.
    """
    for dom in conn.listAllDomains():
        if dom.name().startswith(prefix):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    for net in conn.listAllNetworks():
        if net.name().startswith(prefix.rstrip("-")) and net.name().endswith("-private"):
            if net.isActive():
                net.destroy()
            net.undefine()
