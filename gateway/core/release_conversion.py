"""Converting a message between iJw 2.3 and 3.2, field by field, or saying why not.

A party speaks one release on a given day (``Party.release_on``). A message goes to its
recipient in the recipient's release: converted where the two releases hold the same content in
the same fields (the field table below, documented in ``docs/releases.md``), held with its
reason where converting would lose a field the target has no place for or invent one it
requires. Every conversion is checked against the target release's schema before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.core.catalogue import CURRENT_RELEASE, MESSAGE_KINDS, RELEASE_2_3
from gateway.core.document import Element, find, findall, text
from gateway.core.errors import GatewayError
from gateway.core.retour import DEFAULT_XSD_VERSION
from gateway.core.schemaset import SchemaSet
from gateway.core.xmlsafe import DEFAULT_MAX_BYTES, parse_safely

#: The reason prefix of a message held because its recipient's release cannot take it.
RELEASE_HOLD = "release:"

_REASON_CHARS = 160
_NAMESPACE_ROOT = "http://www.istandaarden.nl/ijw/"


@dataclass(frozen=True, slots=True)
class FieldTable:
    """How one message type maps between 2.3 and 3.2: every field the same, but for these.

    Paths are relative to one product line (``lines``). ``only_2_3``/``only_3_2``: fields the
    other release has no place for (present: the message is held, converting would lose them).
    ``required_in_2_3``: optional in 3.2, required in 2.3 (absent: held, it would be invented).
    ``client_status``: 2.3 also carries ``Client/StatusAanlevering``; it converts when it equals
    the StatusAanlevering of every line, so it is redundant one way and derived the other.
    """

    lines: str
    only_2_3: tuple[str, ...] = ()
    only_3_2: tuple[str, ...] = ()
    required_in_2_3: tuple[str, ...] = ()
    client_status: bool = False


_START = FieldTable(
    "StartProducten/StartProduct",
    only_2_3=("BeschikkingNummer",),
    required_in_2_3=("Product",),
    client_status=True,
)
_STOP = FieldTable(
    "StopProducten/StopProduct",
    only_2_3=("BeschikkingNummer",),
    required_in_2_3=("Product",),
    client_status=True,
)
_ASKED = FieldTable(
    "AangevraagdeProducten/AangevraagdProduct",
    only_3_2=("Budget", "Verwijzer/ZorgverlenerCode"),
    required_in_2_3=("Product",),
)

FIELD_TABLES: dict[str, FieldTable] = {
    "JW305": _START,
    "JW306": _START,
    "JW307": _STOP,
    "JW308": _STOP,
    "JW315": _ASKED,
    "JW316": _ASKED,
}

_ALLOCATION = (
    "2.3 nests the allocation in a Beschikking (BeschikkingNummer, Afgiftedatum, "
    "Grondslagen, Beperkingen) that 3.2 has no fields for"
)
NOT_CONVERTED: dict[str, str] = {
    "JW301": _ALLOCATION,
    "JW302": _ALLOCATION,
    "JW303": "a 2.3 declaration (VAT per line) is never converted into a 3.2 JW323",
    "JW304": "a 2.3 JW304 is never converted into a 3.2 JW325",
    "JW317": "2.3 has no JW317",
    "JW318": "2.3 has no JW318",
    "JW319": "2.3 has no JW319",
    "JW320": "2.3 has no JW320",
    "JW323": "a 3.2 JW323 is never converted into a 2.3 JW303",
    "JW325": "a 3.2 JW325 is never converted into a 2.3 JW304",
}

#: BerichtVersie and BerichtSubversie per release (fixed by each release's schemas).
_VERSIONS = {RELEASE_2_3: ("2", "3"), CURRENT_RELEASE: ("3", "2")}


class ConversionError(GatewayError):
    """The message cannot be read for a conversion (it passed validation, so a bug)."""


@dataclass(frozen=True, slots=True)
class ReleaseConversion:
    """A message in the target release (``xml``), or why it stays held (``hold``)."""

    message_type: str
    source: str
    target: str
    xml: bytes | None = None
    hold: str | None = None


def waits_for_release(reason: str | None) -> bool:
    """True for a message held because its recipient's release cannot take it: released as
    it is, it would reach a party that cannot read it."""
    return (reason or "").startswith(RELEASE_HOLD)


def hold_reason(message_type: str, source: str, target: str, why: str) -> str:
    """The reason a message waits: it names both releases and what stops the conversion."""
    return f"{RELEASE_HOLD} {message_type} in iJw {source} cannot go to a party on {target}: {why}"


def convert(
    raw: bytes,
    source: str,
    target: str,
    schemas: SchemaSet,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ReleaseConversion:
    """Convert a valid message from release ``source`` to ``target``, or say why it is held."""
    parsed = parse_safely(raw, max_bytes)
    if parsed.tree is None:
        raise ConversionError("; ".join(f.message for f in parsed.findings))
    tree = parsed.tree
    root = tree.getroot()
    message_type = _message_type(root)

    def held(why: str) -> ReleaseConversion:
        reason = hold_reason(message_type, source, target, why)
        return ReleaseConversion(message_type, source, target, hold=reason)

    if message_type in NOT_CONVERTED:
        return held(NOT_CONVERTED[message_type])
    table = FIELD_TABLES.get(message_type)
    target_schema = schemas.get(target, message_type)
    if table is None or target_schema is None or {source, target} != set(_VERSIONS):
        return held(f"no field table from {source} to {target}")
    client = find(root, "Client")
    if client is not None:  # a retour on the header alone has none
        why = _convert_client(client, table, source, target)
        if why is not None:
            return held(why)
    _convert_header(root, source, target)
    tree = _renamed(tree, source, target)
    valid, errors = target_schema.check(tree)
    if not valid:
        first = errors[0].message if errors else "no details"
        if len(first) > _REASON_CHARS:  # an enumeration's error lists all its values
            first = first[:_REASON_CHARS] + "..."
        return held(f"not valid against the {target} schema ({first})")
    xml = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    return ReleaseConversion(message_type, source, target, xml=xml)


def _convert_client(client: Element, table: FieldTable, source: str, target: str) -> str | None:
    """Convert the Client part in place, or say what would be lost or invented."""
    lines = findall(client, table.lines)
    lost = table.only_2_3 if source == RELEASE_2_3 else table.only_3_2
    for field in lost:
        if any(find(line, field) is not None for line in lines):
            return f"{target} has no field for {table.lines}/{field}"
    if target == RELEASE_2_3:
        for field in table.required_in_2_3:
            if any(find(line, field) is None for line in lines):
                return f"2.3 requires {table.lines}/{field}, which this message lacks"
    statuses = {text(line, "StatusAanlevering") for line in lines}
    if table.client_status:
        if source == RELEASE_2_3:
            status = find(client, "StatusAanlevering")
            if status is None or statuses != {status.text}:
                return "Client/StatusAanlevering differs from its lines' StatusAanlevering"
            client.remove(status)
        elif lines:
            if len(statuses) != 1:
                return "its lines differ in StatusAanlevering; 2.3 needs one per Client"
            container = find(client, table.lines.split("/")[0])
            assert container is not None
            _insert_before(container, "StatusAanlevering", statuses.pop())
    return None


def _message_type(root: Element) -> str:
    namespace = etree.QName(root).namespace or ""
    name = namespace.rstrip("/").split("/")[-2].upper() if namespace.count("/") > 2 else ""
    if name not in MESSAGE_KINDS:
        raise ConversionError(f"no iJw message type in namespace {namespace!r}")
    return name


def _convert_header(root: Element, source: str, target: str) -> None:
    """BerichtVersie/-Subversie of the target; XsdVersie(Retour) only 3.2 has."""
    header = find(root, "Header")
    if header is None:
        raise ConversionError("no Header")
    versie, subversie = _VERSIONS[target]
    for name, value in (("BerichtVersie", versie), ("BerichtSubversie", subversie)):
        found = find(header, name)
        if found is not None:
            found.text = value
    if target == RELEASE_2_3:
        # The XSD versions describe the 3.2 text only; 2.x messages name none.
        for name in ("XsdVersie", "XsdVersieRetour"):
            found = find(header, name)
            if found is not None:
                header.remove(found)
        return
    _insert_after(header, ("BerichtIdentificatie",), "XsdVersie")
    if find(header, "IdentificatieRetour") is not None:
        _insert_after(header, ("XsltVersie", "DagtekeningRetour"), "XsdVersieRetour")


def _insert_after(header: Element, anchors: tuple[str, ...], name: str) -> None:
    """An XSD version element (both 1.0.0, the versions our 3.2 schemas carry) after the first
    anchor present."""
    for anchor_name in anchors:
        anchor = find(header, anchor_name)
        if anchor is not None:
            versions = etree.Element(_qname(header, name))
            basis_ns = _basis_namespace(header)
            for part in ("BasisschemaXsdVersie", "BerichtXsdVersie"):
                etree.SubElement(versions, f"{{{basis_ns}}}{part}").text = DEFAULT_XSD_VERSION
            anchor.addnext(versions)
            return
    raise ConversionError(f"no place for {name} in the Header")


def _insert_before(container: Element, name: str, value: str | None) -> None:
    element = etree.Element(_qname(container, name))
    element.text = value
    container.addprevious(element)


def _qname(sibling: Element, name: str) -> str:
    return f"{{{etree.QName(sibling).namespace}}}{name}"


def _basis_namespace(header: Element) -> str:
    message_ns = etree.QName(header).namespace or ""
    return message_ns.rsplit("/", 2)[0] + "/basisschema/schema"


def _release_segment(release: str) -> str:
    return _NAMESPACE_ROOT + release.replace(".", "_") + "/"


def _renamed(tree: etree._ElementTree, source: str, target: str) -> etree._ElementTree:
    """A copy with every name of the source release's namespaces in the target's, keeping the
    prefixes, their declarations' places, the text and the layout."""
    old, new = _release_segment(source), _release_segment(target)

    def uri(value: str) -> str:
        return value.replace(old, new, 1) if value.startswith(old) else value

    def copy(element: Element, parent: Element | None) -> Element:
        inherited = parent.nsmap if parent is not None else {}
        # A default namespace has the prefix None, which lxml accepts and its stubs do not.
        declared: dict[Any, str] = {
            prefix: uri(value)
            for prefix, value in element.nsmap.items()
            if inherited.get(prefix) != uri(value)
        }
        qname = etree.QName(element)
        tag = f"{{{uri(qname.namespace)}}}{qname.localname}" if qname.namespace else qname.localname
        made = (
            etree.SubElement(parent, tag, nsmap=declared)
            if parent is not None
            else etree.Element(tag, nsmap=declared)
        )
        made.text, made.tail = element.text, element.tail
        for child in element:
            if isinstance(child.tag, str):
                copy(child, made)
            else:  # comments and processing instructions, as they were
                made.append(copy_of(child))
        return made

    def copy_of(node: Element) -> Element:
        return etree.fromstring(etree.tostring(node))

    return etree.ElementTree(copy(tree.getroot(), None))


__all__ = [
    "FIELD_TABLES",
    "NOT_CONVERTED",
    "RELEASE_HOLD",
    "ConversionError",
    "FieldTable",
    "ReleaseConversion",
    "convert",
    "hold_reason",
    "waits_for_release",
]
