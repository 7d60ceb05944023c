"""What must differ between two nodes made from one template: identity and host files.

Two domains on one site may not share a UUID, and two domains on one host may not
share a socket, a log file, an NVRAM file, a display port or a vsock CID. A template
names each of these once, for the one machine its author had; every node made from
it gets its own here: UUIDs are left to libvirt (everywhere it reads one), files are
named after the node beside the template's own, ports and CIDs become automatic.
What cannot be made per node at all (host devices, fixed TCP listeners) is refused
when the vc-in.xml is read (:mod:`pragmash.vc.formats.domain_rules`).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from lxml import etree

from pragmash.images.libvirt_xml.edit import drop_attr, remove

# character devices whose sources can name a host file or socket
_CHARDEVS = ("serial", "parallel", "console", "channel")
_FILE_SOURCES = ("unix", "file", "pipe")


def per_node_path(path: str, node: str) -> str:
    """``path`` made the node's own: the node's name before the file's, same folder."""
    written = PurePosixPath(path)
    return str(written.parent / f"{node}-{written.name}")


def forget_identity(root: etree._Element, node: str) -> None:
    """Drop every UUID libvirt would read and make serials the node's own.

    libvirt takes a domain's UUID from ``<uuid>`` or, failing that, from the SMBIOS
    system UUID: the template's would make the second node "already defined".
    A VM generation ID and VMware's hardware UUID are per machine too.
    """
    for uuid in root.findall("uuid"):
        remove(uuid)
    for entry in root.findall("sysinfo/system/entry"):
        if entry.get("name") == "uuid":
            remove(entry)
    for entry in root.iterfind("sysinfo/*/entry"):
        if entry.get("name") == "serial":
            entry.text = node
    for genid in root.findall("genid"):
        genid.text = None  # empty: libvirt generates one per domain
    for hwuuid in root.findall("hwuuid"):
        remove(hwuuid)


def own_files(root: etree._Element, node: str) -> None:
    """Sockets, files, NVRAM and display ports of the template, made the node's own."""
    devices = root.find("devices")
    if devices is not None:
        for tag in _CHARDEVS:
            for dev in devices.findall(tag):
                if dev.get("type") in _FILE_SOURCES:
                    for source in dev.findall("source"):
                        if source.get("path"):
                            source.set("path", per_node_path(source.get("path", ""), node))
                for log in dev.findall("log"):
                    if log.get("file"):
                        log.set("file", per_node_path(log.get("file", ""), node))
        for graphics in devices.findall("graphics"):
            _own_display(graphics, node)
        for cid in devices.findall("vsock/cid"):
            cid.set("auto", "yes")
            drop_attr(cid, "address")
    for nvram in root.findall("os/nvram"):
        # libvirt makes a domain's own NVRAM (from the template= firmware) when the
        # path is left out; a path the template names is one machine's variables
        nvram.text = None
        for source in nvram.findall("source"):
            remove(source)


def _own_display(graphics: etree._Element, node: str) -> None:
    """A display on a port of its own (chosen by libvirt) and a socket of its own."""
    fixed_port = graphics.get("port") not in (None, "-1", "0")
    if fixed_port or graphics.get("autoport") == "no":
        drop_attr(graphics, "port")
        graphics.set("autoport", "yes")
    drop_attr(graphics, "tlsPort")
    if graphics.get("websocket") not in (None, "-1"):
        graphics.set("websocket", "-1")
    if graphics.get("socket"):
        graphics.set("socket", per_node_path(graphics.get("socket", ""), node))
    for listen in graphics.findall("listen"):
        if listen.get("socket"):
            listen.set("socket", per_node_path(listen.get("socket", ""), node))
