"""What earlier accepted messages established: the history cross-message (level B) rules read.

:class:`History` is the small read-only protocol the rules use; the daemon's SQL-backed register
implements it, and :class:`InMemoryHistory` implements it for tests and tools. Only **accepted**
messages are folded in: a rejected message counts as never sent (OP286), and of a JW323 only the
accepted prestaties count. Folding never depends on arrival order beyond what the messages say
themselves (OP080): versions of an allocation are ordered by Toewijzingsdatum + Toewijzingstijd,
not by when they arrived.

Identities: a gemeente is its 4-digit CBS code, an aanbieder its 8-digit AGB code, a client its
BSN (held only in memory here; the SQL register decides how to store it). A ToewijzingNummer is
an integer (LDT_Nummer), so ``0300201`` and ``300201`` are the same number.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.core.document import Element, MessageDocument, findall, text

DELETED_REDEN_WIJZIGING = "13"
TEMPORARY_STOP = "20"
FIRST_DELIVERY = "1"
DELETE_DELIVERY = "3"
DEBET = "D"
CREDIT = "C"


# --- what the history holds --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allocation:
    """One version of a ToegewezenProduct (JW301) as the gemeente fixed it."""

    gemeente: str
    aanbieder: str
    bsn: str
    toewijzing_nummer: int
    toewijzingsdatum: dt.date
    toewijzingstijd: dt.time
    ingangsdatum: dt.date
    einddatum: dt.date | None = None
    referentie_aanbieder: str | None = None
    categorie: str | None = None
    code: str | None = None
    reden_wijziging: str | None = None
    volume: int | None = None
    eenheid: str | None = None
    frequentie: str | None = None
    budget: int | None = None

    @property
    def moment(self) -> dt.datetime:
        """When this version was fixed; the latest moment is the current version (IV013)."""
        return dt.datetime.combine(self.toewijzingsdatum, self.toewijzingstijd)

    @property
    def deleted(self) -> bool:
        """True for a version that deletes the assignment (RedenWijziging 13, CS335)."""
        return self.reden_wijziging == DELETED_REDEN_WIJZIGING

    def in_force_on(self, day: dt.date) -> bool:
        """True when the assignment is not deleted and has not ended before ``day``."""
        return not self.deleted and (self.einddatum is None or self.einddatum >= day)


class DeliveryKind(StrEnum):
    """A StartProduct (JW305) or a StopProduct (JW307)."""

    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class StartKey:
    """The key elements a stop shares with the start it ends (TR382, IV096)."""

    toewijzing_nummer: int | None
    categorie: str | None
    code: str | None
    begindatum: dt.date

    @property
    def assignment(self) -> tuple[int | None, str | None, str | None]:
        """What identifies the delivered assignment: the number, or for taakgericht delivery
        (no number) the product."""
        if self.toewijzing_nummer is not None:
            return (self.toewijzing_nummer, None, None)
        return (None, self.categorie, self.code)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A start or stop delivered with StatusAanlevering 1 and not deleted since."""

    kind: DeliveryKind
    aanbieder: str
    gemeente: str
    bsn: str
    key: StartKey
    reden_beeindiging: str | None = None
    einddatum: dt.date | None = None

    @property
    def temporary(self) -> bool:
        """True for a temporary stop (RedenBeeindiging 20, OP378)."""
        return self.kind is DeliveryKind.STOP and self.reden_beeindiging == TEMPORARY_STOP


@dataclass(frozen=True, slots=True)
class Request:
    """A request for an assignment: one AangevraagdProduct of a JW315, or a JW317 Verzoek."""

    message_type: str
    aanbieder: str
    gemeente: str
    bsn: str
    referentie: str
    dagtekening: dt.date


@dataclass(frozen=True, slots=True)
class Answer:
    """A JW319 answer to a request."""

    gemeente: str
    aanbieder: str
    referentie: str
    verzoek_antwoord: str
    dagtekening: dt.date


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """An accepted JW323 Prestatie. ``bedrag`` is signed: debit positive, credit negative."""

    aanbieder: str
    gemeente: str
    bsn: str
    declaratie_nummer: str
    referentie_nummer: str
    vorig_referentie_nummer: str | None
    toewijzing_nummer: int
    categorie: str
    code: str
    begindatum: dt.date
    einddatum: dt.date
    volume: int
    eenheid: str
    bedrag: int

    @property
    def credit(self) -> bool:
        """True for a credit line (it cancels the debit named by VorigReferentieNummer)."""
        return self.bedrag < 0 or self.vorig_referentie_nummer is not None


