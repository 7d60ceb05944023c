"""Shared by the test VE folders' scripts (imported, not run): log a call, enforce, write vc-out.

Each call is logged to calls.log next to the script, as the 2013 vc folder's are:
    SCRIPT cwd=<working folder> argc=<n> [arg1] [arg2] …
A broken convention exits 1 with the reason, as the real scripts did.
"""

import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(sys.argv[0]))


def called(argc):
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    with open(os.path.join(HERE, "calls.log"), "a") as log:
        log.write(
            f"{name} cwd={os.getcwd()} argc={len(args)}" + "".join(f" [{a}]" for a in args) + "\n"
        )
    if len(args) not in argc:
        fail(
            f"{name} should be invoked with {' or '.join(map(str, argc))} arguments, got {len(args)}"
        )
    return args


def fail(why):
    print(f"Error {why}")
    sys.exit(1)


def need_file(path, what):
    if not os.path.isfile(path):
        fail(f"{what} {path} is not a file")


def need_dir(path, what):
    if not os.path.isdir(path):
        fail(f"{what} {path} is not a folder")


def write_vc_out(path, num_cpus, key=None):
    """The site's own allocation (pragma_boot 2013-2015 form), 2 CPUs per compute."""
    vc = ET.Element("vc")
    fe = ET.SubElement(vc, "frontend")
    ET.SubElement(
        fe,
        "public",
        fqdn="hosted-vc.site.example.org",
        ip="198.51.100.7",
        netmask="255.255.255.0",
        gw="198.51.100.1",
        mac="7a:77:6e:40:00:16",
    )
    ET.SubElement(fe, "private", ip="10.1.1.1", netmask="255.255.0.0", mac="7a:77:6e:40:00:15")
    sizes = [2] * (num_cpus // 2) + ([num_cpus % 2] if num_cpus % 2 else [])
    compute = ET.SubElement(vc, "compute", count=str(len(sizes)))
    names = []
    for i, cpus in enumerate(sizes):
        name = f"hosted-vm-0-{i}-0"
        names.append(name)
        ET.SubElement(
            compute,
            "node",
            name=name,
            mac=f"7a:77:6e:40:00:{0x20 + i:02x}",
            ip=f"10.1.255.{254 - i}",
            cpus=str(cpus),
        )
    net = ET.SubElement(vc, "network")
    ET.SubElement(net, "dns", ip="8.8.8.8", search="local", domain="")
    if key:
        ET.SubElement(vc, "key").text = key
    ET.ElementTree(vc).write(path)
    return names


def hosts_of(vc_out):
    root = ET.parse(vc_out).getroot()
    fqdn = root.find("./frontend/public").get("fqdn")
    return fqdn, [n.get("name") for n in root.findall("./compute/node")]
