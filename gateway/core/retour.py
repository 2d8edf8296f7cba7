"""Build the retour message that answers an original message (spec §2.2, §2.3, §3.7 and §4).

JW301 → JW302, 305 → 306, 307 → 308, 315 → 316, 317 → 318, 319 → 320 and 323 → 325; in iJw
2.3 also JW303 → JW304, and a 2.3 original gets its retour built to the 2.3 schemas. The
builder is pure: the caller supplies the original, the findings of its validation, the
retour's own identity (id, date, versions) and the schema set; it gets UTF-8 bytes back.

How findings become codes:

* no findings: header only, without RetourCodes (325: header ``0200``, DeclaratieAntwoord
  ``8001`` with TotaalToegekendBedrag = TotaalIngediendBedrag);
* any in-message finding (``Level.RULES``): header only with ``0001`` and XsltVersie;
* cross-message / external findings: each lands on its *class*, the nearest ancestor-or-self
  element that carries RetourCodes in the retour XSD. A header fault gives a header-only
  retour with the rule's codes; otherwise the header says ``0200`` and the faulty client (or
  answer) comes back with every class coded ``0200`` or its rules' codes.
* JW323 is answered per prestatie: only rejected prestaties come back, under their client, and
  TotaalToegekendBedrag is what remains after the rejected lines (TR342).
* a 2.3 JW303 is answered per prestatie too, but its JW304 returns every line with what it
  grants (ToegekendBedrag: the line's DeclaratieFactuurBedrag, VAT included, or 0 when the line
  is rejected) and codes it ``8001`` or its rules' codes; ToegekendTotaalBedrag is the signed
  sum of the granted lines, so IngediendTotaalBedrag minus the rejected lines equals it. A
  JW303 rejected as a whole (``0001`` or a header code) gets a header-only JW304 granting 0.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from lxml import etree

from gateway.core.catalogue import CURRENT_RELEASE, MESSAGE_KINDS, RELEASE_2_3
from gateway.core.document import Element, MessageDocument, find, findall, local_name, text
from gateway.core.errors import GatewayError
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.rules.declaration import signed_amount, with_debet_credit
from gateway.core.schemaset import MessageSchema, SchemaSet

TECHNICAL_REJECTION = "0001"
NO_REMARKS = "0200"
NOT_ASSESSED = "0233"
FULLY_GRANTED = "8001"

DEFAULT_XSD_VERSION = "1.0.0"
DEFAULT_XSLT_VERSION = "2.10.5"

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'

# The classes of each retour: the elements whose type ends in RetourCodes in the official retour
# XSDs (a unit test re-derives this table from the XSDs). Names are the retour's; they equal the
# original's except DeclaratieAntwoord, which answers the JW323 Declaratie.
RETOUR_CLASSES: Mapping[str, frozenset[str]] = {
    "JW302": frozenset({"Header", "Client", "Relatie", "Contact", "ToegewezenProduct"}),
    "JW306": frozenset({"Header", "Client", "StartProduct"}),
    "JW308": frozenset({"Header", "Client", "StopProduct"}),
    "JW316": frozenset({"Header", "Client", "AangevraagdProduct"}),
    "JW318": frozenset(
        {"Header", "Client", "Verzoek", "OngewijzigdProduct", "TeWijzigenProduct", "NieuwProduct"}
    ),
    "JW320": frozenset({"Header", "Antwoord", "Woonplaatsbeginsel"}),
    "JW325": frozenset({"Header", "DeclaratieAntwoord", "Client", "Prestatie"}),
}
_ORIGINAL_CLASS_NAME = {"DeclaratieAntwoord": "Declaratie"}
# The same for the retours of iJw 2.3, where an allocation sits in a Beschikking with its
# Beperkingen, and a JW303 is answered by a JW304.
RETOUR_CLASSES_2_3: Mapping[str, frozenset[str]] = {
    "JW302": frozenset(
        {
            "Header",
            "Client",
            "Relatie",
            "Contact",
            "Beschikking",
            "Beperking",
            "BeperkingScore",
            "ToegewezenProduct",
        }
    ),
    "JW304": frozenset({"Header", "Client", "Prestatie"}),
    "JW306": frozenset({"Header", "Client", "StartProduct"}),
    "JW308": frozenset({"Header", "Client", "StopProduct"}),
    "JW316": frozenset({"Header", "Client", "AangevraagdProduct"}),
}
RETOUR_CLASSES_BY_RELEASE: Mapping[str, Mapping[str, frozenset[str]]] = {
    CURRENT_RELEASE: RETOUR_CLASSES,
    RELEASE_2_3: RETOUR_CLASSES_2_3,
}
#: 2.x messages name no XSD versions, so their retours carry no XsdVersieRetour.
_RELEASES_WITHOUT_XSD_VERSIE = frozenset({RELEASE_2_3})

_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_PATH_STEP = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<index>[0-9]+)\])?$")
_IDENTIFICATIE_MAX = 12


class RetourError(GatewayError):
    """No retour can be built for this request (a programming error, never bad message input)."""


@dataclass(frozen=True, slots=True)
class XsdVersion:
    """The XSD versions a message was built with (CDT_XsdVersie)."""

    basisschema: str = DEFAULT_XSD_VERSION
    bericht: str = DEFAULT_XSD_VERSION

    def __post_init__(self) -> None:
        for value in (self.basisschema, self.bericht):
            if not _VERSION.match(value):
                raise RetourError(f"XSD version {value!r} is not of the form n.n.n")


@dataclass(frozen=True, slots=True)
class RetourIdentity:
    """What the retour says about itself.

    ``identificatie`` is IdentificatieRetour (for JW325 its own BerichtIdentificatie/Identificatie),
    ``dagtekening`` the matching date, ``xsd_versie`` the XSDs the retour is built with and
    ``xslt_versie`` the version of the in-message checks, written only on a ``0001`` rejection.
    """

    identificatie: str
    dagtekening: dt.date
    xsd_versie: XsdVersion = field(default_factory=XsdVersion)
    xslt_versie: str = DEFAULT_XSLT_VERSION

    def __post_init__(self) -> None:
        if not self.identificatie.strip() or len(self.identificatie) > _IDENTIFICATIE_MAX:
            raise RetourError("retour identificatie must be 1-12 characters and not blank")
        if not _VERSION.match(self.xslt_versie):
            raise RetourError(f"XSLT version {self.xslt_versie!r} is not of the form n.n.n")


def retour_type_for(message_type: str) -> str:
    """The retour that answers an original message type, e.g. ``JW302`` for ``JW301``."""
    kind = MESSAGE_KINDS.get(message_type)
    if kind is None:
        raise RetourError(f"unknown message type {message_type!r}")
    if kind.answered_by is None:
        raise RetourError(f"{message_type} is itself a retour; retours are not answered")
    return kind.answered_by


class _Outcome(Enum):
    ACCEPTED = "accepted"
    TECHNICAL = "technical"
    CLASSES = "classes"


_RETOUR_LEVELS = frozenset({Level.RULES, Level.STATE, Level.EXTERNAL})


@dataclass(frozen=True)
class _Verdict:
    """Where the findings put their codes: per class element of the original."""

    outcome: _Outcome
    header_codes: tuple[str, ...] = ()
    class_codes: Mapping[Element, tuple[str, ...]] = field(default_factory=dict)


def build_retour(
    original: MessageDocument,
    findings: Sequence[Finding],
    identity: RetourIdentity,
    schemas: SchemaSet,
) -> bytes:
    """Build the retour for ``original`` given the findings of its validation.

    Raises :class:`RetourError` only when asked for something the standard does not have: a
    retour for a retour, for a malformed or XSD-invalid message (answered through the
    transport instead), a class-level finding without retourcode, or a schema set that lacks
    the retour's schema.
    """
    retour_type = retour_type_for(original.message_type)
    retour_schema = schemas.get(original.release, retour_type)
    if retour_schema is None:
        raise RetourError(f"no {retour_type} schema loaded for release {original.release}")
    table = RETOUR_CLASSES_BY_RELEASE.get(original.release, {})
    classes = frozenset(_ORIGINAL_CLASS_NAME.get(name, name) for name in table.get(retour_type, ()))
    if not classes:
        raise RetourError(f"no class table for {retour_type} of release {original.release}")
    verdict = _judge(original, findings, classes)
    writer = _Writer(original, retour_schema, identity, classes)
    if retour_type == "JW325":
        root = writer.declaratie_antwoord(verdict)
    elif retour_type == "JW304":
        root = writer.declaratie_factuur_antwoord(verdict)
    else:
        root = writer.retour(verdict)
    return serialise(root)


def build_retour_for_report(
    report: ValidationReport, identity: RetourIdentity, schemas: SchemaSet
) -> bytes:
    """Build the retour for a validated message straight from its report."""
    if report.document is None or report.level in (Level.MALFORMED, Level.XSD):
        raise RetourError(f"a {report.level.value}-level report gets no retour message")
    return build_retour(report.document, report.findings, identity, schemas)


def serialise(root: Element) -> bytes:
    """UTF-8 without BOM, a double-quoted declaration, tab-indented, CRLF line ends (OP192)."""
    etree.indent(root, space="\t")
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    # Parsers turn CRLF back into LF, and lxml escapes any CR inside text as &#13;, so
    # rewriting every LF keeps the content identical.
    return (XML_DECLARATION + b"\n" + body + b"\n").replace(b"\n", b"\r\n")


def _judge(
    original: MessageDocument, findings: Sequence[Finding], classes: frozenset[str]
) -> _Verdict:
    for finding in findings:
        if finding.level not in _RETOUR_LEVELS:
            raise RetourError(
                f"a {finding.level.value}-level finding ({finding.rule}) gets no retour message"
            )
    if not findings:
        return _Verdict(_Outcome.ACCEPTED)
    if any(f.level is Level.RULES for f in findings):
        return _Verdict(_Outcome.TECHNICAL, header_codes=(TECHNICAL_REJECTION,))
    header_codes: list[str] = []
    class_codes: dict[Element, list[str]] = {}
    for finding in findings:
        if not finding.retourcode:
            raise RetourError(f"{finding.rule} is a {finding.level.value} finding without code")
        target = _class_of(original, finding.path, classes)
        codes = header_codes if target is original.header else class_codes.setdefault(target, [])
        if finding.retourcode not in codes:
            codes.append(finding.retourcode)
    return _Verdict(
        _Outcome.CLASSES,
        header_codes=tuple(header_codes),
        class_codes={el: tuple(codes) for el, codes in class_codes.items()},
    )


def _resolve(root: Element, path: str | None) -> Element:
    """The deepest element of the original that a local-name path reaches."""
    if not path:
        return root
    steps = [step for step in path.split("/") if step]
    if not steps or _step_name(steps[0]) != local_name(root):
        return root
    node = root
    for step in steps[1:]:
        match = _PATH_STEP.match(step)
        if match is None:
            break
        name = _step_name(match["name"])
        index = int(match["index"] or 1)
        same = [child for child in node if local_name(child) == name]
        if not 1 <= index <= len(same):
            break
        node = same[index - 1]
    return node


def _step_name(step: str) -> str:
    # Tolerate ``{namespace}Name`` and ``prefix:Name`` steps as well as bare local names.
    return step.rpartition("}")[2].rpartition(":")[2]


def _class_of(original: MessageDocument, path: str | None, classes: frozenset[str]) -> Element:
    """The nearest ancestor-or-self class of the path's element; the header when there is none."""
    node: Element | None = _resolve(original.root, path)
    while node is not None:
        if _is_class(node, original.schema.namespace, classes):
            return node
        node = node.getparent()
    return original.header


