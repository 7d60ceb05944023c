"""Hardened XML parsing for vc-in.xml, vc-out.xml and every other XML pragmash reads.

Repositories are shared between sites, so a vc-in.xml is untrusted input: a DTD could
read local files through external entities, fetch URLs, or blow up memory through
nested entities. Every XML document pragmash reads goes through this module, which
refuses DTDs and entities outright instead of trying to make them safe.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

from pragmash.errors import VcFormatError

# Large enough for any real vc-in.xml or vc-out.xml; a bigger file is a mistake or an attack.
MAX_XML_BYTES = 4 * 1024 * 1024

_DTD_MESSAGE = "DTDs and entities are not allowed (remove the <!DOCTYPE …> and <!ENTITY …>)"

# Comments and CDATA may mention "<!DOCTYPE" harmlessly; they are cut out before the scan.
_COMMENT_OR_CDATA = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.DOTALL)
_TRAILING_POSITION = re.compile(r", line \d+, column \d+$")
_DTD_MARKUP = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def safe_parser() -> etree.XMLParser:
    """The one hardened lxml parser: no entities, no DTD, no network.

    Every lxml parse in pragmash uses it (vc-in, vc-out, domain templates, libvirt's
    own XML). A fresh parser per document: lxml parsers keep state and are not
    thread-safe.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )


def parse_xml_bytes(data: bytes, name: str) -> etree._Element:
    """Parse ``data`` (named ``name`` in errors) and return its root element.

    Raises VcFormatError for DTD or entity markup, syntax errors (with line and
    column) and documents larger than MAX_XML_BYTES.
    """
    if len(data) > MAX_XML_BYTES:
        raise VcFormatError(
            f"file is {len(data)} bytes; at most {MAX_XML_BYTES} bytes are expected",
            file=name,
        )
    # Refuse before libxml2 ever sees the DTD, so nothing in it is acted upon.
    if _DTD_MARKUP.search(_COMMENT_OR_CDATA.sub(b"", data)):
        raise VcFormatError(_DTD_MESSAGE, file=name)
    try:
        root = etree.fromstring(data, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        reason = _TRAILING_POSITION.sub("", exc.msg)
        raise VcFormatError(
            f"not well-formed XML at line {line}, column {column}: {reason}", file=name
        ) from None
    # Belt and braces for encodings the byte scan cannot read (UTF-16 and the like).
    docinfo = root.getroottree().docinfo
    doctype: str = getattr(docinfo, "doctype", "")  # missing from lxml-stubs
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise VcFormatError(_DTD_MESSAGE, file=name)
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise VcFormatError(_DTD_MESSAGE, file=name)
    return root


def parse_xml_file(path: Path, shown: str | None = None) -> etree._Element:
    """Read and parse the XML file at ``path``; a missing or unreadable file is a VcFormatError.

    ``shown`` names the file in messages where that differs from ``path`` (the URL of a
    vc-in.xml read from a web repository).
    """
    name = shown or str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_XML_BYTES + 1)
    except FileNotFoundError:
        raise VcFormatError("file not found", file=name) from None
    except IsADirectoryError:
        raise VcFormatError("is a folder; an XML file is expected", file=name) from None
    except OSError as exc:
        raise VcFormatError(f"cannot be read: {exc.strerror}", file=name) from None
    return parse_xml_bytes(data, name)


def schema_problem(schema: etree.XMLSchema) -> tuple[str | None, int, str]:
    """The first problem of the last failed validation: (element path, line, message)."""
    log: Any = schema.error_log  # lxml-stubs leave _ErrorLog empty
    entries = list(log)
    if not entries:
        return None, 0, "does not match the schema"
    entry = entries[0]
    path = str(entry.path) if entry.path else None
    return path, int(entry.line), str(entry.message)