@dataclass(frozen=True, slots=True)
class Identification:
    """A message's Identificatie per sender and message type (TR056)."""

    sender: str
    message_type: str
    identificatie: str


@dataclass(frozen=True, slots=True)
class DeliveryChange:
    """A start or stop line as delivered: StatusAanlevering 1 adds it, 3 deletes it."""

    delivery: Delivery
    status: str


@dataclass(frozen=True, slots=True)
class Declaration:
    """A DeclaratieNummer of which at least one line was accepted (TR333)."""

    aanbieder: str
    gemeente: str
    declaratie_nummer: str


Entry = Identification | Allocation | DeliveryChange | Request | Answer | Declaration | ClaimLine
"""What an accepted message adds to the history; see :func:`entries_of`."""


class History(Protocol):
    """What cross-message rules may ask about earlier accepted messages.

    Every query returns only what accepted messages established: deleted deliveries are gone,
    rejected claim lines never arrive. Sequences may come in any order.
    """

    def message_seen(self, sender: str, message_type: str, identificatie: str) -> bool:
        """True when ``sender`` already sent a ``message_type`` with this Identificatie."""
        ...

    def allocation_versions(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Allocation]:
        """Every version of this gemeente's ToewijzingNummer, any client, any aanbieder."""
        ...

    def client_allocations(self, gemeente: str, aanbieder: str, bsn: str) -> Sequence[Allocation]:
        """Every version of every allocation of this client by this gemeente to this aanbieder."""
        ...

    def allocations_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Allocation]:
        """Allocation versions to ``aanbieder`` carrying this ReferentieAanbieder."""
        ...

    def deliveries(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Delivery]:
        """Current starts and stops of this client from this aanbieder to this gemeente."""
        ...

    def requests_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Request]:
        """Requests (JW315 products, JW317) of ``aanbieder`` with this ReferentieAanbieder."""
        ...

    def client_requests(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Request]:
        """All requests of this aanbieder to this gemeente about this client."""
        ...

    def answers(self, aanbieder: str, referentie: str) -> Sequence[Answer]:
        """The JW319 answers to ``aanbieder`` about this ReferentieAanbieder."""
        ...

    def declaration_number_seen(self, aanbieder: str, declaratie_nummer: str) -> bool:
        """True when ``aanbieder`` already had a declaration with this DeclaratieNummer accepted
        (wholly or in part)."""
        ...

    def claim_line(self, aanbieder: str, gemeente: str, referentie_nummer: str) -> ClaimLine | None:
        """The accepted line with this ReferentieNummer, if any."""
        ...

    def credits_of(
        self, aanbieder: str, gemeente: str, referentie_nummer: str
    ) -> Sequence[ClaimLine]:
        """Accepted credit lines whose VorigReferentieNummer is ``referentie_nummer``."""
        ...

    def allocation_claims(self, gemeente: str, toewijzing_nummer: int) -> Sequence[ClaimLine]:
        """Accepted lines (debit and credit) claimed on this gemeente's ToewijzingNummer."""
        ...

    def submitted_declaration(
        self, aanbieder: str, gemeente: str, identificatie: str
    ) -> SubmittedDeclaration | None:
        """The JW323 ``aanbieder`` sent ``gemeente`` with this BerichtIdentificatie/Identificatie,
        as SUBMITTED: every line, accepted or rejected (a JW325 answers all of them)."""
        ...


# --- derived views shared by the rules ---------------------------------------------------------


def most_recent(versions: Iterable[Allocation]) -> Allocation | None:
    """The current version: latest Toewijzingsdatum + Toewijzingstijd (IV013)."""
    return max(versions, key=lambda v: v.moment, default=None)


def current_versions(versions: Iterable[Allocation]) -> dict[int, Allocation]:
    """The most recent version per ToewijzingNummer."""
    latest: dict[int, Allocation] = {}
    for version in versions:
        known = latest.get(version.toewijzing_nummer)
        if known is None or version.moment > known.moment:
            latest[version.toewijzing_nummer] = version
    return latest


