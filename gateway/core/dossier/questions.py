"""What the cross-message rules will ask the history about one message, read from the message.

A history that reads a database can then fetch everything at once instead of one query per
question (:class:`~gateway.store.history.SqlHistory`). The list only has to be right for the
common case: a history answers a question it did not expect by asking the store then, so a
rule that asks something new stays correct and only costs one more read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.document import MessageDocument
from gateway.core.dossier.reading import (
    allocations_in,
    answer_in,
    claim_lines_in,
    deliveries_in,
    requests_in,
)

_ORIGINALS = frozenset({"JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323"})


@dataclass(frozen=True, slots=True)
class Questions:
    """The keys a message's rules look up, per kind of question (see :class:`History`)."""

    identifications: frozenset[tuple[str, str, str]] = frozenset()
    """(sender, message type, Identificatie): ``message_seen``."""
    allocation_numbers: frozenset[tuple[str, int]] = frozenset()
    """(gemeente, ToewijzingNummer): ``allocation_versions`` and ``allocation_claims``."""
    clients: frozenset[tuple[str, str, str]] = frozenset()
    """(gemeente, aanbieder, BSN): ``client_allocations``, ``deliveries`` and
    ``client_requests`` with whether each request is settled (``request_settled``)."""
    references: frozenset[tuple[str, str]] = frozenset()
    """(aanbieder, ReferentieAanbieder): requests, allocations and answers with it."""
    declaration_numbers: frozenset[tuple[str, str]] = frozenset()
    """(aanbieder, DeclaratieNummer): ``declaration_number_seen``."""
    claim_references: frozenset[tuple[str, str, str]] = frozenset()
    """(aanbieder, gemeente, ReferentieNummer): ``claim_line``."""
    credited_references: frozenset[tuple[str, str, str]] = frozenset()
    """(aanbieder, gemeente, ReferentieNummer of a debit): ``credits_of``."""
    submissions: frozenset[tuple[str, str, str]] = frozenset()
    """(aanbieder, gemeente, Identificatie of a JW323): ``submitted_declaration``."""


def questions_of(doc: MessageDocument) -> Questions:
    """The questions the dossier rules of ``doc``'s message type ask about it."""
    asked = _Asked()
    if doc.message_type in _ORIGINALS:
        identificatie = doc.identificatie or ""
        sender = doc.afzender or ""
        asked.identifications.add((sender, doc.message_type, identificatie))
    reader = _READERS.get(doc.message_type)
    if reader is not None:
        reader(doc, asked)
    return Questions(**{name: frozenset(keys) for name, keys in vars(asked).items()})


class _Asked:
    """The questions collected so far (the fields of :class:`Questions`, as mutable sets)."""

    def __init__(self) -> None:
        self.identifications: set[tuple[str, str, str]] = set()
        self.allocation_numbers: set[tuple[str, int]] = set()
        self.clients: set[tuple[str, str, str]] = set()
        self.references: set[tuple[str, str]] = set()
        self.declaration_numbers: set[tuple[str, str]] = set()
        self.claim_references: set[tuple[str, str, str]] = set()
        self.credited_references: set[tuple[str, str, str]] = set()
        self.submissions: set[tuple[str, str, str]] = set()


def _allocation(doc: MessageDocument, asked: _Asked) -> None:
    for _, allocation in allocations_in(doc):
        asked.allocation_numbers.add((allocation.gemeente, allocation.toewijzing_nummer))
        if allocation.referentie_aanbieder is not None:
            asked.references.add((allocation.aanbieder, allocation.referentie_aanbieder))


def _delivery(doc: MessageDocument, asked: _Asked) -> None:
    for line in deliveries_in(doc):
        d = line.delivery
        asked.clients.add((d.gemeente, d.aanbieder, d.bsn))
        if d.key.toewijzing_nummer is not None:
            asked.allocation_numbers.add((d.gemeente, d.key.toewijzing_nummer))


def _request(doc: MessageDocument, asked: _Asked) -> None:
    for _, request in requests_in(doc):
        asked.references.add((request.aanbieder, request.referentie))
    if doc.message_type == "JW317":  # TR374 and the current assignments (TR349 and others)
        gemeente = doc.ontvanger or ""
        aanbieder = doc.afzender or ""
        asked.clients.add((gemeente, aanbieder, doc.text(doc.root, "Client/Bsn") or ""))


def _answer(doc: MessageDocument, asked: _Asked) -> None:
    found = answer_in(doc)
    if found is not None:
        asked.references.add((found[1].aanbieder, found[1].referentie))


def _claim(doc: MessageDocument, asked: _Asked) -> None:
    nummer = doc.text(doc.root, "Declaratie/DeclaratieNummer")
    if nummer:
        asked.declaration_numbers.add((doc.afzender or "", nummer))
    for _, line in claim_lines_in(doc):
        asked.allocation_numbers.add((line.gemeente, line.toewijzing_nummer))
        asked.claim_references.add((line.aanbieder, line.gemeente, line.referentie_nummer))
        vorig = line.vorig_referentie_nummer
        if vorig is not None:
            asked.claim_references.add((line.aanbieder, line.gemeente, vorig))
            asked.credited_references.add((line.aanbieder, line.gemeente, vorig))


def _claim_answer(doc: MessageDocument, asked: _Asked) -> None:
    identificatie = doc.header_text("DeclaratieIdentificatie/Identificatie")
    if identificatie is not None:
        aanbieder = doc.ontvanger or ""
        gemeente = doc.afzender or ""
        asked.submissions.add((aanbieder, gemeente, identificatie))


_READERS: dict[str, Callable[[MessageDocument, _Asked], None]] = {
    "JW301": _allocation,
    "JW305": _delivery,
    "JW307": _delivery,
    "JW315": _request,
    "JW317": _request,
    "JW319": _answer,
    "JW323": _claim,
    "JW325": _claim_answer,
}
