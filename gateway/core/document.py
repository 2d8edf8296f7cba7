"""A parsed, schema-identified iJw message and small helpers for reading it.

iJw puts message-level elements in the message namespace and the children of shared types in
the basisschema namespace. Rules read by local name (``{*}``) so that the split never matters
to them; the XSD layer has already enforced it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from lxml import etree

from gateway.core.schemaset import MessageSchema

Element = etree._Element


def local_name(el: Element) -> str:
    """The element's name without namespace."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def wildcard(path: str) -> str:
    """Turn ``Client/Bsn`` into ``{*}Client/{*}Bsn`` for lxml's find methods."""
    return "/".join(part if part in (".", "..") else "{*}" + part for part in path.split("/"))


def find(el: Element, path: str) -> Element | None:
    """The first element at a local-name path below ``el``, or None."""
    return el.find(wildcard(path))


def findall(el: Element, path: str) -> list[Element]:
    """All elements at a local-name path below ``el``."""
    return el.findall(wildcard(path))


def text(el: Element | None, path: str | None = None) -> str | None:
    """The stripped text at a path below ``el`` (or of ``el`` itself), or None when absent."""
    if el is None:
        return None
    target = el if path is None else el.find(wildcard(path))
    if target is None or target.text is None:
        return None
    return target.text.strip()


def date_at(el: Element | None, path: str | None = None) -> dt.date | None:
    """The ``xs:date`` at a path, or None when absent or not a valid date."""
    value = text(el, path)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def int_at(el: Element | None, path: str | None = None) -> int | None:
    """The integer at a path, or None when absent or not an integer."""
    value = text(el, path)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def source_line(el: Element) -> int | None:
    """The line an element started on, when the parser recorded one."""
    line = el.sourceline
    return line if isinstance(line, int) and line > 0 else None


def element_path(el: Element) -> str:
    """A local-name path such as ``/Bericht/Client/Prestaties/Prestatie[2]``.

    The index appears only where a parent has several children of that name, so paths of
    single classes stay readable.
    """
    parts: list[str] = []
    node: Element | None = el
    while node is not None:
        name = local_name(node)
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


@dataclass(frozen=True, eq=False)
class MessageDocument:
    """A well-formed message whose root matched a known schema."""

    tree: etree._ElementTree
    schema: MessageSchema

    @property
    def root(self) -> Element:
        """The ``Bericht`` element."""
        return self.tree.getroot()

    @property
    def message_type(self) -> str:
        """E.g. ``JW301``."""
        return self.schema.message_type

    @property
    def release(self) -> str:
        """E.g. ``3.2``."""
        return self.schema.release

    @cached_property
    def header(self) -> Element:
        """The ``Header`` element (guaranteed present after the XSD layer)."""
        found = find(self.root, "Header")
        return found if found is not None else self.root

    def header_text(self, path: str) -> str | None:
        """Text of a header element, e.g. ``Afzender`` or ``BerichtIdentificatie/Identificatie``."""
        return text(self.header, path)

    @cached_property
    def dagtekening(self) -> dt.date | None:
        """The message's Dagtekening, the reference date of many in-message rules."""
        return date_at(self.header, "BerichtIdentificatie/Dagtekening")

    def iter_local(self, name: str) -> Iterator[Element]:
        """All elements with this local name anywhere in the message."""
        return self.root.iter("{*}" + name)