def _is_class(el: Element, message_namespace: str, classes: frozenset[str]) -> bool:
    return etree.QName(el).namespace == message_namespace and local_name(el) in classes


def _elements(parent: Element) -> list[Element]:
    return [child for child in parent if isinstance(child.tag, str)]


class _Writer:
    """Writes the retour tree in the retour's namespace, element order as in its XSD."""

    def __init__(
        self,
        original: MessageDocument,
        retour_schema: MessageSchema,
        identity: RetourIdentity,
        classes: frozenset[str],
    ) -> None:
        self.original = original
        self.schema = retour_schema
        self.identity = identity
        self.classes = classes
        self.ns = retour_schema.namespace
        self.basis_ns = retour_schema.basisschema_namespace or original.schema.basisschema_namespace
        prefix = retour_schema.message_type.lower()
        self.nsmap = {"ijw": self.basis_ns, prefix: self.ns}

    # -- element helpers -------------------------------------------------------------------

    def _root(self) -> Element:
        return etree.Element(etree.QName(self.ns, "Bericht"), nsmap=self.nsmap)

    def _add(self, parent: Element, name: str, value: str | None = None) -> Element:
        el = etree.SubElement(parent, etree.QName(self.ns, name))
        if value is not None:
            el.text = value
        return el

    def _add_basis(self, parent: Element, name: str, value: str) -> Element:
        el = etree.SubElement(parent, etree.QName(self.basis_ns, name))
        el.text = value
        return el

    def _codes(self, parent: Element, codes: Iterable[str]) -> None:
        holder = self._add(parent, "RetourCodes")
        for code in codes:
            self._add(holder, "RetourCode", code)

    def _xsd_version(self, parent: Element, name: str) -> None:
        holder = self._add(parent, name)
        self._add_basis(holder, "BasisschemaXsdVersie", self.identity.xsd_versie.basisschema)
        self._add_basis(holder, "BerichtXsdVersie", self.identity.xsd_versie.bericht)

    def _copy(
        self,
        source: Element,
        parent: Element,
        name: str | None = None,
        codes_for: Callable[[Element], Sequence[str] | None] | None = None,
    ) -> Element:
        """Copy ``source`` under ``parent``: message-namespace names move to the retour's."""
        qname = etree.QName(source)
        namespace = (
            self.ns if qname.namespace == self.original.schema.namespace else qname.namespace
        )
        el = etree.SubElement(parent, etree.QName(namespace, name or qname.localname))
        children = _elements(source)
        if children:
            for child in children:
                self._copy(child, el, codes_for=codes_for)
        else:
            el.text = source.text
        if codes_for is not None:
            codes = codes_for(source)
            if codes is not None:
                self._codes(el, codes)
        return el

    def _original_header(self, name: str) -> Element:
        found = find(self.original.header, name)
        if found is None:  # the XSD layer guarantees every header element
            raise RetourError(f"original header has no {name}")
        return found

    # -- JW302 / 306 / 308 / 316 / 318 / 320 -----------------------------------------------

    def retour(self, verdict: _Verdict) -> Element:
        """A retour whose header copies the original's and whose body mirrors it (§2.2)."""
        root = self._root()
        header = self._add(root, "Header")
        for child in _elements(self.original.header):
            if local_name(child) == "BerichtCode":
                self._add(header, "BerichtCode", self.schema.berichtcode)
            else:
                self._copy(child, header)
        self._add(header, "IdentificatieRetour", self.identity.identificatie)
        self._add(header, "DagtekeningRetour", self.identity.dagtekening.isoformat())
        if verdict.outcome is _Outcome.TECHNICAL:
            self._add(header, "XsltVersie", self.identity.xslt_versie)
        if self.original.release not in _RELEASES_WITHOUT_XSD_VERSIE:
            self._xsd_version(header, "XsdVersieRetour")
        if verdict.outcome is _Outcome.ACCEPTED:
            return root
        if verdict.header_codes:
            self._codes(header, verdict.header_codes)
            return root
        self._codes(header, (NO_REMARKS,))
        namespace = self.original.schema.namespace

        def codes_for(source: Element) -> Sequence[str] | None:
            if not _is_class(source, namespace, self.classes):
                return None
            return verdict.class_codes.get(source, (NO_REMARKS,))

        # One client (or answer) per message; it is faulty, or the header would have been.
        for body in _elements(self.original.root):
            if body is not self.original.header:
                self._copy(body, root, codes_for=codes_for)
        return root

    # -- JW325 ------------------------------------------------------------------------------

    def declaratie_antwoord(self, verdict: _Verdict) -> Element:
        """The JW325 answer to a JW323 (§2.3, §4 JW325 specifics, TR342)."""
        root = self._root()
        header = self._add(root, "Header")
        for name in ("BerichtCode", "BerichtVersie", "BerichtSubversie"):
            value = self.schema.berichtcode if name == "BerichtCode" else None
            self._add(header, name, value or text(self._original_header(name)))
        # The 325 is a message of the gemeente in its own right, so the parties swap.
        self._add(header, "Afzender", text(self._original_header("Ontvanger")))
        self._add(header, "Ontvanger", text(self._original_header("Afzender")))
        own_id = self._add(header, "BerichtIdentificatie")
        self._add_basis(own_id, "Identificatie", self.identity.identificatie)
        self._add_basis(own_id, "Dagtekening", self.identity.dagtekening.isoformat())
        self._xsd_version(header, "XsdVersie")
        self._copy(self._original_header("BerichtIdentificatie"), header, "DeclaratieIdentificatie")
        if verdict.outcome is _Outcome.TECHNICAL:
            self._add(header, "XsltVersie", self.identity.xslt_versie)
        self._copy(self._original_header("XsdVersie"), header, "XsdVersieDeclaratie")
        if verdict.outcome is _Outcome.TECHNICAL or verdict.header_codes:
            self._codes(header, verdict.header_codes)
            return root
        self._codes(header, (NO_REMARKS,))

        declaratie = find(self.original.root, "Declaratie")
        if declaratie is None:  # guaranteed by the JW323 XSD
            raise RetourError("original JW323 has no Declaratie")
        ingediend = _signed_at(declaratie, "TotaalIngediendBedrag")
        antwoord = self._add(root, "DeclaratieAntwoord")
        self._add(antwoord, "DeclaratieNummer", text(declaratie, "DeclaratieNummer"))
        self._total(antwoord, "TotaalIngediendBedrag", ingediend)
        if verdict.outcome is _Outcome.ACCEPTED:
            self._total(antwoord, "TotaalToegekendBedrag", ingediend)
            self._codes(antwoord, (FULLY_GRANTED,))
            return root
        declaratie_codes = verdict.class_codes.get(declaratie)
        if declaratie_codes:
            # A rejected declaration grants nothing and returns no lines (TR342).
            self._total(antwoord, "TotaalToegekendBedrag", 0)
            self._codes(antwoord, declaratie_codes)
            return root

        returned = self._rejected_clients(declaratie, verdict.class_codes)
        rejected = sum(_signed_at(p, "IngediendBedrag") for p, _ in _lines(returned))
        self._total(antwoord, "TotaalToegekendBedrag", ingediend - rejected)
        clienten = self._add(antwoord, "Clienten")
        for client, client_codes, lines in returned:
            out = self._add(clienten, "Client")
            self._add(out, "Bsn", text(client, "Bsn"))
            prestaties = self._add(out, "Prestaties")
            for prestatie, codes in lines:
                copied = self._copy(prestatie, prestaties)
                self._codes(copied, codes)
            self._codes(out, client_codes)
        self._codes(antwoord, (NO_REMARKS,))
        return root

    # -- JW304 (iJw 2.3) ------------------------------------------------------------------------

    def declaratie_factuur_antwoord(self, verdict: _Verdict) -> Element:
        """The 2.3 JW304 answer to a JW303 (432 declaratie → 433, 450 factuur → 451)."""
        root = self._root()
        header = self._add(root, "Header")
        for child in _elements(self.original.header):
            name = local_name(child)
            if name == "BerichtCode":
                self._add(header, name, _ANSWER_CODE_2_3[(child.text or "").strip()])
            elif name != "DeclaratieFactuurBedragen":  # the JW304 states its own amounts
                self._copy(child, header)
        retour_header = self._add(header, "RetourHeader")
        self._add_basis(retour_header, "GemeenteReferentieNummer", self.identity.identificatie)
        self._add_basis(retour_header, "RetourDagtekening", self.identity.dagtekening.isoformat())
        bedragen = find(self.original.header, "DeclaratieFactuurBedragen")
        if bedragen is None:  # guaranteed by the JW303 XSD
            raise RetourError("original JW303 has no DeclaratieFactuurBedragen")
        ingediend = _signed_at(bedragen, "DeclaratieFactuurTotaalBedrag")
        lines = self._granted_lines(verdict)
        granted = sum(amount for _prestatie, amount, _codes in lines)
        retour_bedragen = self._add(header, "RetourBedragen")
        self._amount(retour_bedragen, "IngediendTotaalBedrag", ingediend, "TotaalBedrag")
        self._amount(retour_bedragen, "ToegekendTotaalBedrag", granted, "TotaalBedrag")
        if verdict.outcome is _Outcome.TECHNICAL:
            self._add(header, "XsltVersie", self.identity.xslt_versie)
        self._codes(header, verdict.header_codes or (NO_REMARKS,))
        if not lines:
            return root
        clienten = self._add(root, "Clienten")
        by_prestatie = {id(prestatie): (amount, codes) for prestatie, amount, codes in lines}
        for client in findall(self.original.root, "Clienten/Client"):
            out = self._add(clienten, "Client")
            for child in _elements(client):
                if local_name(child) != "Prestaties":
                    self._copy(child, out)
                    continue
                prestaties = self._add(out, "Prestaties")
                for prestatie in findall(child, "Prestatie"):
                    amount, codes = by_prestatie[id(prestatie)]
                    self._prestatie_2_3(prestatie, prestaties, amount, codes)
            self._codes(out, verdict.class_codes.get(client, (NO_REMARKS,)))
        return root

    def _granted_lines(self, verdict: _Verdict) -> list[tuple[Element, int, tuple[str, ...]]]:
        """Every prestatie with the signed amount granted and its codes; none when the JW303
        is rejected as a whole."""
        if verdict.outcome is _Outcome.TECHNICAL or verdict.header_codes:
            return []
        lines = []
        for client in findall(self.original.root, "Clienten/Client"):
            client_codes = verdict.class_codes.get(client)
            for prestatie in findall(client, "Prestaties/Prestatie"):
                codes = verdict.class_codes.get(prestatie)
                if not codes and client_codes:
                    codes = (NOT_ASSESSED,)  # a faulty client rejects its lines unjudged
                claimed = _signed_at(prestatie, "IngediendeBedragPrestatie/DeclaratieFactuurBedrag")
                lines.append((prestatie, 0 if codes else claimed, codes or (FULLY_GRANTED,)))
        return lines

    def _prestatie_2_3(
        self, prestatie: Element, parent: Element, granted: int, codes: Sequence[str]
    ) -> None:
        """A JW303 line as the JW304 returns it: ToegekendeBedragPrestatie after the
        ProductReferentie, then the line's Commentaar and codes."""
        out = self._add(parent, "Prestatie")
        claimed = _signed_at(prestatie, "IngediendeBedragPrestatie/DeclaratieFactuurBedrag")
        for child in _elements(prestatie):
            if local_name(child) == "Commentaar":
                continue
            self._copy(child, out)
            if local_name(child) == "ProductReferentie":
                toegekend = self._add(out, "ToegekendeBedragPrestatie")
                self._amount(toegekend, "GemeenteBerekendBedrag", claimed)
                self._amount(toegekend, "ToegekendBedrag", granted)
        commentaar = find(prestatie, "Commentaar")
        if commentaar is not None:
            self._copy(commentaar, out)
        self._codes(out, codes)

    def _amount(self, parent: Element, name: str, signed: int, field: str = "Bedrag") -> None:
        """A basisschema amount with its DebetCredit (CDT_BedragMetDC, CDT_TotaalBedragMetDC)."""
        amount, debet_credit = with_debet_credit(signed)  # zero is debit (CS325)
        holder = etree.SubElement(parent, etree.QName(self.basis_ns, name))
        self._add_basis(holder, field, str(amount))
        self._add_basis(holder, "DebetCredit", debet_credit)

    def _rejected_clients(
        self, declaratie: Element, class_codes: Mapping[Element, tuple[str, ...]]
    ) -> list[tuple[Element, tuple[str, ...], list[tuple[Element, tuple[str, ...]]]]]:
        """Each client with rejected lines: its codes and the rejected prestaties with theirs."""
        returned = []
        for client in findall(declaratie, "Clienten/Client"):
            client_codes = class_codes.get(client)
            lines = []
            for prestatie in findall(client, "Prestaties/Prestatie"):
                codes = class_codes.get(prestatie)
                if codes:
                    lines.append((prestatie, codes))
                elif client_codes:
                    # A faulty client rejects all its lines without judging them.
                    lines.append((prestatie, (NOT_ASSESSED,)))
            if lines:
                returned.append((client, client_codes or (NO_REMARKS,), lines))
        return returned

    def _total(self, parent: Element, name: str, signed: int) -> None:
        amount, debet_credit = with_debet_credit(signed)  # zero is debit (CS325)
        holder = self._add(parent, name)
        self._add_basis(holder, "TotaalBedrag", str(amount))
        self._add_basis(holder, "DebetCredit", debet_credit)


#: The BerichtCode of the JW304 answering a JW303: a declaratie (432) gets 433, a factuur
#: (450) gets 451.
_ANSWER_CODE_2_3 = {"432": "433", "450": "451"}


def _lines(
    returned: Iterable[tuple[Element, tuple[str, ...], list[tuple[Element, tuple[str, ...]]]]],
) -> Iterable[tuple[Element, tuple[str, ...]]]:
    for _client, _codes, lines in returned:
        yield from lines


def _signed_at(parent: Element, name: str) -> int:
    """A signed amount child (TR342 arithmetic is shared with the declaration rules)."""
    found = find(parent, name)
    if found is None:  # guaranteed by the JW323 and JW303 XSDs
        raise RetourError(f"original {local_name(parent)} has no {name}")
    return signed_amount(found)