def open_claims(lines: Iterable[ClaimLine]) -> list[ClaimLine]:
    """The debit lines not cancelled by a credit among ``lines``."""
    listed = list(lines)
    credited = {line.vorig_referentie_nummer for line in listed if line.credit}
    return [line for line in listed if not line.credit and line.referentie_nummer not in credited]


def request_settled(history: History, request: Request) -> bool:
    """True when a request got its final answer: an allocation carrying its reference, or a
    JW319 "afgewezen". "In onderzoek" (2) keeps it open (OP274)."""
    if any(
        a.gemeente == request.gemeente
        for a in history.allocations_with_reference(request.aanbieder, request.referentie)
    ):
        return True
    return any(
        answer.verzoek_antwoord == "1" and answer.gemeente == request.gemeente
        for answer in history.answers(request.aanbieder, request.referentie)
    )


# --- reading messages into history records -----------------------------------------------------


def _product(
    doc: MessageDocument, el: Element, path: str = "Product"
) -> tuple[str | None, str | None]:
    return doc.text(el, f"{path}/Categorie"), doc.text(el, f"{path}/Code")


# The readers below run once per document (MessageDocument.memo): the rules of several codes
# and the register update all ask for the same lines, and reading them is the costly part.
# Each public reader hands out a fresh list, so a caller can never change what another sees.


def allocations_in(doc: MessageDocument) -> list[tuple[Element, Allocation]]:
    """Each ToegewezenProduct of a JW301 with the allocation version it states."""
    return list(doc.memo(_allocations))


def _allocations(doc: MessageDocument) -> tuple[tuple[Element, Allocation], ...]:
    gemeente = doc.header_text("Afzender") or ""
    aanbieder = doc.header_text("Ontvanger") or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    result = []
    for product in doc.iter_local("ToegewezenProduct"):
        number = doc.int_at(product, "ToewijzingNummer")
        datum = doc.date_at(product, "Toewijzingsdatum")
        ingang = doc.date_at(product, "Ingangsdatum")
        tijd = _time(doc.text(product, "Toewijzingstijd"))
        if number is None or datum is None or ingang is None or tijd is None:
            continue  # XSD-valid messages always have these
        categorie, code = _product(doc, product)
        result.append(
            (
                product,
                Allocation(
                    gemeente=gemeente,
                    aanbieder=aanbieder,
                    bsn=bsn,
                    toewijzing_nummer=number,
                    toewijzingsdatum=datum,
                    toewijzingstijd=tijd,
                    ingangsdatum=ingang,
                    einddatum=doc.date_at(product, "Einddatum"),
                    referentie_aanbieder=doc.text(product, "ReferentieAanbieder"),
                    categorie=categorie,
                    code=code,
                    reden_wijziging=doc.text(product, "RedenWijziging"),
                    volume=doc.int_at(product, "Omvang/Volume"),
                    eenheid=doc.text(product, "Omvang/Eenheid"),
                    frequentie=doc.text(product, "Omvang/Frequentie"),
                    budget=doc.int_at(product, "Budget"),
                ),
            )
        )
    return tuple(result)


def _time(value: str | None) -> dt.time | None:
    if value is None:
        return None
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """A StartProduct/StopProduct of the message being read, with its StatusAanlevering."""

    element: Element
    delivery: Delivery
    status: str


def deliveries_in(doc: MessageDocument) -> list[DeliveryLine]:
    """Each StartProduct of a JW305 or StopProduct of a JW307 as a delivery line."""
    return list(doc.memo(_deliveries))


def _deliveries(doc: MessageDocument) -> tuple[DeliveryLine, ...]:
    aanbieder = doc.header_text("Afzender") or ""
    gemeente = doc.header_text("Ontvanger") or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    kind = DeliveryKind.START if doc.message_type == "JW305" else DeliveryKind.STOP
    name = "StartProduct" if kind is DeliveryKind.START else "StopProduct"
    result = []
    for product in doc.iter_local(name):
        begin = doc.date_at(product, "Begindatum")
        if begin is None:
            continue
        categorie, code = _product(doc, product)
        key = StartKey(doc.int_at(product, "ToewijzingNummer"), categorie, code, begin)
        delivery = Delivery(
            kind=kind,
            aanbieder=aanbieder,
            gemeente=gemeente,
            bsn=bsn,
            key=key,
            reden_beeindiging=doc.text(product, "RedenBeeindiging"),
            einddatum=doc.date_at(product, "Einddatum"),
        )
        status = doc.text(product, "StatusAanlevering") or ""
        result.append(DeliveryLine(product, delivery, status))
    return tuple(result)


