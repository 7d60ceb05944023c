"""Build a tiny bootable busybox disk for real-VM tests, without root or loop devices.

The disk holds one ext4 partition made from a folder (``mke2fs -d``), so building
takes well under a second. It boots by direct kernel boot with the host's Debian
cloud kernel and initrd (``root=/dev/vda1``). Its init script reports on the serial
console what a PRAGMA node would configure itself with:

    PRAGMASH-UP
    <the contents of /root/vc-out.xml>
    PRAGMASH-SELF name=<n> ip=<ip> mac=<mac>     (one line per interface found in vc-out)

and then stays up so a test can see the domain "running". A compute given its own
file (``<compute name=…><private mac=…/></compute>``) is matched by that interface and
reported by ``compute@name``; one given the whole VC's file by ``<node mac=…>``; the
frontend by its ``<private mac=…>`` or ``<public mac=…>``, reported with the public
fqdn as name and that interface's ip. Links are never brought up: the guest sends no
network traffic.

``NET_INIT`` (``build_test_image(…, init_script=NET_INIT)``) is the guest for tests
whose guests talk (only inside the test run's own network namespace): every node
configures its private interface from /root/vc-out.xml (as a Rocks node would, no
DHCP), and a compute then pings its frontend's private address and sends broadcast
ARP requests for it, printing

    PRAGMASH-NET role=<frontend|compute> dev=<dev> ip=<ip> mac=<mac>
    PRAGMASH-PING <frontend ip> ok|failed
    PRAGMASH-ARP Unicast reply from <ip> [<mac>] …      (one line per reply)
    PRAGMASH-UP                                          (last: when `up`, all is printed)

Broadcast (``arping -b``: every request to ff:ff:ff:ff:ff:ff, never unicast to the
first replier) so that every host on the segment that has the address answers: on a
network shared by two VCs, both frontends would. (busybox 1.35 prints "0
broadcast(s)" sent whenever ``-c`` is given: its counter shares a flag bit with
``-c``; the requests themselves still go to the broadcast address.)

Importable by tests: ``from support.vmimage import build_test_image`` (pyproject puts
tests/ on pytest's path).
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MARKER_UP = "PRAGMASH-UP"
MARKER_SELF = "PRAGMASH-SELF"

# The awk program reads vc-out.xml one tag at a time (RS=">"), so it works whether
# the XML is pretty-printed or on one line, with attributes in any order.
_AWK_SELF = r"""
function attr(rec, name,    m) {
    if (match(rec, name "=\"[^\"]*\"")) {
        m = substr(rec, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
        return m
    }
    if (match(rec, name "='[^']*'")) {
        m = substr(rec, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
        return m
    }
    return ""
}
BEGIN { RS = ">" }
{
    rec = $0
    gsub(/[\r\n\t]/, " ", rec)
    if (rec ~ /<frontend[ \/]/ && attr(rec, "fqdn") != "") { fqdn = attr(rec, "fqdn") }
    if (rec ~ /<public[ \/]/ && fqdn == "") { fqdn = attr(rec, "fqdn") }
    if (rec ~ /<compute[ \/]/) { cname = attr(rec, "name") }
    if (rec ~ /<\/node/) { innode = 0; next }
    if (rec ~ /<node[ \/]/) { innode = (rec !~ /\/ *$/) }
    else if (innode) { next }
    mac = tolower(attr(rec, "mac"))
    if (mac == "" || mac != want) { next }
    if (rec ~ /<node[ \/]/) { name = attr(rec, "name") }
    else if (cname != "") { name = cname }
    else { name = fqdn }
    printf "PRAGMASH-SELF name=%s ip=%s mac=%s\n", name, attr(rec, "ip"), mac
}
"""

DEFAULT_INIT = f"""#!/bin/sh
# pragmash test guest: report what this node would configure itself with, then stay up.
export PATH=/bin:/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
out=/dev/ttyS0
[ -c "$out" ] || out=/dev/console
echo {MARKER_UP} > "$out"
if [ -f /root/vc-out.xml ]; then
    cat /root/vc-out.xml > "$out"
    for f in /sys/class/net/*/address; do
        mac=$(cat "$f")
        [ "$mac" = "00:00:00:00:00:00" ] && continue
        awk -v want="$mac" -f /etc/pragmash-self.awk /root/vc-out.xml > "$out"
    done
else
    echo "PRAGMASH-NO-VC-OUT" > "$out"
fi
while true; do sleep 3600; done
"""


# Reads vc-out.xml for the interface with MAC `want`: prints its role, address, the
# VC's private netmask, and the frontend's private address. Public interfaces are
# not printed: they are never brought up.
_AWK_NET = r"""
function attr(rec, name,    m) {
    if (match(rec, name "=\"[^\"]*\"")) {
        m = substr(rec, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
        return m
    }
    if (match(rec, name "='[^']*'")) {
        m = substr(rec, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
        return m
    }
    return ""
}
BEGIN { RS = ">" }
{
    rec = $0
    gsub(/[\r\n\t]/, " ", rec)
    if (rec ~ /<compute[ \/]/ && attr(rec, "name") != "") { incompute = 1; fe = attr(rec, "gw") }
    if (rec ~ /<\/node/) { innode = 0; next }
    if (rec ~ /<node[ \/]/) { innode = (rec !~ /\/ *$/) }
    else if (innode) { next }
    mac = tolower(attr(rec, "mac"))
    if (rec ~ /<private[ \/]/ && incompute) {
        if (mac == want) { print "compute", attr(rec, "ip"), attr(rec, "netmask"), fe }
        next
    }
    if (rec ~ /<private[ \/]/) { mask = attr(rec, "netmask"); fe = attr(rec, "ip") }
    if (mac == "" || mac != want) { next }
    if (rec ~ /<private[ \/]/) { print "frontend", attr(rec, "ip"), mask, fe }
    if (rec ~ /<node[ \/]/) { print "compute", attr(rec, "ip"), mask, fe }
}
"""

NET_INIT = """#!/bin/sh
# pragmash test guest that talks: configure the private interface from vc-out.xml;
# a compute pings its frontend and asks who has the frontend's address.
export PATH=/bin:/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
out=/dev/ttyS0
[ -c "$out" ] || out=/dev/console
ip link set lo up
if [ -f /root/vc-out.xml ]; then
    for f in /sys/class/net/*/address; do
        dev=${f%/address}
        dev=${dev##*/}
        mac=$(cat "$f")
        set -- $(awk -v want="$mac" -f /etc/pragmash-net.awk /root/vc-out.xml)
        [ $# -eq 4 ] || continue
        role=$1 addr=$2 mask=$3 fe=$4
        ifconfig "$dev" "$addr" netmask "$mask" up
        echo "PRAGMASH-NET role=$role dev=$dev ip=$addr mac=$mac" > "$out"
        [ "$role" = compute ] || continue
        tries=0
        until ping -c 1 -W 2 "$fe" > /dev/null 2>&1; do
            tries=$((tries + 1))
            [ $tries -ge 30 ] && break
            sleep 1
        done
        if [ $tries -lt 30 ]; then echo "PRAGMASH-PING $fe ok"; else echo "PRAGMASH-PING $fe failed"; fi > "$out"
        arping -b -c 5 -w 6 -I "$dev" "$fe" 2>&1 | while read -r line; do
            echo "PRAGMASH-ARP $line"
        done > "$out"
    done
else
    echo "PRAGMASH-NO-VC-OUT" > "$out"
fi
echo PRAGMASH-UP > "$out"
while true; do sleep 3600; done
"""


@dataclass(frozen=True)
class TestImage:
    """A built test disk (raw and gzip, like the seed's images) and the kernel to boot it."""

    __test__ = False  # not a pytest test class, despite the name

    disk_raw: Path
    disk_gz: Path
    kernel: Path
    initrd: Path


def host_kernel() -> tuple[Path, Path]:
    """The newest Debian cloud kernel and its initrd in /boot (linux-image-cloud-amd64)."""
    kernels = sorted(glob.glob("/boot/vmlinuz-*-cloud-*"))
    if not kernels:
        raise FileNotFoundError("no /boot/vmlinuz-*-cloud-* (install linux-image-cloud-amd64)")
    kernel = Path(kernels[-1])
    version = kernel.name.removeprefix("vmlinuz-")
    initrd = Path(f"/boot/initrd.img-{version}")
    if not initrd.exists():
        raise FileNotFoundError(f"{initrd} is missing for {kernel}")
    return kernel, initrd


def _run(argv: list[str], stdin: bytes | None = None) -> None:
    subprocess.run(argv, input=stdin, check=True, capture_output=True)


def _make_rootfs(root: Path, init_script: str) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        raise FileNotFoundError("busybox is missing (install busybox-static)")
    for sub in ("bin", "sbin", "proc", "sys", "dev", "root", "etc", "tmp", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    init = root / "sbin" / "init"
    init.write_text(init_script)
    init.chmod(0o755)
    (root / "etc" / "pragmash-self.awk").write_text(_AWK_SELF)
    (root / "etc" / "pragmash-net.awk").write_text(_AWK_NET)


def build_test_image(dest_dir: Path, *, init_script: str | None = None) -> TestImage:
    """Build ``busybox.img`` (raw, / on partition 1) and ``busybox.img.gz`` in dest_dir."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    kernel, initrd = host_kernel()
    work = dest_dir / "rootfs-build"
    if work.exists():
        shutil.rmtree(work)
    rootfs = work / "rootfs"
    _make_rootfs(rootfs, init_script if init_script is not None else DEFAULT_INIT)
    fs_img = work / "fs.img"
    disk = dest_dir / "busybox.img"
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(rootfs), str(fs_img), "16M"])
    if disk.exists():
        disk.unlink()
    _run(["truncate", "-s", "20M", str(disk)])
    _run(["sfdisk", "-q", str(disk)], stdin=b"start=2048, type=83\n")
    _run(
        [
            "dd",
            f"if={fs_img}",
            f"of={disk}",
            "bs=512",
            "seek=2048",
            "conv=notrunc,sparse",
            "status=none",
        ]
    )
    shutil.rmtree(work)
    disk_gz = dest_dir / "busybox.img.gz"
    tmp_gz = dest_dir / "busybox.img.gz.part"
    with open(disk, "rb") as src, gzip.open(tmp_gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp_gz, disk_gz)
    return TestImage(disk_raw=disk, disk_gz=disk_gz, kernel=kernel, initrd=initrd)
