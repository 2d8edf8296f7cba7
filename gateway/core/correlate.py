"""Heen/retour correlation: which original a retour answers, read from the headers alone.

A retour copies its original's Afzender and BerichtIdentificatie into its own header (IV028),
so the pair (Afzender, Identificatie) of the original, together with the original's type,
names the original on both sides. JW325 is a message of its own: the municipality is its
Afzender and it names the JW323 it answers in ``DeclaratieIdentificatie``; the JW323 was sent
by the provider, who is the JW325's Ontvanger. Either message may arrive first (OP080), so
both sides yield the same :class:`CorrelationKey` and the store links whatever pairs up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.document import MessageDocument

DECLARATION = "JW323"
DECLARATION_ANSWER = "JW325"


class Side(StrEnum):
    """Whether a message is the original of an exchange or the retour that answers it."""

    ORIGINAL = "original"
    RETOUR = "retour"


@dataclass(frozen=True, slots=True)
class CorrelationKey:
    """The original of an exchange: its type, its header Afzender identity (CBS or AGB code)
    and its BerichtIdentificatie/Identificatie."""

    original_type: str
    afzender: str
    bericht_id: str


@dataclass(frozen=True, slots=True)
class Correlation:
    """A message's place in an exchange: which original it is, or which original it answers."""

    side: Side
    key: CorrelationKey


def correlation_of(doc: MessageDocument) -> Correlation | None:
    """The exchange ``doc`` belongs to, or None when its type starts or answers none or the
    header lacks the values that name the original."""
    kind = MESSAGE_KINDS.get(doc.message_type)
    if kind is None:
        return None
    if kind.name == DECLARATION_ANSWER:
        # The answered JW323 came from the provider, who is this message's Ontvanger.
        return _correlation(
            Side.RETOUR,
            DECLARATION,
            doc.header_text("Ontvanger"),
            doc.header_text("DeclaratieIdentificatie/Identificatie"),
        )
    identificatie = doc.header_text("BerichtIdentificatie/Identificatie")
    afzender = doc.header_text("Afzender")
    if kind.answers is not None:
        return _correlation(Side.RETOUR, kind.answers, afzender, identificatie)
    if kind.answered_by is not None:
        return _correlation(Side.ORIGINAL, kind.name, afzender, identificatie)
    return None


def _correlation(
    side: Side, original_type: str, afzender: str | None, bericht_id: str | None
) -> Correlation | None:
    if not afzender or not bericht_id:
        return None
    return Correlation(side, CorrelationKey(original_type, afzender, bericht_id))