def requests_in(doc: MessageDocument) -> list[tuple[Element, Request]]:
    """Each AangevraagdProduct of a JW315, or the Verzoek of a JW317, as a request."""
    return list(doc.memo(_requests))


def _requests(doc: MessageDocument) -> tuple[tuple[Element, Request], ...]:
    aanbieder = doc.header_text("Afzender") or ""
    gemeente = doc.header_text("Ontvanger") or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    dagtekening = doc.dagtekening or dt.date.min
    name = "AangevraagdProduct" if doc.message_type == "JW315" else "Verzoek"
    result = []
    for el in doc.iter_local(name):
        referentie = doc.text(el, "ReferentieAanbieder")
        if referentie is not None:
            request = Request(doc.message_type, aanbieder, gemeente, bsn, referentie, dagtekening)
            result.append((el, request))
    return tuple(result)


def answer_in(doc: MessageDocument) -> tuple[Element, Answer] | None:
    """The Antwoord of a JW319 as an answer."""
    for el in doc.iter_local("Antwoord"):
        referentie = doc.text(el, "ReferentieAanbieder")
        antwoord = doc.text(el, "VerzoekAntwoord")
        if referentie is None or antwoord is None:
            return None
        return el, Answer(
            gemeente=doc.header_text("Afzender") or "",
            aanbieder=doc.header_text("Ontvanger") or "",
            referentie=referentie,
            verzoek_antwoord=antwoord,
            dagtekening=doc.dagtekening or dt.date.min,
        )
    return None


def claim_lines_in(doc: MessageDocument) -> list[tuple[Element, ClaimLine]]:
    """Each Prestatie of a JW323 as a claim line, in document order."""
    return list(doc.memo(_claim_lines))


def _claim_lines(doc: MessageDocument) -> tuple[tuple[Element, ClaimLine], ...]:
    aanbieder = doc.header_text("Afzender") or ""
    gemeente = doc.header_text("Ontvanger") or ""
    nummer = doc.text(doc.root, "Declaratie/DeclaratieNummer") or ""
    result = []
    for client in doc.findall(doc.root, "Declaratie/Clienten/Client"):
        bsn = doc.text(client, "Bsn") or ""
        for prestatie in doc.findall(client, "Prestaties/Prestatie"):
            line = _claim_line(
                doc, prestatie, aanbieder=aanbieder, gemeente=gemeente, bsn=bsn, nummer=nummer
            )
            if line is not None:
                result.append((prestatie, line))
    return tuple(result)


def _claim_line(
    doc: MessageDocument,
    prestatie: Element,
    *,
    aanbieder: str,
    gemeente: str,
    bsn: str,
    nummer: str,
) -> ClaimLine | None:
    referentie = doc.text(prestatie, "ProductReferentie/ReferentieNummer")
    toewijzing = doc.int_at(prestatie, "ToewijzingNummer")
    begin = doc.date_at(prestatie, "ProductPeriode/Begindatum")
    end = doc.date_at(prestatie, "ProductPeriode/Einddatum")
    volume = doc.int_at(prestatie, "GeleverdVolume")
    bedrag = doc.int_at(prestatie, "IngediendBedrag/Bedrag")
    indicator = doc.text(prestatie, "IngediendBedrag/DebetCredit")
    if (
        referentie is None
        or toewijzing is None
        or begin is None
        or end is None
        or volume is None
        or bedrag is None
    ):
        return None
    return ClaimLine(
        aanbieder=aanbieder,
        gemeente=gemeente,
        bsn=bsn,
        declaratie_nummer=nummer,
        referentie_nummer=referentie,
        vorig_referentie_nummer=doc.text(prestatie, "ProductReferentie/VorigReferentieNummer"),
        toewijzing_nummer=toewijzing,
        categorie=doc.text(prestatie, "ProductCategorie") or "",
        code=doc.text(prestatie, "ProductCode") or "",
        begindatum=begin,
        einddatum=end,
        volume=volume,
        eenheid=doc.text(prestatie, "Eenheid") or "",
        bedrag=-bedrag if indicator == CREDIT else bedrag,
    )


# --- the claim as submitted (provider-side JW325 checks) --------------------------------------


