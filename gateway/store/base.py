"""The store contract every backend fulfils (SQLite and PostgreSQL through SQLModel).

The store is synchronous: the async edges call it through ``asyncio.to_thread``. Every
state change goes through :meth:`Store.apply_transition`, which writes the new state and its
event in one transaction and only if the row is still in the expected state (compare-and-set),
so two workers can never both move a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from gateway.core.correlate import Correlation
from gateway.core.dossier import RegisterUpdate
from gateway.core.ledger import ClaimLine, LedgerEntry, LedgerKey
from gateway.core.model import Event, Message, State
from gateway.core.privacy import Pseudonymizer
from gateway.core.translation import Refusal, Rewrite, Undecided

if TYPE_CHECKING:
    from gateway.store.chain import ChainDirection, ChainEnvelope


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What intake knows about a message before anything else happens to it."""

    sender: str
    raw: bytes
    content_hash: str
    bericht_id: str | None
    message_type: str | None
    received_at: dt.datetime
    actor: str
    direction: str = "inbound"
    in_reply_to: str | None = None
    recipient: str | None = None
    replay_of: str | None = None
    """Set for an operator replay: the original's id. A replay skips the idempotency check."""


@dataclass(frozen=True, slots=True)
class Saved:
    """Result of :meth:`Store.save_received`: the message and whether it was new."""

    message: Message
    created: bool
    identificatie_taken: bool = False
    """True when nothing was stored because another message of the same sender and type,
    with other bytes, holds the BerichtIdentificatie; ``message`` is that one."""


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for listing messages; all optional, combined with AND."""

    party: str | None = None
    sender: str | None = None
    recipient: str | None = None
    state: State | None = None
    message_type: str | None = None
    after_id: str | None = None
    limit: int = 100


class KeyKind(StrEnum):
    """Searchable values extracted from a message (at intake) or its findings."""

    CLIENT = "client"  # the store's client key of a BSN (Pseudonymizer), never the BSN
    TOEWIJZING = "toewijzing"
    DECLARATIE = "declaratie"
    RULE = "rule"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Operator search: all filters optional and combined with AND; keyset-paginated by id.

    ``party`` matches sender or recipient. ``since``/``until`` bound the arrival time (ids sort
    by arrival, so the bound is an id range). ``cursor`` is the last id of the previous page;
    ``newest_first`` decides the direction of the pages.
    """

    party: str | None = None
    sender: str | None = None
    recipient: str | None = None
    direction: str | None = None
    message_type: str | None = None
    states: tuple[State, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    bericht_id: str | None = None
    toewijzing: str | None = None
    declaratie: str | None = None
    rule: str | None = None
    client_key: str | None = None
    cursor: str | None = None
    newest_first: bool = True
    limit: int = 50

    def keys(self) -> list[tuple[KeyKind, str]]:
        """The filters answered by the key index, most selective first."""
        wanted = (
            (KeyKind.CLIENT, self.client_key),
            (KeyKind.DECLARATIE, self.declaratie),
            (KeyKind.TOEWIJZING, self.toewijzing),
            (KeyKind.RULE, self.rule),
        )
        return [(kind, value) for kind, value in wanted if value is not None]


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results and the cursor of the next page (None on the last)."""

    messages: list[Message]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Related:
    """A message linked to another one, and how (``retour``, ``answers``, ``replay of``...)."""

    relation: str
    message: Message


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for the audit trail; newest first."""

    target: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded operator action."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class OpenOriginal:
    """An original still waiting for its retour, and when its overdue notice was logged."""

    message: Message
    overdue_logged_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """A message answering a request: a JW301 honouring its ReferentieAanbieder or a JW319
    (``verzoek_antwoord`` 1 rejected, 2 in onderzoek), with when the gateway received it."""

    message_id: str
    message_type: str
    received_at: dt.datetime
    verzoek_antwoord: str | None = None


@dataclass(frozen=True, slots=True)
class RequestExchange:
    """A request (one JW315 AangevraagdProduct, or a JW317 Verzoek) that counts (not rejected),
    with every answer in the dossier register carrying its ReferentieAanbieder."""

    message: Message
    referentie: str
    gemeente: str
    aanbieder: str
    answers: tuple[RequestAnswer, ...] = ()


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a retention pass dropped (or would drop, on a dry run)."""

    payloads: dict[str, int]
    bytes_freed: int = 0


class Store(Protocol):
    """Durable message store. Implementations raise ``StoreError`` for driver failures."""

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start."""

    @property
    def pseudonyms(self) -> Pseudonymizer:
        """What turns a BSN into the client key this store holds (and searches by)."""
        ...

    def save_received(self, new: NewMessage) -> Saved:
        """Durably store raw bytes and metadata in state ``received`` (idempotent).

        The same (sender, bericht_id, content_hash) returns the existing message with
        ``created=False``. Returns only after the transaction is committed.
        """
        ...

    def claim_identificatie(self, message_id: str) -> Message | None:
        """A message that held no BerichtIdentificatie (it waited for a mapping decision)
        holds it now; the message that already holds it, else None."""
        ...

    def get(self, message_id: str) -> Message | None:
        """One message's metadata."""
        ...

    def payload(self, message_id: str) -> bytes | None:
        """The stored raw bytes (None when purged)."""
        ...

    def apply_transition(
        self,
        moved: Message,
        event: Event,
        expected: State,
        *,
        lease: dt.datetime | None = None,
    ) -> None:
        """Write ``moved`` and ``event`` in one transaction if the row is still ``expected``.

        ``lease``, for a move out of ``sending``: the claim the mover holds (its
        ``lease_until``); the row must still carry it, so a worker whose lease expired and
        was re-claimed by another cannot record its late outcome over the new claim.
        Raises ``IllegalTransition`` when another worker moved it first.
        """

    def record_findings(self, message_id: str, findings: Sequence[dict[str, Any]]) -> None:
        """Keep the validation findings of a message for inspection."""

    def findings(self, message_id: str) -> list[dict[str, Any]]:
        """The findings recorded for a message."""
        ...

    def history(self, message_id: str) -> list[Event]:
        """All events of a message, oldest first."""
        ...

    def record_fetch(self, message_id: str, at: dt.datetime, actor: str) -> bool:
        """Note in the history that ``actor`` fetched the message (``fetched``, no state
        move); not again right after another fetch by ``actor``. True when noted."""
        ...

    def claim_due(
        self,
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
        recipients: Sequence[str] | None = None,
    ) -> list[Message]:
        """Move up to ``limit`` due ``queued`` messages to ``sending`` with a lease.

        Due means ``next_attempt_at`` is null or <= now. Oldest first per recipient, so a
        party's messages go out in order. On PostgreSQL uses ``FOR UPDATE SKIP LOCKED``.
        """
        ...

    def expired_leases(self, now: dt.datetime) -> list[Message]:
        """``sending`` messages whose lease has run out (the worker died)."""
        ...

    def query(self, q: MessageQuery) -> list[Message]:
        """Messages matching the filters, ordered by id (ids sort by arrival)."""
        ...

    def counts_by_party(self) -> dict[tuple[str, str], int]:
        """(recipient, state) → count, for metrics and status."""
        ...

    def oldest_waiting(self) -> dict[str, dt.datetime]:
        """recipient → received_at of its oldest queued/held message."""
        ...

    def record_audit(
        self, at: dt.datetime, actor: str, action: str, target: str, reason: str | None
    ) -> None:
        """Append an operator action to the audit trail."""
        ...

    def party_holds(self) -> dict[str, str]:
        """Parties an operator has put on hold: party id → reason (persists across restarts)."""
        ...

    def set_party_hold(self, party: str, reason: str | None, at: dt.datetime, actor: str) -> None:
        """Put ``party`` on hold with ``reason``, or release it when ``reason`` is None.

        Idempotent; callers record the operator action with :meth:`record_audit`.
        """

    def healthy(self) -> bool:
        """True when the store answers a trivial query."""
        ...

    # -- operator console ------------------------------------------------------------------

    def search(self, q: SearchQuery) -> SearchPage:
        """One page of messages matching ``q``, sorted by id, with the next page's cursor."""
        ...

    def count(self, q: SearchQuery) -> int:
        """How many messages match ``q`` (ignores cursor and limit); for dry runs."""
        ...

    def keys_of(self, message_id: str) -> dict[KeyKind, list[str]]:
        """The searchable values indexed for a message."""
        ...

    def related(self, message_id: str) -> list[Related]:
        """Retours, originals, replays and messages with the same BerichtIdentificatie."""
        ...

    def replay_of(self, message_id: str) -> str | None:
        """The original of a replayed message (None for an original)."""
        ...

    def delivered_copies(self, message: Message) -> list[Message]:
        """Delivered messages with the same sender, BerichtIdentificatie and content.

        The original and every replay of it: what the recipient has already acknowledged.
        """
        ...

    def audit_entries(self, q: AuditQuery) -> list[AuditEntry]:
        """Recorded operator actions matching ``q``, newest first."""
        ...

    def last_delivered(self) -> dict[str, dt.datetime]:
        """recipient → when its most recent delivered message was delivered."""
        ...

    def purge(
        self, cutoffs: dict[State, dt.datetime], *, batch_size: int, dry_run: bool
    ) -> PurgeResult:
        """Drop payloads of messages in the given states last moved before their cutoff.

        Only ``delivered`` and ``rejected`` may be given; metadata, history, findings, search
        keys and the audit trail stay. Deletes in batches of ``batch_size`` (one transaction
        each) so intake never waits long.
        """
        ...

    def reclaim_space(self, full: bool = False) -> int:
        """Return freed pages to the file system (SQLite); bytes freed (0 on PostgreSQL)."""
        ...

    # -- heen/retour correlation -------------------------------------------------------------

    def record_correlation(self, message_id: str, correlation: Correlation) -> None:
        """Remember a stored message's place in an exchange and link it to its counterpart
        if that is already stored (a retour to its original, an original to its retour)."""

    def linked_message(self, message_id: str) -> str | None:
        """The other side of a message's exchange: a retour's original, an original's first
        retour (an inbound one, or the one the gateway made); None while unlinked."""
        ...

    def open_originals(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[OpenOriginal]:
        """Originals (not rejected) with no retour linked yet, oldest first; ``party`` limits
        them to those sent by or addressed to that party, ``received_before`` to those
        received before that moment."""
        ...

    def record_register(
        self, message_id: str, update: RegisterUpdate, replay_of: str | None = None
    ) -> None:
        """Write a stored message's dossier-register entries (once; idempotent) and settle
        the verdicts its retour link decides. A replay adds nothing while the entries of
        ``replay_of`` still count."""

    def mark_overdue_logged(self, message_ids: Sequence[str], at: dt.datetime) -> list[str]:
        """Record that the overdue notice of these originals was logged; returns only those
        not marked before (so two processes, or a restart, never log one twice)."""
        ...

    def request_exchanges(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[RequestExchange]:
        """Requests (JW315 products, JW317) in the dossier register that were not rejected,
        each with its answers (JW301/JW319 entries with its ReferentieAanbieder, not rejected),
        oldest request first; ``party`` limits them to requests sent by or addressed to it,
        ``received_before`` to requests received before that moment."""
        ...

    def mark_notices_logged(self, keys: Sequence[str], at: dt.datetime) -> list[str]:
        """Record that the overdue notice of these deadline keys was logged; returns only the
        keys not marked before (the once-only log of the request clocks)."""
        ...

    def logged_notices(self, keys: Sequence[str]) -> dict[str, dt.datetime]:
        """When the overdue notice of each of these deadline keys was logged, if it was."""
        ...

    # -- product-code translation -----------------------------------------------------------

    def ledger_entry(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for an allocation or request, or None."""
        ...

    def ledger_requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request pair of a ReferentieAanbieder (one per requested product)."""
        ...

    def ledger_claim_lines(
        self, gemeente: str, aanbieder: str, declaratie: str
    ) -> tuple[ClaimLine, ...]:
        """The declaration lines converted for one declaration (for its answer)."""
        ...

    def record_ledger(self, entries: Sequence[LedgerEntry], message_id: str | None) -> None:
        """Record pairs first-wins: a key that has a pair already keeps it."""

    def save_translation(self, message_id: str, record: TranslationRecord) -> None:
        """Store (or replace) a message's translation and record its ledger pairs."""

    def translation_of(self, message_id: str) -> StoredTranslation | None:
        """The stored translation of a message, or None when it was never translated."""
        ...

    def waiting_on(self, ledger_keys: Sequence[str]) -> dict[str, list[str]]:
        """The held messages in which each of these ledger keys waits for a mapping decision:
        key -> message ids, oldest first (keys nothing waits on are left out)."""
        ...

    def delivery_payload(self, message_id: str) -> bytes | None:
        """The bytes to deliver: the translation when there is one, else the raw bytes."""
        ...

    def translation_coverage(self, since: dt.datetime | None = None) -> list[CoverageRow]:
        """Products in messages received since ``since`` that waited for a mapping decision."""
        ...

    def claimed_products(
        self,
        first: dt.date | None = None,
        last: dt.date | None = None,
        aanbieder: str | None = None,
    ) -> list[ClaimedProduct]:
        """The products of submitted JW323 lines (whatever their verdict) whose ProductPeriode
        begins in ``first..last``, counted per gemeente, aanbieder, product and begin date."""
        ...

    # -- group commit ----------------------------------------------------------------------

    def new_message_id(self, at: dt.datetime) -> str:
        """A fresh message id, sortable by ``at``, for a message that intake is preparing."""
        ...

    def write_batch(
        self, records: Sequence[IntakeRecord], moves: Sequence[Move] = ()
    ) -> BatchResult:
        """Store received messages and make state moves, all in one transaction.

        For each record: the message row in its final intake state, the raw bytes, the
        ``received`` event and the record's ``moves``, its findings and search keys, and its
        generated retour (row, bytes, events) if any. A record whose (sender, bericht_id,
        content_hash) is already stored, or appears earlier in the same batch, writes
        nothing (nor its retour) and returns the stored message with ``created=False``.

        Each :class:`Move` is a compare-and-set like :meth:`apply_transition`, in the given
        order: written with its event only if the row is still in ``expected``, otherwise
        nothing is written for it and its result is False. One move that finds its message
        moved does not affect the others.

        Returns only after the commit; a failure stores none of the batch. Raises
        ``ValueError`` when a record's moves do not lead from ``received`` to its message's
        state, or when a move's event does not describe the move.
        """
        ...

    # -- intake quota ----------------------------------------------------------------------

    def received_bytes(self, sender: str, since: dt.datetime) -> int:
        """Bytes of the messages ``sender`` sent (inbound, not operator replays) that were
        stored with ``received_at`` at or after ``since``."""
        ...

    # -- the national chain (StUF-GGk envelopes) --------------------------------------------

    def chain_envelope(
        self, direction: ChainDirection, referentienummer: str
    ) -> ChainEnvelope | None:
        """The envelope recorded under this reference, or None."""
        ...

    def record_chain_envelope(self, envelope: ChainEnvelope) -> ChainEnvelope:
        """Record an envelope unless its direction and reference are recorded already; return
        the one recorded."""
        ...

    def chain_envelope_of_message(
        self, message_id: str, direction: ChainDirection
    ) -> ChainEnvelope | None:
        """The envelope that carried this stored message in the given direction, or None."""
        ...

    def record_chain_answer(
        self, direction: ChainDirection, referentienummer: str, answer: bytes, code: str | None
    ) -> None:
        """Keep the latest answer to a recorded envelope."""
        ...


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """A received message and everything intake decided about it, to be stored at once.

    ``message`` is the message as intake leaves it: ``queued``, ``held`` or ``rejected``, or
    ``received`` when processing failed (housekeeping processes it later). ``moves`` are the
    events that ``core.lifecycle.advance`` made on the way from ``received``; ``actor`` is who
    submitted it (the actor of the ``received`` event). ``retour`` is the answer the gateway
    generated on the recipient's behalf; it is stored only together with a new message.
    ``correlation`` links the message to its original or its retour, whichever is stored.
    """

    message: Message
    raw: bytes
    actor: str
    moves: tuple[Event, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    retour: IntakeRecord | None = None
    correlation: Correlation | None = None
    """The exchange the message opens or answers (see :mod:`gateway.core.correlate`)."""
    translation: TranslationRecord | None = None
    """The product-code translation into the recipient's generation, when one was needed."""
    register: RegisterUpdate | None = None
    """What the message adds to the dossier register (see :mod:`gateway.store.register`)."""


@dataclass(frozen=True, slots=True)
class TranslationRecord:
    """What translating one message into the recipient's code generation produced.

    ``translated`` is the XML to deliver (None when nothing changed or the message waits for a
    mapping decision: then the stored raw bytes go out, or nothing does). ``entries`` are the
    ledger pairs the message starts; the store records them first-wins, and only for a message
    that goes on (a held or rejected message records none).
    """

    gemeente: str
    from_generation: str
    to_generation: str
    translated: bytes | None = None
    rewrites: tuple[Rewrite, ...] = ()
    undecided: tuple[Undecided, ...] = ()
    entries: tuple[LedgerEntry, ...] = ()
    refused: tuple[Refusal, ...] = ()
    """Products the receiver can never accept (no decision fixes them): the message is
    answered with their retourcode, not held. Not stored: such a message is answered at once."""
    claim_lines: tuple[ClaimLine, ...] = ()
    """Declaration lines converted under a declared conversion (recorded first-wins)."""

    @property
    def needs_decision(self) -> bool:
        """True when an operator must pick a target before the message can go on."""
        return bool(self.undecided)


@dataclass(frozen=True, slots=True)
class StoredTranslation:
    """A message's translation as stored: generations, rewrites and what waits for a decision."""

    gemeente: str
    from_generation: str
    to_generation: str
    has_payload: bool
    rewrites: tuple[Rewrite, ...]
    undecided: tuple[Undecided, ...]


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """A product seen in traffic that the tables could not translate on their own."""

    gemeente: str
    from_generation: str
    to_generation: str
    product: str
    problem: str
    messages: int
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class Move:
    """One lifecycle move made by ``core.lifecycle.advance``: write it if still ``expected``.

    ``lease`` is the claim token of a move out of ``sending``: the ``lease_until`` the mover
    was given when it claimed the message. Every claim of a message has a later lease than the
    one before (a message is re-claimed only after its lease expired), so a row that still
    carries it is still the mover's claim. ``None`` compares the state alone.
    """

    moved: Message
    event: Event
    expected: State
    lease: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What :meth:`Store.write_batch` did: one ``Saved`` per record, one flag per move."""

    saved: list[Saved]
    moved: list[bool]


@dataclass(frozen=True, slots=True)
class ClaimedProduct:
    """Lines of submitted claims for one product, as the tariff lookup needs them: the lines
    of ``aanbieder`` to ``gemeente`` for ``categorie``/``code`` whose period begins on ``begin``."""

    gemeente: str
    aanbieder: str
    categorie: str
    code: str
    eenheid: str
    begin: dt.date
    lines: int
