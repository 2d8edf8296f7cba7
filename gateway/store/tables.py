"""The store's tables: SQLModel rows on a metadata of their own, and the indexes the queries
need. A change here needs a migration step (:mod:`gateway.store.migrations`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both backends.

    SQLite has no time zones, so values are stored as naive UTC text (which also sorts and
    compares correctly) and read back as aware UTC; PostgreSQL uses ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only accepts timezone-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class _Table(SQLModel, registry=registry()):
    """Base of the store's tables, on a metadata of its own so no other model leaks in."""


class MessageRow(_Table, table=True):
    """Metadata of a message; the state column drives the whole lifecycle."""

    __tablename__ = "messages"

    id: str = Field(sa_column=Column(String(26), primary_key=True))
    state: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    sender: str = Field(sa_column=Column(String(100), nullable=False))
    recipient: str | None = Field(default=None, sa_column=Column(String(100)))
    message_type: str | None = Field(default=None, sa_column=Column(String(16), index=True))
    bericht_id: str | None = Field(default=None, sa_column=Column(String(200)))
    content_hash: str = Field(sa_column=Column(String(128), nullable=False))
    size: int = Field(sa_column=Column(Integer, nullable=False))
    received_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False, index=True))
    updated_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime))
    lease_until: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    in_reply_to: str | None = Field(default=None, sa_column=Column(String(26)))
    replay_of: str | None = Field(default=None, sa_column=Column(String(26)))
    identificatie_claim: int | None = Field(default=None, sa_column=Column(Integer))
    """1 when this message holds its sender's BerichtIdentificatie for its type (see
    ``IDENTIFICATIE_INDEX``), else null."""


class PayloadRow(_Table, table=True):
    """Raw bytes, apart from the metadata so retention can drop them and keep the history."""

    __tablename__ = "payloads"

    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class EventRow(_Table, table=True):
    """One state move; the serial id keeps the order of a message's history."""

    __tablename__ = "events"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    from_state: str | None = Field(default=None, sa_column=Column(String(16)))
    to_state: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(sa_column=Column(String(100), nullable=False))


class FindingRow(_Table, table=True):
    """Validation findings of a message, as a JSON list."""

    __tablename__ = "findings"

    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )
    findings_json: str = Field(sa_column=Column(Text, nullable=False))


class AuditRow(_Table, table=True):
    """An operator action (retry, hold, release, purge, ...)."""

    __tablename__ = "audit"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    actor: str = Field(sa_column=Column(String(100), nullable=False))
    action: str = Field(sa_column=Column(String(50), nullable=False))
    target: str = Field(sa_column=Column(String(200), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))


class PartyHoldRow(_Table, table=True):
    """An operator hold on a party: its messages wait in ``held`` until released."""

    __tablename__ = "party_holds"

    party: str = Field(sa_column=Column(String(100), primary_key=True))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    held_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    actor: str = Field(sa_column=Column(String(100), nullable=False))


class MessageKeyRow(_Table, table=True):
    """A searchable value of a message (client key, ToewijzingNummer, DeclaratieNummer, rule).

    The primary key (kind, value, message_id) is the search index itself: one range, already in
    message-id order, per value.
    """

    __tablename__ = "message_keys"

    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    value: str = Field(sa_column=Column(String(100), primary_key=True))
    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )


class CorrelationRow(_Table, table=True):
    """A message's place in a heen/retour exchange (see :mod:`gateway.core.correlate`).

    The original is named by header values (type, Afzender identity, Identificatie), not by
    party id, so a retour finds its original also when a BVO transmitted it on a party's
    behalf. ``linked_id`` is the other side once both are stored: for a retour its original,
    for an original its first retour (inbound, or the one the gateway made). An original with
    ``linked_id`` null is waiting for its retour; ``overdue_logged_at`` remembers that its
    overdue notice was logged, so a restart does not log it again.
    """

    __tablename__ = "correlations"

    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )
    side: str = Field(sa_column=Column(String(8), nullable=False))
    original_type: str = Field(sa_column=Column(String(16), nullable=False))
    afzender: str = Field(sa_column=Column(String(20), nullable=False))
    bericht_id: str = Field(sa_column=Column(String(200), nullable=False))
    linked_id: str | None = Field(default=None, sa_column=Column(String(26)))
    overdue_logged_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime))