@dataclass(frozen=True, slots=True)
class SubmittedLine:
    """A JW323 Prestatie as submitted, whatever its verdict; ``tarief`` is ProductTarief."""

    line: ClaimLine
    tarief: int | None


@dataclass(frozen=True, slots=True)
class SubmittedDeclaration:
    """A JW323 as the aanbieder submitted it: what its JW325 must match (TR337, TR366, TR367,
    TR371, TR376). ``totaal`` is TotaalIngediendBedrag, signed like :attr:`ClaimLine.bedrag`."""

    aanbieder: str
    gemeente: str
    identificatie: str
    dagtekening: dt.date | None
    declaratie_nummer: str
    basisschema_xsd_versie: str | None
    bericht_xsd_versie: str | None
    totaal: int | None
    lines: tuple[SubmittedLine, ...]


def submitted_declaration_in(doc: MessageDocument) -> SubmittedDeclaration | None:
    """A JW323 read as a :class:`SubmittedDeclaration`; None for any other message type."""
    if doc.message_type != "JW323":
        return None
    totaal = doc.int_at(doc.root, "Declaratie/TotaalIngediendBedrag/TotaalBedrag")
    indicator = doc.text(doc.root, "Declaratie/TotaalIngediendBedrag/DebetCredit")
    if totaal is not None and indicator == CREDIT:
        totaal = -totaal
    return SubmittedDeclaration(
        aanbieder=doc.header_text("Afzender") or "",
        gemeente=doc.header_text("Ontvanger") or "",
        identificatie=doc.header_text("BerichtIdentificatie/Identificatie") or "",
        dagtekening=doc.dagtekening,
        declaratie_nummer=doc.text(doc.root, "Declaratie/DeclaratieNummer") or "",
        basisschema_xsd_versie=doc.header_text("XsdVersie/BasisschemaXsdVersie"),
        bericht_xsd_versie=doc.header_text("XsdVersie/BerichtXsdVersie"),
        totaal=totaal,
        lines=tuple(
            SubmittedLine(line, doc.int_at(prestatie, "ProductTarief"))
            for prestatie, line in doc.memo(_claim_lines)
        ),
    )


# --- what an accepted message establishes ------------------------------------------------------


def entries_of(doc: MessageDocument, rejected_lines: Collection[str] = ()) -> list[Entry]:
    """Everything an ACCEPTED message adds to the history, in document order.

    Every message adds its :class:`Identification`. Of a JW323 only the prestaties whose
    ReferentieNummer is not in ``rejected_lines`` count, and its :class:`Declaration` only when
    at least one of them does. Both history implementations fold exactly these entries.
    """
    entries: list[Entry] = [
        Identification(
            doc.header_text("Afzender") or "",
            doc.message_type,
            doc.header_text("BerichtIdentificatie/Identificatie") or "",
        )
    ]
    match doc.message_type:
        case "JW301":
            entries += [allocation for _, allocation in allocations_in(doc)]
        case "JW305" | "JW307":
            entries += [DeliveryChange(line.delivery, line.status) for line in deliveries_in(doc)]
        case "JW315" | "JW317":
            entries += [request for _, request in requests_in(doc)]
        case "JW319":
            found = answer_in(doc)
            if found is not None:
                entries.append(found[1])
        case "JW323":
            rejected = frozenset(rejected_lines)
            lines = [
                line for _, line in doc.memo(_claim_lines) if line.referentie_nummer not in rejected
            ]
            if lines:
                first = lines[0]
                entries.append(
                    Declaration(first.aanbieder, first.gemeente, first.declaratie_nummer)
                )
            entries += lines
        case _:
            pass
    return entries


def fold_deliveries(
    current: Sequence[Delivery], changes: Sequence[DeliveryChange]
) -> list[Delivery]:
    """The current deliveries after one message's start/stop lines.

    A correction is delete + new in one message (IV008), so the message's deletes apply first;
    a delete of an unknown delivery and a repeated delivery change nothing.
    """
    result = list(current)
    for change in sorted(changes, key=lambda c: c.status != DELETE_DELIVERY):
        if change.status == DELETE_DELIVERY:
            if change.delivery in result:
                result.remove(change.delivery)
        elif change.status == FIRST_DELIVERY and change.delivery not in result:
            result.append(change.delivery)
    return result


# --- verdicts: what counts as accepted (OP286) ----------------------------------------------


