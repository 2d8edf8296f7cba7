"""Verdicts: which messages' entries count (OP286), read from retours."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.document import MessageDocument, findall, text
from gateway.core.dossier.records import Entry, SubmittedDeclaration

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