class RegisterEntryRow(_Table, table=True):
    """One entry of the dossier register: what a message established for the B rules.

    ``kind`` names the record (``gateway.store.register`` reads and writes them), ``verdict``
    is ``pending`` until the recipient's retour settles it, or ``accepted``/``rejected``. The
    key columns answer the rules' lookups; ``body`` holds the record's other fields as JSON.
    Clients are held only as ``client_key``: no column and no body holds a BSN.
    """

    __tablename__ = "register_entries"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    verdict: str = Field(sa_column=Column(String(10), nullable=False))
    gemeente: str | None = Field(default=None, sa_column=Column(String(20)))
    aanbieder: str | None = Field(default=None, sa_column=Column(String(20)))
    client_key: str | None = Field(default=None, sa_column=Column(String(64)))
    toewijzing_nummer: int | None = Field(default=None, sa_column=Column(BigInteger))
    referentie: str | None = Field(default=None, sa_column=Column(String(200)))
    vorig_referentie: str | None = Field(default=None, sa_column=Column(String(200)))
    declaratie_nummer: str | None = Field(default=None, sa_column=Column(String(200)))
    body: str = Field(sa_column=Column(Text, nullable=False))


class LedgerRow(_Table, table=True):
    """The translation ledger: the pair of codes one allocation or request travels under.

    Keyed by (gemeente, kind, number) as :class:`gateway.core.ledger.LedgerKey`; the first pair
    recorded for a key wins and never changes, so a round trip always restores the original.
    """

    __tablename__ = "translation_ledger"

    gemeente: str = Field(sa_column=Column(String(4), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    number: str = Field(sa_column=Column(String(100), primary_key=True))
    original_categorie: str = Field(sa_column=Column(String(2), nullable=False))
    original_code: str = Field(sa_column=Column(String(5), nullable=False))
    translated_categorie: str = Field(sa_column=Column(String(2), nullable=False))
    translated_code: str = Field(sa_column=Column(String(5), nullable=False))
    original_generation: str = Field(sa_column=Column(String(50), nullable=False))
    translated_generation: str = Field(sa_column=Column(String(50), nullable=False))
    origin: str = Field(sa_column=Column(String(16), nullable=False))
    basis: str = Field(sa_column=Column(Text, nullable=False))
    unit_original: str | None = Field(default=None, sa_column=Column(String(2)))
    unit_translated: str | None = Field(default=None, sa_column=Column(String(2)))
    volume_factor: str | None = Field(default=None, sa_column=Column(String(40)))
    recorded_on: str | None = Field(default=None, sa_column=Column(String(10)))
    decided_by: str | None = Field(default=None, sa_column=Column(String(100)))
    reference: str | None = Field(default=None, sa_column=Column(String(200)))
    message_id: str | None = Field(default=None, sa_column=Column(String(26)))
    recorded_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    conversion: str | None = Field(default=None, sa_column=Column(Text))
    """JSON: the declared conversion and the source side's Omvang (migration 11)."""


class ClaimLineRow(_Table, table=True):
    """A declaration line converted under a declared conversion: what the sender declared
    and what the receiver got (JSON each), so the answer goes back in the sender's terms.

    Keyed as a JW325 names a line: (gemeente, aanbieder, DeclaratieNummer, ReferentieNummer);
    the first record wins.
    """

    __tablename__ = "translation_claim_lines"

    gemeente: str = Field(sa_column=Column(String(4), primary_key=True))
    aanbieder: str = Field(sa_column=Column(String(20), primary_key=True))
    declaratie: str = Field(sa_column=Column(String(200), primary_key=True))
    referentie: str = Field(sa_column=Column(String(200), primary_key=True))
    toewijzing: str = Field(sa_column=Column(String(100), nullable=False))
    debet_credit: str = Field(sa_column=Column(String(1), nullable=False))
    sent: str = Field(sa_column=Column(Text, nullable=False))
    delivered: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str | None = Field(default=None, sa_column=Column(String(26)))
    recorded_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class TranslationRow(_Table, table=True):
    """A message translated into its recipient's code generation, and the bytes to deliver.

    ``translated`` is what delivery sends (the raw bytes stay in ``payloads`` for audit); it is
    null when nothing changed, while the message waits for a decision, or after retention.
    """

    __tablename__ = "translations"

    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )
    gemeente: str = Field(sa_column=Column(String(4), nullable=False))
    from_generation: str = Field(sa_column=Column(String(50), nullable=False))
    to_generation: str = Field(sa_column=Column(String(50), nullable=False))
    translated: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class RewriteRow(_Table, table=True):
    """One field a translation changed, or one product that waits for a mapping decision."""

    __tablename__ = "translation_rewrites"

    message_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        )
    )
    position: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    # "rewrite", a problem ("no mapping", "one-to-many", ...) or "decided <problem>".
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    path: str = Field(sa_column=Column(Text, nullable=False))
    original: str | None = Field(default=None, sa_column=Column(String(50)))
    translated: str | None = Field(default=None, sa_column=Column(String(50)))
    basis: str = Field(sa_column=Column(Text, nullable=False))
    ledger_key: str | None = Field(default=None, sa_column=Column(String(150)))
    candidates: str | None = Field(default=None, sa_column=Column(Text))


