"""The in-memory :class:`~gateway.core.dossier.History`, for tests and tools."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

from gateway.core.document import MessageDocument
from gateway.core.dossier.reading import entries_of, fold_deliveries, submitted_declaration_in
from gateway.core.dossier.records import (
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    Delivery,
    DeliveryChange,
    Entry,
    Identification,
    Request,
    Settlement,
    SubmittedDeclaration,
)

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
        self._settlements: dict[tuple[str, int], list[Settlement]] = defaultdict(list)

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

    def settle(self, settlement: Settlement) -> None:
        """Record a period settled outside the chain (what ``gateway settle`` stores)."""
        self._settlements[(settlement.gemeente, settlement.toewijzing_nummer)].append(settlement)

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

    def settlements(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Settlement]:
        """See :meth:`History.settlements`."""
        return list(self._settlements.get((gemeente, toewijzing_nummer), ()))
