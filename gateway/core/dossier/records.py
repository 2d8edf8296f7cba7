"""The history's records, the :class:`History` protocol the rules read, and views on them.

Identities: a gemeente is its 4-digit CBS code, an aanbieder its 8-digit AGB code, a client its
BSN (held only in memory here; the SQL register decides how to store it). A ToewijzingNummer is
an integer (LDT_Nummer), so ``0300201`` and ``300201`` are the same number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class Settlement:
    """A period of a gemeente's allocation settled outside the chain (a separate financial
    arrangement with a party whose software was not ready): a later claim line on it for an
    overlapping period would pay it twice. ``begindatum``..``einddatum`` are inclusive."""

    gemeente: str
    toewijzing_nummer: int
    begindatum: dt.date
    einddatum: dt.date
    reference: str

    def overlaps(self, begin: dt.date, end: dt.date) -> bool:
        """True when [begin, end] shares a day with the settled period."""
        return self.begindatum <= end and begin <= self.einddatum


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

    def settlements(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Settlement]:
        """The periods of this gemeente's ToewijzingNummer settled outside the chain (``gateway
        settle``); not a message's entry but an operator's record."""
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
