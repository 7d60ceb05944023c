"""The few lxml edits every part of domain rendering makes, written once."""

from __future__ import annotations

from lxml import etree


def remove(element: etree._Element) -> None:
    """Take ``element`` out of its parent (a root stays as it is)."""
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def drop_attr(element: etree._Element, name: str) -> None:
    """Remove the attribute ``name`` where it is set."""
    if name in element.attrib:
        del element.attrib[name]


def child(parent: etree._Element, tag: str, *, first: bool = False) -> etree._Element:
    """The parent's ``tag`` child, made when missing (at the front when ``first``)."""
    found = parent.find(tag)
    if found is not None:
        return found
    made = etree.Element(tag)
    if first:
        parent.insert(0, made)
    else:
        parent.append(made)
    return made