class Verdict(StrEnum):
    """Whether a message's entries count: ``pending`` ones count until the recipient's retour
    rejects them (OP080: later messages may arrive before that retour); ``rejected`` ones are
    as if never sent (OP286)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# Codes that say "no remarks", "not assessed" or "fully granted": they reject nothing by
# themselves (a class with 0233 sits beside a class with the real code).
_NOT_REJECTING = frozenset({"0200", "0233", "8001"})


@dataclass(frozen=True, slots=True)
class RetourVerdict:
    """What a received retour decides about its original: everything rejected, or (JW325)
    only the returned prestaties; an empty ``rejected_lines`` with ``rejects_all`` False
    accepts the whole original."""

    rejects_all: bool
    rejected_lines: frozenset[str] = frozenset()


def retour_verdict(doc: MessageDocument) -> RetourVerdict:
    """Read a retour (JW302 ... JW325): which part of its original it rejects.

    A retour without faults carries no RetourCode (302-320) or only ``0200``/``8001`` (325).
    Any other code on any class rejects the whole original, except in a JW325 whose header
    and DeclaratieAntwoord accept: there only the returned prestaties are rejected.
    """
    if doc.message_type != "JW325":
        codes = {text(el) for el in doc.iter_local("RetourCode")}
        return RetourVerdict(rejects_all=bool(codes - _NOT_REJECTING))
    header_codes = {text(el) for el in findall(doc.header, "RetourCodes/RetourCode")}
    antwoord = findall(doc.root, "DeclaratieAntwoord")
    antwoord_codes = {text(el) for a in antwoord for el in findall(a, "RetourCodes/RetourCode")}
    if header_codes - _NOT_REJECTING or not antwoord or antwoord_codes - _NOT_REJECTING:
        return RetourVerdict(rejects_all=True)
    returned = {
        text(p, "ProductReferentie/ReferentieNummer")
        for p in findall(antwoord[0], "Clienten/Client/Prestaties/Prestatie")
    }
    return RetourVerdict(False, frozenset(r for r in returned if r is not None))


@dataclass(frozen=True, slots=True)
class RegisterUpdate:
    """What one stored message does to the register: its entries with their verdict, and for a
    received retour what it decides about its original's pending entries."""

    entries: tuple[Entry, ...]
    verdict: Verdict
    retour: RetourVerdict | None = None
    submitted: SubmittedDeclaration | None = None
    """A JW323 as submitted, all lines, whatever their verdict (for the JW325 checks)."""


# --- the in-memory implementation --------------------------------------------------------------


