"""StUF-GGk envelopes (ggk0210) and their SOAP 1.1 wrapping: read, check, build.

In the national chain every iJw message travels base64-encoded in an envelope: ``Di01`` for an
original, ``Du01`` for a retour (its ``crossRefnummer`` names the Di01 it answers), and a
fault as ``Fo01``. The receiver answers at once with ``Bv03`` (taken in) or a ``Fo03``
(refused) carrying one of the chain's error codes (:class:`ChainCode`). This module is the one
place that knows those shapes, for the inbound endpoint and the outbound channel alike; it
does no I/O. The ggk0210 schema (``schemas/stuf-ggk0210/``) is loaded at the edge and passed in.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lxml import etree

from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.deadlines import DUTCH_TIME
from gateway.core.privacy import mask_free_text
from gateway.core.xmlsafe import parse_safely

GGK_NS = "http://www.stufstandaarden.nl/koppelvlak/ggk0210"
STUF_NS = "http://www.egem.nl/StUF/StUF0301"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_NSMAP = {"soapenv": SOAP_NS, "StUF": STUF_NS, "GGK": GGK_NS}
_G = f"{{{GGK_NS}}}"
_S = f"{{{STUF_NS}}}"
_SOAP = f"{{{SOAP_NS}}}"

UUID_V4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
"""The pattern ggk0210 gives referentienummer and crossRefnummer (IB009 / CC04)."""
GGK_APPLICATION = "GGk"
"""``ontvanger/applicatie`` of every envelope sent to the GGk."""
MAX_ENVELOPE_OVERHEAD = 64 * 1024
"""Bytes an envelope and its SOAP wrapping may add to a payload's base64 text."""


class Berichtcode(StrEnum):
    """The StUF message kinds the chain uses."""

    DI01 = "Di01"
    DU01 = "Du01"
    FO01 = "Fo01"
    BV03 = "Bv03"
    FO03 = "Fo03"


ROOTS: dict[Berichtcode, str] = {
    Berichtcode.DI01: f"{_G}envelopHeenbericht-ggk_Di01",
    Berichtcode.DU01: f"{_G}envelopRetourbericht-ggk_Du01",
    Berichtcode.FO01: f"{_S}Fo01Bericht",
    Berichtcode.BV03: f"{_S}Bv03Bericht",
    Berichtcode.FO03: f"{_S}Fo03Bericht",
}
_BY_ROOT = {root: code for code, root in ROOTS.items()}

SOAP_ACTIONS: dict[Berichtcode, str] = {
    Berichtcode.DI01: f"{GGK_NS}/ggk_Di01",
    Berichtcode.DU01: f"{GGK_NS}/ggk_Du01",
    Berichtcode.FO01: f"{STUF_NS}/Fo01",
}
"""The OntvangAsynchroon operations (WSDL binding ``SOAPOntvangAsynchroon``)."""


class ChainCode(StrEnum):
    """Error codes a Fo03 carries. The ``IB``/``RIN``/``StUF``/``CC`` codes are the ISD chain's
    (docs/chain.md); ``GW`` codes are the gateway's own, for faults the chain list has no
    code for (both fit StUF's seven-character ``Foutcode``)."""

    ENVELOPE_INVALID = "RIN001"
    PAYLOAD_INVALID = "StUF055"
    NOT_AUTHORISED = "IB002"
    TOO_LARGE = "IB007"
    REFERENCE_NOT_UUID4 = "IB009"
    UNKNOWN_RECEIVER = "IB210"
    UNKNOWN_SENDER = "IB213"
    FUNCTIE_NOT_ALLOWED = "IB234"
    BERICHTCODE_NOT_ALLOWED = "IB240"
    REFERENCE_NOT_UNIQUE = "CC08"
    TRY_AGAIN = "GW503"
    IDENTIFICATIE_REUSED = "GW409"

    @property
    def plek(self) -> str:
        """``server`` when the fault is on our side and the same message may be sent again."""
        return "server" if self is ChainCode.TRY_AGAIN else "client"


@dataclass(frozen=True, slots=True)
class Systeem:
    """A ``zender`` or ``ontvanger``: organisation (CBS/AGB code or a chain name) and app."""

    organisatie: str | None
    applicatie: str
    administratie: str | None = None
    gebruiker: str | None = None


