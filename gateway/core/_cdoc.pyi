"""Types of the optional C extension built from _cdoc.pyx (see that file and document.py)."""

from collections.abc import Iterable

from lxml import etree

PYX_SHA256: str
LXML_VERSION: str
LIBXML_VERSION: tuple[int, int, int]

def local_name_of(el: etree._Element) -> str: ...
def index_children(el: etree._Element) -> dict[str, list[etree._Element]]: ...
def scan_local(
    top: etree._Element, names: Iterable[str]
) -> dict[str, tuple[etree._Element, ...]]: ...
def first_at(el: etree._Element, steps: tuple[str, ...]) -> etree._Element | None: ...
def crs_follow_tags(raw: bytes) -> bool: ...