class InMemoryHistory:
    """A :class:`History` held in dictionaries; :meth:`record` folds in accepted messages."""

    def __init__(self) -> None:
        self._identifications: set[tuple[str, str, str]] = set()
        self._allocations: dict[tuple[str, int], dict[dt.datetime, Allocation]] = defaultdict(dict)
        self._deliveries: dict[tuple[str, str, str], list[Delivery]] = defaultdict(list)
        self._requests: dict[tuple[str, str], list[Request]] = defaultdict(list)
        self._answers: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        self._declarations: set[tuple[str, str]] = set()
        self._lines: dict[tuple[str, str, str], ClaimLine] = {}
        self._submitted: dict[tuple[str, str, str], SubmittedDeclaration] = {}

    # -- folding --

    def record(self, doc: MessageDocument, *, rejected_lines: Collection[str] = ()) -> None:
        """Fold an ACCEPTED message into the history.

        Call it only for messages that were accepted; a rejected message changes nothing
        (OP286). For a JW323, ``rejected_lines`` names the ReferentieNummers of the prestaties
        that were rejected; only the others are recorded, and the DeclaratieNummer only when at
        least one line was accepted. A JW323 is also remembered as submitted, all lines
        included (see :meth:`remember_submission`).
        """
        self.fold(entries_of(doc, rejected_lines))
        self.remember_submission(doc)

    def remember_submission(self, doc: MessageDocument) -> None:
        """Remember a JW323 as submitted, whatever its verdict; other messages are ignored.

        Also for a JW323 rejected as a whole: its JW325 still answers it.
        """
        submitted = submitted_declaration_in(doc)
        if submitted is not None:
            key = (submitted.aanbieder, submitted.gemeente, submitted.identificatie)
            self._submitted[key] = submitted

    def fold(self, entries: Iterable[Entry]) -> None:
        """Fold the entries of one accepted message (see :func:`entries_of`)."""
        changes: list[DeliveryChange] = []
        for entry in entries:
            match entry:
                case Identification():
                    key = (entry.sender, entry.message_type, entry.identificatie)
                    self._identifications.add(key)
                case Allocation():
                    self._allocations[(entry.gemeente, entry.toewijzing_nummer)][entry.moment] = (
                        entry
                    )
                case DeliveryChange():
                    changes.append(entry)
                case Request():
                    self._requests[(entry.aanbieder, entry.referentie)].append(entry)
                case Answer():
                    self._answers[(entry.aanbieder, entry.referentie)].append(entry)
                case Declaration():
                    self._declarations.add((entry.aanbieder, entry.declaratie_nummer))
                case ClaimLine():
                    self._lines[(entry.aanbieder, entry.gemeente, entry.referentie_nummer)] = entry
        by_client: dict[tuple[str, str, str], list[DeliveryChange]] = defaultdict(list)
        for change in changes:
            d = change.delivery
            by_client[(d.aanbieder, d.gemeente, d.bsn)].append(change)
        for client, client_changes in by_client.items():
            self._deliveries[client] = fold_deliveries(self._deliveries[client], client_changes)

    # -- History queries --

    def message_seen(self, sender: str, message_type: str, identificatie: str) -> bool:
        """See :meth:`History.message_seen`."""
        return (sender, message_type, identificatie) in self._identifications

    def allocation_versions(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Allocation]:
        """See :meth:`History.allocation_versions`."""
        return list(self._allocations.get((gemeente, toewijzing_nummer), {}).values())

    def client_allocations(self, gemeente: str, aanbieder: str, bsn: str) -> Sequence[Allocation]:
        """See :meth:`History.client_allocations`."""
        return [
            version
            for (owner, _), versions in self._allocations.items()
            if owner == gemeente
            for version in versions.values()
            if version.aanbieder == aanbieder and version.bsn == bsn
        ]

    def allocations_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Allocation]:
        """See :meth:`History.allocations_with_reference`."""
        return [
            version
            for versions in self._allocations.values()
            for version in versions.values()
            if version.aanbieder == aanbieder and version.referentie_aanbieder == referentie
        ]

    def deliveries(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Delivery]:
        """See :meth:`History.deliveries`."""
        return list(self._deliveries.get((aanbieder, gemeente, bsn), ()))

    def requests_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Request]:
        """See :meth:`History.requests_with_reference`."""
        return list(self._requests.get((aanbieder, referentie), ()))

    def client_requests(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Request]:
        """See :meth:`History.client_requests`."""
        return [
            request
            for (owner, _), requests in self._requests.items()
            if owner == aanbieder
            for request in requests
            if request.gemeente == gemeente and request.bsn == bsn
        ]

    def answers(self, aanbieder: str, referentie: str) -> Sequence[Answer]:
        """See :meth:`History.answers`."""
        return list(self._answers.get((aanbieder, referentie), ()))

    def declaration_number_seen(self, aanbieder: str, declaratie_nummer: str) -> bool:
        """See :meth:`History.declaration_number_seen`."""
        return (aanbieder, declaratie_nummer) in self._declarations

    def claim_line(self, aanbieder: str, gemeente: str, referentie_nummer: str) -> ClaimLine | None:
        """See :meth:`History.claim_line`."""
        return self._lines.get((aanbieder, gemeente, referentie_nummer))

    def credits_of(
        self, aanbieder: str, gemeente: str, referentie_nummer: str
    ) -> Sequence[ClaimLine]:
        """See :meth:`History.credits_of`."""
        return [
            line
            for (owner, receiver, _), line in self._lines.items()
            if owner == aanbieder
            and receiver == gemeente
            and line.credit
            and line.vorig_referentie_nummer == referentie_nummer
        ]

    def allocation_claims(self, gemeente: str, toewijzing_nummer: int) -> Sequence[ClaimLine]:
        """See :meth:`History.allocation_claims`."""
        return [
            line
            for line in self._lines.values()
            if line.gemeente == gemeente and line.toewijzing_nummer == toewijzing_nummer
        ]

    def submitted_declaration(
        self, aanbieder: str, gemeente: str, identificatie: str
    ) -> SubmittedDeclaration | None:
        """See :meth:`History.submitted_declaration`."""
        return self._submitted.get((aanbieder, gemeente, identificatie))