@dataclass(frozen=True, slots=True)
class Stuurgegevens:
    """The control data every StUF message starts with."""

    berichtcode: Berichtcode
    zender: Systeem
    ontvanger: Systeem
    referentienummer: str
    tijdstip_bericht: str
    cross_refnummer: str | None = None
    functie: str | None = None


@dataclass(frozen=True, slots=True)
class Versions:
    """``parameters``: versions of the sending application and of the function (4 digits)."""

    applicatie_versie: str = "0001"
    applicatie_subversie: str = "0000"
    functie_versie: str = "0003"
    functie_subversie: str = "0002"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A Di01 or Du01: its stuurgegevens and the payload it carries (decoded).

    ``bestandsnaam`` is None for an ``xmlBestand`` payload, the file name of a ``tekstBestand``.
    """

    stuurgegevens: Stuurgegevens
    payload: bytes
    versions: Versions = field(default_factory=Versions)
    bestandsnaam: str | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """A Fo01 or Fo03: who reports, about which message (``crossRefnummer``), and why."""

    stuurgegevens: Stuurgegevens
    code: str
    plek: str
    omschrijving: str
    details: str | None = None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A Bv03: the message named by ``crossRefnummer`` was taken in."""

    stuurgegevens: Stuurgegevens


ChainMessage = Envelope | Fault | Acknowledgement