class DeadlineNoticeRow(_Table, table=True):
    """A deadline whose overdue notice was logged (request clocks; retour clocks use
    ``correlations.overdue_logged_at``), so two processes or a restart log it only once."""

    __tablename__ = "deadline_notices"

    key: str = Field(sa_column=Column(String(300), primary_key=True))
    logged_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class JobLeaseRow(_Table, table=True):
    """A cluster-wide job or role that one node at a time may hold (``gateway.store.leases``):
    who holds it, until when, and when a periodic job is due again."""

    __tablename__ = "job_leases"

    name: str = Field(sa_column=Column(String(100), primary_key=True))
    holder: str | None = Field(default=None, sa_column=Column(String(200)))
    lease_until: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime))
    due_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime))


class SettlementRow(_Table, table=True):
    """A period of an allocation settled outside the chain (``gateway settle``): the B rule
    BVO001 refuses a later claim line on it. ``message_id`` names the held JW301 it was
    settled from, when the operator named one."""

    __tablename__ = "settlements"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    gemeente: str = Field(sa_column=Column(String(4), nullable=False))
    toewijzing_nummer: int = Field(sa_column=Column(BigInteger, nullable=False))
    begindatum: dt.date = Field(sa_column=Column(Date, nullable=False))
    einddatum: dt.date = Field(sa_column=Column(Date, nullable=False))
    reference: str = Field(sa_column=Column(String(200), nullable=False))
    message_id: str | None = Field(default=None, sa_column=Column(String(26)))
    settled_by: str = Field(sa_column=Column(String(100), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class ChainEnvelopeRow(_Table, table=True):
    """A StUF-GGk envelope taken in or sent, by its ``referentienummer``, with the answer it got
    (the Bv03 or Fo03 bytes), so a repeated envelope gets the same answer and is stored once.
    ``direction`` is ``in`` or ``out``; ``message_id`` the message its payload became or was."""

    __tablename__ = "chain_envelopes"

    direction: str = Field(sa_column=Column(String(3), primary_key=True))
    referentienummer: str = Field(sa_column=Column(String(40), primary_key=True))
    berichtcode: str = Field(sa_column=Column(String(4), nullable=False))
    zender: str = Field(sa_column=Column(String(200), nullable=False))
    ontvanger: str = Field(sa_column=Column(String(200), nullable=False))
    functie: str | None = Field(default=None, sa_column=Column(String(30)))
    cross_refnummer: str | None = Field(default=None, sa_column=Column(String(40), index=True))
    payload_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    message_id: str | None = Field(default=None, sa_column=Column(String(26), index=True))
    answer: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    answer_code: str | None = Field(default=None, sa_column=Column(String(7)))
    """The Fo03's error code when the answer was a fault (None: a Bv03)."""
    at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class KeyFingerprintRow(_Table, table=True):
    """The fingerprint of a secret the store's rows depend on (``purpose`` ``pseudonym``: the
    key behind the client keys), so a process with another secret is refused; never the
    secret itself."""

    __tablename__ = "key_fingerprints"

    purpose: str = Field(sa_column=Column(String(40), primary_key=True))
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    recorded_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class SchemaVersionRow(_Table, table=True):
    """One applied migration."""

    __tablename__ = "schema_version"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    description: str = Field(sa_column=Column(Text, nullable=False))
    applied_at: dt.datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


METADATA: MetaData = _Table.metadata
MESSAGES: Table = METADATA.tables["messages"]
PAYLOADS: Table = METADATA.tables["payloads"]
EVENTS: Table = METADATA.tables["events"]
FINDINGS: Table = METADATA.tables["findings"]
AUDIT: Table = METADATA.tables["audit"]
PARTY_HOLDS: Table = METADATA.tables["party_holds"]
SCHEMA_VERSION: Table = METADATA.tables["schema_version"]
MESSAGE_KEYS: Table = METADATA.tables["message_keys"]
CORRELATIONS: Table = METADATA.tables["correlations"]
REGISTER: Table = METADATA.tables["register_entries"]
LEDGER: Table = METADATA.tables["translation_ledger"]
CLAIM_LINES: Table = METADATA.tables["translation_claim_lines"]
TRANSLATIONS: Table = METADATA.tables["translations"]
REWRITES: Table = METADATA.tables["translation_rewrites"]
DEADLINE_NOTICES: Table = METADATA.tables["deadline_notices"]
SETTLEMENTS: Table = METADATA.tables["settlements"]
JOB_LEASES: Table = METADATA.tables["job_leases"]
CHAIN_ENVELOPES: Table = METADATA.tables["chain_envelopes"]
KEY_FINGERPRINTS: Table = METADATA.tables["key_fingerprints"]

# Delivery looks up due messages per recipient; the idempotency key treats a missing
# BerichtIdentificatie as "" so resubmitting the same unparseable bytes is idempotent too.
Index("ix_messages_due", MESSAGES.c.recipient, MESSAGES.c.state, MESSAGES.c.next_attempt_at)
# An operator replay is a deliberate copy of its original, so it is outside the key.
IDEMPOTENCY_INDEX = Index(
    "ux_messages_idempotency",
    MESSAGES.c.sender,
    func.coalesce(MESSAGES.c.bericht_id, ""),
    MESSAGES.c.content_hash,
    unique=True,
    sqlite_where=MESSAGES.c.replay_of.is_(None),
    postgresql_where=MESSAGES.c.replay_of.is_(None),
)
# A sender's Identificatie per message type is held by one message that went on (not rejected
# at intake): another message with other bytes and the same key is refused, by whichever
# process stores it. Only rows marked to claim it count, so rows stored before the index came
# (which may reuse ids) never stop the migration.
IDENTIFICATIE_INDEX = Index(
    "ux_messages_identificatie",
    MESSAGES.c.sender,
    MESSAGES.c.message_type,
    MESSAGES.c.bericht_id,
    unique=True,
    sqlite_where=MESSAGES.c.identificatie_claim.is_not(None),
    postgresql_where=MESSAGES.c.identificatie_claim.is_not(None),
)
Index("ix_messages_sender", MESSAGES.c.sender, MESSAGES.c.id)
# Operator search walks (filter column, id) in id order for keyset pages; status reads the
# last delivery per recipient; show finds retours, replays and namesakes of a message.
SEARCH_INDEXES = (
    Index("ix_messages_recipient_id", MESSAGES.c.recipient, MESSAGES.c.id),
    Index("ix_messages_state_id", MESSAGES.c.state, MESSAGES.c.id),
    Index("ix_messages_type_id", MESSAGES.c.message_type, MESSAGES.c.id),
    Index("ix_messages_bericht_id", MESSAGES.c.bericht_id),
    Index(
        "ix_messages_recipient_state_updated",
        MESSAGES.c.recipient,
        MESSAGES.c.state,
        MESSAGES.c.updated_at,
    ),
    Index("ix_messages_in_reply_to", MESSAGES.c.in_reply_to),
    Index("ix_messages_replay_of", MESSAGES.c.replay_of),
    Index("ix_message_keys_message", MESSAGE_KEYS.c.message_id),
)

# A retour looks up its original (and an original its waiting retours) by the key; open
# originals are one range of (side, linked_id) with linked_id null.
Index(
    "ix_correlations_key",
    CORRELATIONS.c.bericht_id,
    CORRELATIONS.c.afzender,
    CORRELATIONS.c.original_type,
    CORRELATIONS.c.side,
)
Index("ix_correlations_linked", CORRELATIONS.c.side, CORRELATIONS.c.linked_id)
# The register's lookups: by ToewijzingNummer, by reference (ReferentieAanbieder or a claim
# line's ReferentieNummer), by client and by DeclaratieNummer; ``kind`` leads each of them.
REGISTER_INDEXES = (
    Index(
        "ix_register_toewijzing",
        REGISTER.c.kind,
        REGISTER.c.gemeente,
        REGISTER.c.toewijzing_nummer,
    ),
    Index("ix_register_referentie", REGISTER.c.kind, REGISTER.c.aanbieder, REGISTER.c.referentie),
    Index(
        "ix_register_client",
        REGISTER.c.kind,
        REGISTER.c.aanbieder,
        REGISTER.c.gemeente,
        REGISTER.c.client_key,
    ),
    Index(
        "ix_register_declaratie",
        REGISTER.c.kind,
        REGISTER.c.aanbieder,
        REGISTER.c.declaratie_nummer,
    ),
    Index("ix_register_vorig", REGISTER.c.kind, REGISTER.c.aanbieder, REGISTER.c.vorig_referentie),
)
# The settled periods of one allocation (the B rule asks per gemeente and ToewijzingNummer).
Index("ix_settlements_toewijzing", SETTLEMENTS.c.gemeente, SETTLEMENTS.c.toewijzing_nummer)
