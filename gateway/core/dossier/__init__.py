"""What earlier accepted messages established: the history cross-message (level B) rules read.

:class:`History` is the small read-only protocol the rules use; the daemon's SQL-backed register
implements it, and :class:`InMemoryHistory` implements it for tests and tools. Only **accepted**
messages are folded in: a rejected message counts as never sent (OP286), and of a JW323 only the
accepted prestaties count. Folding never depends on arrival order beyond what the messages say
themselves (OP080): versions of an allocation are ordered by Toewijzingsdatum + Toewijzingstijd,
not by when they arrived.

The parts: :mod:`~gateway.core.dossier.records` (the records, the protocol and views on them),
:mod:`~gateway.core.dossier.reading` (a message read into records), :mod:`~gateway.core.dossier.
verdicts` (which entries count) and :mod:`~gateway.core.dossier.memory` (the in-memory history).
"""

from __future__ import annotations

from gateway.core.dossier.memory import InMemoryHistory
from gateway.core.dossier.reading import (
    DeliveryLine,
    allocations_in,
    answer_in,
    claim_lines_in,
    deliveries_in,
    entries_of,
    fold_deliveries,
    requests_in,
    submitted_declaration_in,
)
from gateway.core.dossier.records import (
    CREDIT,
    DEBET,
    DELETE_DELIVERY,
    DELETED_REDEN_WIJZIGING,
    FIRST_DELIVERY,
    TEMPORARY_STOP,
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    Delivery,
    DeliveryChange,
    DeliveryKind,
    Entry,
    History,
    Identification,
    Request,
    Settlement,
    StartKey,
    SubmittedDeclaration,
    SubmittedLine,
    current_versions,
    most_recent,
    open_claims,
    request_settled,
)
from gateway.core.dossier.verdicts import RegisterUpdate, RetourVerdict, Verdict, retour_verdict

__all__ = [
    "CREDIT",
    "DEBET",
    "DELETED_REDEN_WIJZIGING",
    "DELETE_DELIVERY",
    "FIRST_DELIVERY",
    "TEMPORARY_STOP",
    "Allocation",
    "Answer",
    "ClaimLine",
    "Declaration",
    "Delivery",
    "DeliveryChange",
    "DeliveryKind",
    "DeliveryLine",
    "Entry",
    "History",
    "Identification",
    "InMemoryHistory",
    "RegisterUpdate",
    "Request",
    "RetourVerdict",
    "Settlement",
    "StartKey",
    "SubmittedDeclaration",
    "SubmittedLine",
    "Verdict",
    "allocations_in",
    "answer_in",
    "claim_lines_in",
    "current_versions",
    "deliveries_in",
    "entries_of",
    "fold_deliveries",
    "most_recent",
    "open_claims",
    "request_settled",
    "requests_in",
    "retour_verdict",
    "submitted_declaration_in",
]