class EnvelopeError(Exception):
    """The bytes are no acceptable chain message; ``code`` is what the Fo03 says."""

    def __init__(self, code: ChainCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# --- reading -------------------------------------------------------------------------------------


def soap_body(raw: bytes, max_bytes: int) -> etree._Element:
    """The one element in a SOAP 1.1 envelope's Body, parsed safely (no DTD, bounded size)."""
    parsed = parse_safely(raw, max_bytes, large_text=True)
    if parsed.tree is None:
        first = parsed.findings[0] if parsed.findings else None
        too_large = first is not None and first.rule == "XML-SIZE"
        raise EnvelopeError(
            ChainCode.TOO_LARGE if too_large else ChainCode.ENVELOPE_INVALID,
            first.message if first is not None else "not XML",
        )
    root = parsed.tree.getroot()
    if root.tag != f"{_SOAP}Envelope":
        raise EnvelopeError(ChainCode.ENVELOPE_INVALID, "not a SOAP 1.1 Envelope")
    body = root.find(f"{_SOAP}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise EnvelopeError(ChainCode.ENVELOPE_INVALID, "the SOAP Body must hold one message")
    return children[0]


def berichtcode_of(element: etree._Element) -> Berichtcode:
    """Which chain message an element is, by its qualified name."""
    code = _BY_ROOT.get(str(element.tag))
    if code is None:
        raise EnvelopeError(
            ChainCode.ENVELOPE_INVALID, f"{etree.QName(element).localname} is no ggk0210 message"
        )
    return code


def schema_problems(element: etree._Element, schema: etree.XMLSchema) -> list[str]:
    """The ggk0210 schema's complaints about a message element (empty: valid)."""
    # Validated as a document of its own: the SOAP wrapping is not part of the schema.
    document = etree.ElementTree(_detached_copy(element))
    if schema.validate(document):
        return []
    # A complaint may quote a value (a whole base64 payload, even): cut short and masked.
    entries: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
    return [mask_free_text(f"line {e.line}: {e.message}")[:200] for e in entries]


def check_schema(element: etree._Element, schema: etree.XMLSchema) -> None:
    """Raise the Fo03 reason for a message the ggk0210 schema refuses: IB009 when a reference
    is no UUID v4, RIN001 otherwise."""
    problems = schema_problems(element, schema)
    if not problems:
        return
    for name in ("referentienummer", "crossRefnummer"):
        value = _text(element, f"*/{_S}{name}")
        if value is not None and not UUID_V4.fullmatch(value):
            raise EnvelopeError(ChainCode.REFERENCE_NOT_UUID4, f"{name} is not a UUID version 4")
    raise EnvelopeError(ChainCode.ENVELOPE_INVALID, "envelope fails ggk0210: " + problems[0])


def read_message(element: etree._Element) -> ChainMessage:
    """The model of a chain message element that passed :func:`check_schema`."""
    code = berichtcode_of(element)
    stuurgegevens = _read_stuurgegevens(element, code)
    if code is Berichtcode.BV03:
        return Acknowledgement(stuurgegevens)
    if code in (Berichtcode.FO01, Berichtcode.FO03):
        return Fault(
            stuurgegevens,
            code=_text(element, f"{_S}body/{_S}code") or "",
            plek=_text(element, f"{_S}body/{_S}plek") or "",
            omschrijving=_text(element, f"{_S}body/{_S}omschrijving") or "",
            details=_text(element, f"{_S}body/{_S}details"),
        )
    parameters = element.find(f"{_G}parameters")
    assert parameters is not None  # the schema requires it
    versions = Versions(*(_text(parameters, f"{_G}{name}") or "" for name in _VERSION_ELEMENTS))
    xml_payload = parameters.find(f"{_G}bericht/{_G}xmlBestand")
    text_payload = parameters.find(f"{_G}bericht/{_G}tekstBestand")
    carrier = xml_payload if xml_payload is not None else text_payload
    assert carrier is not None  # the schema's choice requires one
    try:
        payload = base64.b64decode("".join((carrier.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(ChainCode.ENVELOPE_INVALID, f"payload is not base64: {exc}") from None
    name = None if carrier is xml_payload else carrier.get("bestandsnaam")
    return Envelope(stuurgegevens, payload, versions, name)


_VERSION_ELEMENTS = ("applicatieVersie", "applicatieSubversie", "functieVersie", "functieSubversie")


def _read_stuurgegevens(element: etree._Element, code: Berichtcode) -> Stuurgegevens:
    prefix = _G if code in (Berichtcode.DI01, Berichtcode.DU01) else _S
    node = element.find(f"{prefix}stuurgegevens")
    assert node is not None  # the schema requires it
    return Stuurgegevens(
        berichtcode=code,
        zender=_read_systeem(node.find(f"{_S}zender")),
        ontvanger=_read_systeem(node.find(f"{_S}ontvanger")),
        referentienummer=_text(node, f"{_S}referentienummer") or "",
        tijdstip_bericht=_text(node, f"{_S}tijdstipBericht") or "",
        cross_refnummer=_text(node, f"{_S}crossRefnummer"),
        functie=_text(node, f"{_S}functie"),
    )


def _read_systeem(node: etree._Element | None) -> Systeem:
    assert node is not None  # the schema requires zender and ontvanger
    return Systeem(
        organisatie=_text(node, f"{_S}organisatie"),
        applicatie=_text(node, f"{_S}applicatie") or "",
        administratie=_text(node, f"{_S}administratie"),
        gebruiker=_text(node, f"{_S}gebruiker"),
    )


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None else (found.text or "")


def _detached_copy(element: etree._Element) -> etree._Element:
    # deepcopy keeps the namespace declarations the element uses from its SOAP ancestors.
    return copy.deepcopy(element)


# --- checking against the payload --------------------------------------------------------------


def berichtcode_for(message_type: str) -> Berichtcode:
    """Di01 for an original iJw message, Du01 for a retour (the catalogue's ``answers``)."""
    kind = MESSAGE_KINDS.get(message_type)
    return Berichtcode.DU01 if kind is not None and kind.is_retour else Berichtcode.DI01


def check_against_header(
    stuurgegevens: Stuurgegevens,
    message_type: str | None,
    transmitter: str | None,
    destination: str | None,
) -> None:
    """Raise the Fo03 reason when the stuurgegevens disagree with the iJw payload's header.

    ``functie`` must name the message type (IB234), the berichtcode must fit it (Di01 for an
    original, Du01 for a retour: IB240), and zender and ontvanger organisatie must be the
    header's transmitter and destination (:func:`gateway.core.route.addressing`; IB002, the
    envelope claims to speak for someone the message does not). A header that could not be
    read is left to intake, which rejects the payload (StUF055).
    """
    if message_type is None:
        return
    if stuurgegevens.functie != message_type:
        raise EnvelopeError(
            ChainCode.FUNCTIE_NOT_ALLOWED,
            f"functie {stuurgegevens.functie!r} does not name the payload's {message_type}",
        )
    expected = berichtcode_for(message_type)
    if stuurgegevens.berichtcode is not expected:
        raise EnvelopeError(
            ChainCode.BERICHTCODE_NOT_ALLOWED,
            f"a {message_type} travels as {expected.value}, not {stuurgegevens.berichtcode.value}",
        )
    if stuurgegevens.zender.organisatie != transmitter:
        raise EnvelopeError(
            ChainCode.NOT_AUTHORISED,
            f"zender {stuurgegevens.zender.organisatie} is not the payload's sender {transmitter}",
        )
    if stuurgegevens.ontvanger.organisatie != destination:
        raise EnvelopeError(
            ChainCode.NOT_AUTHORISED,
            f"ontvanger {stuurgegevens.ontvanger.organisatie} is not the payload's "
            f"recipient {destination}",
        )


# --- building ------------------------------------------------------------------------------------


def tijdstip(at: dt.datetime) -> str:
    """StUF's ``tijdstipBericht``: Dutch local time as yyyymmddhhmmssfff."""
    local = at.astimezone(DUTCH_TIME)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def new_referentienummer(random_bytes: Callable[[int], bytes] | None = None) -> str:
    """A fresh UUID version 4 (``random_bytes`` for tests that need it reproducible)."""
    if random_bytes is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(bytes=random_bytes(16), version=4))


def outbound_referentienummer(message_id: str) -> str:
    """The ``referentienummer`` under which the gateway sends a stored message: a UUID v4 made
    from the message id, so every attempt (after a restart too) carries the same one and the
    GGk can tell a repeat from a new message."""
    digest = hashlib.sha256(b"ggk0210:" + message_id.encode("utf-8")).digest()
    return new_referentienummer(lambda size: digest[:size])


def build_envelope(envelope: Envelope) -> etree._Element:
    """The ggk0210 element of a Di01 or Du01 (payload as base64 ``xmlBestand`` unless the
    envelope names a ``bestandsnaam``)."""
    sg = envelope.stuurgegevens
    if sg.berichtcode not in (Berichtcode.DI01, Berichtcode.DU01):
        raise ValueError(f"an envelope is a Di01 or Du01, not {sg.berichtcode.value}")
    if sg.berichtcode is Berichtcode.DU01 and not sg.cross_refnummer:
        raise ValueError("a Du01 names the Di01 it answers in crossRefnummer")
    root = etree.Element(ROOTS[sg.berichtcode], nsmap={"StUF": STUF_NS, "GGK": GGK_NS})
    _append_stuurgegevens(root, f"{_G}stuurgegevens", sg, with_functie=True)
    parameters = etree.SubElement(root, f"{_G}parameters")
    values = (
        envelope.versions.applicatie_versie,
        envelope.versions.applicatie_subversie,
        envelope.versions.functie_versie,
        envelope.versions.functie_subversie,
    )
    for name, value in zip(_VERSION_ELEMENTS, values, strict=True):
        etree.SubElement(parameters, f"{_G}{name}").text = value
    bericht = etree.SubElement(parameters, f"{_G}bericht")
    carrier_name = "xmlBestand" if envelope.bestandsnaam is None else "tekstBestand"
    carrier = etree.SubElement(bericht, f"{_G}{carrier_name}")
    if envelope.bestandsnaam is not None:
        carrier.set("bestandsnaam", envelope.bestandsnaam)
    carrier.text = base64.b64encode(envelope.payload).decode("ascii")
    return root


def answer_stuurgegevens(
    code: Berichtcode, answered: Stuurgegevens, zender: Systeem, referentienummer: str, at: str
) -> Stuurgegevens:
    """Stuurgegevens of a Bv03/Fo03/Fo01 about ``answered``: back to its zender, naming its
    referentienummer as crossRefnummer."""
    return Stuurgegevens(
        berichtcode=code,
        zender=zender,
        ontvanger=answered.zender,
        referentienummer=referentienummer,
        tijdstip_bericht=at,
        cross_refnummer=answered.referentienummer,
    )


def build_acknowledgement(ack: Acknowledgement) -> etree._Element:
    """A ``Bv03Bericht`` element."""
    root = etree.Element(ROOTS[Berichtcode.BV03], nsmap={"StUF": STUF_NS})
    _append_stuurgegevens(root, f"{_S}stuurgegevens", ack.stuurgegevens, with_functie=False)
    return root


def build_fault(fault: Fault) -> etree._Element:
    """A ``Fo01Bericht`` or ``Fo03Bericht`` element (texts cut to the schema's lengths)."""
    root = etree.Element(ROOTS[fault.stuurgegevens.berichtcode], nsmap={"StUF": STUF_NS})
    _append_stuurgegevens(root, f"{_S}stuurgegevens", fault.stuurgegevens, with_functie=False)
    body = etree.SubElement(root, f"{_S}body")
    etree.SubElement(body, f"{_S}code").text = fault.code[:7]
    etree.SubElement(body, f"{_S}plek").text = fault.plek
    etree.SubElement(body, f"{_S}omschrijving").text = fault.omschrijving[:200]
    if fault.details:
        etree.SubElement(body, f"{_S}details").text = fault.details[:1000]
    return root


def _append_stuurgegevens(
    parent: etree._Element, tag: str, sg: Stuurgegevens, *, with_functie: bool
) -> None:
    node = etree.SubElement(parent, tag)
    etree.SubElement(node, f"{_S}berichtcode").text = sg.berichtcode.value
    for name, systeem in (("zender", sg.zender), ("ontvanger", sg.ontvanger)):
        holder = etree.SubElement(node, f"{_S}{name}")
        for part, value in (
            ("organisatie", systeem.organisatie),
            ("applicatie", systeem.applicatie),
            ("administratie", systeem.administratie),
            ("gebruiker", systeem.gebruiker),
        ):
            if value is not None:
                etree.SubElement(holder, f"{_S}{part}").text = value
    etree.SubElement(node, f"{_S}referentienummer").text = sg.referentienummer
    etree.SubElement(node, f"{_S}tijdstipBericht").text = sg.tijdstip_bericht
    if sg.cross_refnummer is not None:
        etree.SubElement(node, f"{_S}crossRefnummer").text = sg.cross_refnummer
    if with_functie and sg.functie is not None:
        etree.SubElement(node, f"{_S}functie").text = sg.functie


def soap_message(body: etree._Element) -> bytes:
    """A SOAP 1.1 envelope around one message element, as UTF-8 bytes."""
    envelope = etree.Element(f"{_SOAP}Envelope", nsmap=_NSMAP)
    etree.SubElement(envelope, f"{_SOAP}Header")
    etree.SubElement(envelope, f"{_SOAP}Body").append(body)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def read_answer(raw: bytes, max_bytes: int, schema: etree.XMLSchema) -> Acknowledgement | Fault:
    """The Bv03 or Fo03 in an OntvangAsynchroon answer (a Fo03 arrives in a SOAP Fault's
    ``detail``), checked against the ggk0210 schema; :class:`EnvelopeError` for anything else."""
    element = soap_body(raw, max_bytes)
    if element.tag == f"{_SOAP}Fault":
        detail = element.find("detail")
        found = [] if detail is None else [c for c in detail if isinstance(c.tag, str)]
        if len(found) != 1:
            raise EnvelopeError(ChainCode.ENVELOPE_INVALID, "a SOAP Fault without a Fo03")
        element = found[0]
    if berichtcode_of(element) not in (Berichtcode.BV03, Berichtcode.FO03):
        raise EnvelopeError(ChainCode.ENVELOPE_INVALID, "an answer is a Bv03 or a Fo03")
    check_schema(element, schema)
    message = read_message(element)
    assert not isinstance(message, Envelope)  # a Bv03 or Fo03 by the check above
    return message


def soap_fault(fo03: etree._Element, reason: str) -> bytes:
    """A SOAP 1.1 Fault (the WSDL's ``fout``) whose detail is a ``Fo03Bericht``.

    ``faultcode`` is ``Server`` when the sender may try the same message again, else ``Client``.
    """
    plek = fo03.findtext(f"{_S}body/{_S}plek")
    envelope = etree.Element(f"{_SOAP}Envelope", nsmap=_NSMAP)
    etree.SubElement(envelope, f"{_SOAP}Header")
    fault = etree.SubElement(etree.SubElement(envelope, f"{_SOAP}Body"), f"{_SOAP}Fault")
    etree.SubElement(fault, "faultcode").text = (
        "soapenv:Server" if plek == "server" else "soapenv:Client"
    )
    etree.SubElement(fault, "faultstring").text = reason[:200]
    etree.SubElement(fault, "detail").append(fo03)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
