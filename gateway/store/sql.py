"""The SQL message store: SQLModel tables on SQLite (embedded default) or PostgreSQL.

Durability choices: SQLite runs in WAL mode with ``synchronous=FULL``, so a committed
``save_received`` survives a power cut before intake answers 202; every write transaction starts
with ``BEGIN IMMEDIATE`` so writers queue on the busy timeout instead of failing half-way. On
PostgreSQL deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` so several daemons
share one queue without claiming a message twice.

Driver errors are wrapped once, here, as ``StoreError`` with a short reason ("disk full",
"database unavailable", ...) that intake can show in a 503. The SQL parameters are never part
of a message (they hold payloads with BSNs): the engine hides them and the reason is our own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import registry as dialect_registry
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import registry
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from gateway.core.correlate import Correlation, Side
from gateway.core.dossier import RegisterUpdate
from gateway.core.errors import IllegalTransition, StoreError
from gateway.core.ids import IdGenerator, first_id_at
from gateway.core.ledger import KeyKind as LedgerKind
from gateway.core.ledger import LedgerEntry, LedgerKey, Origin
from gateway.core.lifecycle import advance
from gateway.core.mapping import Product
from gateway.core.model import Direction, Event, Message, State
from gateway.core.translate import Rewrite, Undecided
from gateway.store.base import (
    AuditEntry,
    AuditQuery,
    BatchResult,
    CoverageRow,
    IntakeRecord,
    KeyKind,
    MessageQuery,
    Move,
    NewMessage,
    OpenOriginal,
    PurgeResult,
    Related,
    RequestAnswer,
    RequestExchange,
    Saved,
    SearchPage,
    SearchQuery,
    StoredTranslation,
    TranslationRecord,
)
from gateway.store.search import (
    count_statement,
    extract_keys,
    key_rows,
    rule_keys,
    search_statements,
)

if TYPE_CHECKING:
    from gateway.store.base import Store

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for SQLite's write lock before the store reports "database busy"."""
LEDGER_CACHE_SIZE = 100_000
"""Most ledger pairs a store remembers after reading them (a few MB at most)."""

CLAIM_ACTOR = "delivery"
CLAIM_REASON = "claimed for delivery"
RECEIVED_REASON = "received"

# Any fixed 64-bit number works; it only has to be the same for every gateway process.
_MIGRATION_LOCK_KEY = 0x1A_3232_6A77


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
TRANSLATIONS: Table = METADATA.tables["translations"]
REWRITES: Table = METADATA.tables["translation_rewrites"]
DEADLINE_NOTICES: Table = METADATA.tables["deadline_notices"]

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

# Columns a state move may change; identity and intake facts never change after intake.
_MOVABLE_COLUMNS = (
    "state",
    "recipient",
    "message_type",
    "attempts",
    "next_attempt_at",
    "lease_until",
    "reason",
    "updated_at",
    "in_reply_to",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Version 1 builds the current tables; later steps upgrade old files."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    METADATA.create_all(conn)


def _operator_search(conn: Connection) -> None:
    """Version 2: replay links, the key index and the search indexes; backfill the keys."""
    conn.execute(text("ALTER TABLE messages ADD COLUMN replay_of VARCHAR(26)"))
    MESSAGE_KEYS.create(conn)
    conn.execute(text("DROP INDEX ux_messages_idempotency"))
    IDEMPOTENCY_INDEX.create(conn)
    for index in SEARCH_INDEXES:
        if index.table is MESSAGES:  # the key table's own index came with the table
            index.create(conn)
    backfill_keys(conn)


def backfill_keys(conn: Connection, batch: int = 1000) -> int:
    """Index the keys of every stored message that has none yet (payloads and findings).

    Used by the migration that introduced the key index; safe to run again. Returns how many
    messages got keys.
    """
    done = 0
    after = ""
    while True:
        rows = conn.execute(
            select(PAYLOADS.c.message_id, PAYLOADS.c.raw, FINDINGS.c.findings_json)
            .outerjoin(FINDINGS, FINDINGS.c.message_id == PAYLOADS.c.message_id)
            .where(
                PAYLOADS.c.message_id > after,
                ~exists().where(MESSAGE_KEYS.c.message_id == PAYLOADS.c.message_id),
            )
            .order_by(PAYLOADS.c.message_id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        values: list[dict[str, str]] = []
        for message_id, raw, findings_json in rows:
            keys = extract_keys(bytes(raw))
            if findings_json:
                keys += rule_keys(json.loads(findings_json))
            values += key_rows(message_id, keys)
            done += 1 if keys else 0
        if values:
            conn.execute(insert(MESSAGE_KEYS), values)
        after = rows[-1][0]


def _correlations(conn: Connection) -> None:
    """Version 3: the heen/retour correlation table and its indexes.

    Messages stored before it are not correlated (they never show as waiting for a retour).
    """
    CORRELATIONS.create(conn, checkfirst=True)


def _register(conn: Connection) -> None:
    """Version 4: the dossier register the cross-message rules read (with its indexes).

    Messages stored before it are not in the register: the rules see only later traffic.
    """
    REGISTER.create(conn, checkfirst=True)


def _translation(conn: Connection) -> None:
    """Version 5: the translation ledger, per-message translations and their rewrites."""
    for table in (LEDGER, TRANSLATIONS, REWRITES):
        table.create(conn, checkfirst=True)


def _deadline_notices(conn: Connection) -> None:
    """Version 6: the once-only overdue notices of the request clocks."""
    DEADLINE_NOTICES.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "messages, payloads, events, findings, audit, party holds", _create_tables),
    Migration(2, "operator search: replay links, message keys, search indexes", _operator_search),
    Migration(3, "heen/retour correlations and retour deadlines", _correlations),
    Migration(4, "dossier register for the cross-message rules", _register),
    Migration(5, "product-code translation: ledger, translations, rewrites", _translation),
    Migration(6, "overdue notices of the request clocks", _deadline_notices),
)
"""Ordered schema steps. Append only: a change to the tables above needs a new step that
brings older databases to the same shape (a fresh database gets the current tables at once)."""


def _reason(exc: BaseException) -> str:
    """A short, payload-free reason for a driver failure (shown to clients in a 503)."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).lower()
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate == "53100" or "disk is full" in message or "no space left" in message:
        return "disk full"
    if "readonly database" in message or "read-only" in message or sqlstate == "25006":
        return "database is read-only"
    if "unable to open database file" in message or isinstance(exc, OSError):
        return "cannot open the database file"
    if "database is locked" in message or "database is busy" in message:
        return "database busy"
    if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
        return "database unavailable"
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return "database unavailable"
    if isinstance(exc, IntegrityError):
        return "database constraint violated"
    return "database error"


@contextmanager
def _driver_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"{_reason(exc)} while {doing}") from exc


def _register_module() -> ModuleType:
    # The register module reads this module's tables, so it is imported when first used.
    from gateway.store import register  # noqa: PLC0415

    return register


def _correlation_row(message_id: str, correlation: Correlation) -> dict[str, Any]:
    key = correlation.key
    return {
        "message_id": message_id,
        "side": correlation.side.value,
        "original_type": key.original_type,
        "afzender": key.afzender[:20],
        "bericht_id": key.bericht_id[:200],
        "linked_id": None,
        "overdue_logged_at": None,
    }


# -- driver-level writes of the intake transaction -------------------------------------------
#
# Intake writes a dozen multi-row INSERTs per batch. Through SQLAlchemy Core every row's every
# value goes through bind processing and every statement through the compiled cache, which
# cost more CPU than the database's own work. These write the same values, converted as
# SQLAlchemy converts them (only the UTC times need it), through the driver's executemany with
# SQL text built once per dialect (on PostgreSQL one statement per table instead, its values
# as one array per column: see ``_unnest``). ``exec_driver_sql`` keeps SQLAlchemy's error
# wrapping, its transaction and its event hooks.

_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's storage format of a SQLite DATETIME (``sqlalchemy.dialects.sqlite.DATETIME``)."""

MESSAGE_COLUMNS = tuple(column.name for column in MESSAGES.columns)
EVENT_COLUMNS = ("message_id", "at", "from_state", "to_state", "reason", "actor")
CORRELATION_COLUMNS = tuple(column.name for column in CORRELATIONS.columns)
LEDGER_COLUMNS = tuple(column.name for column in LEDGER.columns)
TRANSLATION_COLUMNS = tuple(column.name for column in TRANSLATIONS.columns)
REWRITE_COLUMNS = tuple(column.name for column in REWRITES.columns)
_MESSAGE_ROWS_PER_STATEMENT = 200
"""Rows per multi-row INSERT of messages (17 parameters each; far below every driver's limit)."""


def _sqlite_time(value: dt.datetime | None) -> str | None:
    """An aware time as SQLAlchemy stores a :class:`UtcDateTime` in SQLite: naive UTC text."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the store only accepts timezone-aware datetimes")
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return _SQLITE_TIME % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _postgres_time(value: dt.datetime | None) -> dt.datetime | None:
    """An aware time as SQLAlchemy hands a :class:`UtcDateTime` to psycopg: in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the store only accepts timezone-aware datetimes")
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


TimeParameter = Callable[[dt.datetime | None], Any]


def _time_parameter(dialect: str) -> TimeParameter:
    """How a :class:`UtcDateTime` value goes to this dialect's driver."""
    return _sqlite_time if dialect == "sqlite" else _postgres_time


def _marks(dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return f"({', '.join([mark] * count)})"


class _PgArray(list[Any]):
    """One column of a batch as a PostgreSQL array parameter of :func:`_unnest`.

    Each subclass names its element type, and :func:`_register_array_dumpers` gives psycopg a
    dumper of that fixed type for it. A plain list would be typed by its values (``int2[]`` or
    ``int8[]`` by their size, "unknown" when every value is NULL), and psycopg prepares a
    statement per text *and parameter types*: batches with other NULLs or numbers would each
    need their own five runs before being prepared, and crowd its cache of 100 statements.
    """

    pg_type: ClassVar[str]


class _VarcharArray(_PgArray):
    pg_type = "varchar"


class _TextArray(_PgArray):
    pg_type = "text"


class _IntegerArray(_PgArray):
    pg_type = "integer"


class _BigintArray(_PgArray):
    pg_type = "bigint"


class _ByteaArray(_PgArray):
    pg_type = "bytea"


class _TimestamptzArray(_PgArray):
    pg_type = "timestamp with time zone"


_ARRAYS: dict[str, type[_PgArray]] = {
    cls.pg_type: cls
    for cls in (
        _VarcharArray,
        _TextArray,
        _IntegerArray,
        _BigintArray,
        _ByteaArray,
        _TimestamptzArray,
    )
}


@functools.cache
def _register_array_dumpers() -> None:
    """Teach psycopg (all connections opened from now on) to send each :class:`_PgArray` as a
    binary array of its element type. Imported here: SQLite stores never load psycopg."""
    import psycopg  # noqa: PLC0415
    from psycopg.types.array import ListBinaryDumper  # noqa: PLC0415

    for array in _ARRAYS.values():
        info = psycopg.postgres.types.get(array.pg_type)
        if info is None:
            raise StoreError(f"psycopg does not know the type {array.pg_type}")
        # Class bodies do not see names they assign themselves in the enclosing scope.
        array_oid, its_element_oid = info.array_oid, info.oid

        class Dumper(ListBinaryDumper):
            oid = array_oid
            element_oid = its_element_oid

        psycopg.adapters.register_dumper(array, Dumper)


@functools.cache
def _insert_sql(dialect: str, table: str, columns: tuple[str, ...], on_conflict: str = "") -> str:
    """The INSERT of :func:`_insert_rows` in the driver's paramstyle: on SQLite ``VALUES (?,
    ...)`` for an executemany, on PostgreSQL ``SELECT * FROM unnest(%b::type[], ...)`` with one
    array per column (see :func:`_unnest`)."""
    suffix = f" ON CONFLICT {on_conflict}" if on_conflict else ""
    source = (
        f"VALUES {_marks(dialect, len(columns))}"
        if dialect == "sqlite"
        else _unnest(METADATA.tables[table], columns)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) {source}{suffix}"


def _unnest(table: Table, columns: tuple[str, ...]) -> str:
    """``SELECT * FROM unnest(%b::type[], ...)``: PostgreSQL rows from one array per column.

    One statement for any number of rows, and always the same text, so psycopg prepares it
    after a few executions and the server parses and plans it once per connection (an
    executemany runs one statement per row; a multi-row VALUES is a new text per row count).
    The arrays are typed from the columns, without a length: a cast to ``varchar(n)`` would cut
    a value that is too long, where the INSERT must fail as it does from VALUES. They travel in
    binary (``%b``): as text, every payload would be hex-encoded into an array literal and
    every JSON body escaped, and the server would parse both back (5x the time for 10 rows of
    4 KiB payloads and register bodies).
    """
    casts = ", ".join(f"%b::{array.pg_type}[]" for array in _arrays_of(table.name, columns))
    return f"SELECT * FROM unnest({casts})"


_POSTGRESQL: Dialect = dialect_registry.load("postgresql")()
"""A PostgreSQL dialect to compile column types with (the store's engine may not exist yet)."""


def _array_type(column_type: TypeEngine[Any]) -> type[_PgArray]:
    """The array a column's values travel in, by the column's PostgreSQL type."""
    compiled = column_type.compile(dialect=_POSTGRESQL)
    return _ARRAYS[re.sub(r"\(.*\)", "", compiled).lower()]


@functools.cache
def _arrays_of(table: str, columns: tuple[str, ...]) -> tuple[type[_PgArray], ...]:
    return tuple(_array_type(METADATA.tables[table].c[name].type) for name in columns)


def _columns_of(
    rows: Sequence[tuple[Any, ...]], table: str, columns: tuple[str, ...]
) -> tuple[_PgArray, ...]:
    """``rows`` turned into one typed array per column (the parameters of :func:`_unnest`)."""
    arrays = _arrays_of(table, columns)
    return tuple(
        array(values) for array, values in zip(arrays, zip(*rows, strict=True), strict=True)
    )


def _insert_rows(
    conn: Connection,
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    *,
    on_conflict: str = "",
) -> None:
    """Insert ``rows`` (values in ``columns`` order, converted for the driver) in one go: an
    executemany on SQLite, one statement with an array per column on PostgreSQL."""
    if not rows:
        return
    statement = _insert_sql(dialect, table.name, columns, on_conflict)
    if dialect == "sqlite":
        conn.exec_driver_sql(statement, rows)
    else:
        conn.exec_driver_sql(statement, _columns_of(rows, table.name, columns))


@functools.lru_cache(maxsize=_MESSAGE_ROWS_PER_STATEMENT)
def _insert_new_messages_sql(dialect: str, count: int) -> str:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` into messages: from ``VALUES (...) x
    count`` on SQLite, from :func:`_unnest` (any count) on PostgreSQL."""
    columns = ", ".join(MESSAGE_COLUMNS)
    if dialect == "sqlite":
        source = f"VALUES {', '.join([_marks(dialect, len(MESSAGE_COLUMNS))] * count)}"
    else:
        source = _unnest(MESSAGES, MESSAGE_COLUMNS)
    return f"INSERT INTO {MESSAGES.name} ({columns}) {source} ON CONFLICT DO NOTHING RETURNING id"


def _insert_new_messages(
    conn: Connection, dialect: str, rows: Sequence[tuple[Any, ...]]
) -> set[str]:
    """Insert message rows the idempotency index lets in; returns the ids inserted.

    One statement (on SQLite one per 200 rows): the unique index decides which are new, also
    between two rows of one call (the rows go in in their order, so the first one wins) and
    against another process.
    """
    if not rows:
        return set()
    if dialect != "sqlite":
        columns = _columns_of(rows, MESSAGES.name, MESSAGE_COLUMNS)
        result = conn.exec_driver_sql(_insert_new_messages_sql(dialect, 0), columns)
        return {str(row[0]) for row in result}
    created: set[str] = set()
    for first in range(0, len(rows), _MESSAGE_ROWS_PER_STATEMENT):
        chunk = rows[first : first + _MESSAGE_ROWS_PER_STATEMENT]
        parameters = tuple(value for row in chunk for value in row)
        result = conn.exec_driver_sql(_insert_new_messages_sql(dialect, len(chunk)), parameters)
        created.update(str(row[0]) for row in result)
    return created


def _message_row(msg: Message, time: TimeParameter) -> tuple[Any, ...]:
    """A new message's row in :data:`MESSAGE_COLUMNS` order (never a replay: intake's own)."""
    return (
        msg.id,
        msg.state.value,
        msg.sender,
        msg.recipient,
        msg.message_type,
        msg.bericht_id,
        msg.content_hash,
        msg.size,
        time(msg.received_at),
        time(msg.updated_at),
        msg.direction.value,
        msg.attempts,
        time(msg.next_attempt_at),
        time(msg.lease_until),
        msg.reason,
        msg.in_reply_to,
        None,
    )


def _event_row(ev: Event, time: TimeParameter) -> tuple[Any, ...]:
    """An event's row in :data:`EVENT_COLUMNS` order."""
    return (
        ev.message_id,
        time(ev.at),
        ev.from_state.value if ev.from_state is not None else None,
        ev.to_state.value,
        ev.reason,
        ev.actor,
    )


def _correlation_tuple(message_id: str, correlation: Correlation) -> tuple[Any, ...]:
    """A new correlation's row in :data:`CORRELATION_COLUMNS` order (not linked yet)."""
    key = correlation.key
    return (
        message_id,
        correlation.side.value,
        key.original_type,
        key.afzender[:20],
        key.bericht_id[:200],
        None,
        None,
    )


def _compare_and_set(
    conn: Connection,
    dialect: str,
    moved: Message,
    expected: State,
    lease: dt.datetime | None,
) -> bool:
    """Write ``moved`` if its row is still ``expected`` (and, with ``lease``, still that claim).

    True when the row was written. One UPDATE in the driver's own terms: building, keying and
    binding a SQLAlchemy UPDATE cost more than running it, on every delivered message.
    """
    time = _time_parameter(dialect)
    parameters: tuple[Any, ...] = (
        moved.state.value,
        moved.recipient,
        moved.message_type,
        moved.attempts,
        time(moved.next_attempt_at),
        time(moved.lease_until),
        moved.reason,
        time(moved.updated_at),
        moved.in_reply_to,
        moved.id,
        expected.value,
    )
    if lease is not None:
        parameters += (time(lease),)
    result = conn.exec_driver_sql(_move_sql(dialect, lease is not None), parameters)
    return result.rowcount == 1


@functools.cache
def _move_sql(dialect: str, with_lease: bool) -> str:
    """The compare-and-set UPDATE of a state move, in the driver's paramstyle."""
    mark = "?" if dialect == "sqlite" else "%s"
    assignments = ", ".join(f"{name} = {mark}" for name in _MOVABLE_COLUMNS)
    condition = f"id = {mark} AND state = {mark}"
    if with_lease:
        condition += f" AND lease_until = {mark}"
    return f"UPDATE {MESSAGES.name} SET {assignments} WHERE {condition}"


def _lock_exchanges(conn: Connection, bericht_ids: Collection[str]) -> None:
    """On PostgreSQL, make this transaction wait for any other that stores a side of the same
    exchanges, until it commits; call before inserting correlation rows.

    Two write transactions may run at once there (two daemons on one database). One storing an
    original and one storing its retour would each run their linking UPDATE before the other
    committed, see no other side, and leave the exchange unlinked for good
    (tests/contract/test_concurrent_linking.py). With this lock the second inserts and links
    only after the first committed, and sees its row. Transaction-scoped advisory locks, one
    per BerichtIdentificatie (a hash clash only makes two exchanges wait for each other), taken
    in one order, so two transactions cannot wait for each other in a cycle. SQLite runs one
    write transaction at a time and needs nothing.
    """
    if conn.dialect.name == "sqlite" or not bericht_ids:
        return
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(id, 0) AS key "
        "FROM unnest(%b::text[]) AS id) AS keys ORDER BY key",
        (_TextArray(sorted(set(bericht_ids))),),
    )


def _link_correlations(conn: Connection, bericht_ids: Collection[str]) -> int:
    """Link every unlinked exchange with one of ``bericht_ids`` whose both sides are stored;
    returns how many correlation rows were linked (0: no exchange was linked, nothing to settle).

    Two set-based statements, whatever arrived first (OP080): waiting retours get the most
    recent original with their key, then waiting originals get their first retour, an
    inbound one or the one the gateway generated (``messages.in_reply_to``).
    """
    if not bericht_ids:
        return 0
    dialect = conn.dialect.name
    ids = sorted(set(bericht_ids))
    link_retours, link_originals = _link_sql(dialect, len(ids) if dialect == "sqlite" else 0)
    retour, original = Side.RETOUR.value, Side.ORIGINAL.value
    with planned_per_call(conn):
        linked = conn.exec_driver_sql(
            link_retours, _link_parameters(dialect, original, retour, ids)
        ).rowcount
        return (
            linked
            + conn.exec_driver_sql(
                link_originals, _link_parameters(dialect, retour, original, ids)
            ).rowcount
        )


@contextmanager
def planned_per_call(conn: Connection) -> Iterator[None]:
    """Statements run in this block on PostgreSQL are planned for their own parameters on
    every call: psycopg does not prepare them.

    psycopg prepares a statement on its fifth run on a connection, and from then on the server
    may reuse one generic plan, made with the statistics of that moment. For a search on a
    table that grows (the linking UPDATEs, the settling query) a plan made while the table was
    nearly empty can be the walk that grows with it: in bench/daemon.py, starting on an empty
    database, the linking UPDATEs kept walking every waiting exchange through
    ``ix_correlations_linked`` (1 ms per call and rising) until statistics changed. Planning
    costs 0.2-0.3 ms per call, a bounded price; the INSERTs, whose plans never depend on the
    data, stay prepared.
    """
    if conn.dialect.name == "sqlite":
        yield
        return
    driver: Any = conn.connection.driver_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


def _link_parameters(
    dialect: str, other_side: str, own_side: str, bericht_ids: list[str]
) -> tuple[Any, ...]:
    """The parameters of one statement of :func:`_link_sql`: on SQLite the ids one by one, on
    PostgreSQL as one array."""
    ids: tuple[Any, ...] = tuple(bericht_ids) if dialect == "sqlite" else (_TextArray(bericht_ids),)
    return (other_side, own_side, *ids, other_side)


@functools.lru_cache(maxsize=256)
def _link_sql(dialect: str, count: int) -> tuple[str, str]:
    """The two linking UPDATEs of :func:`_link_correlations` for ``count`` BerichtIdentificaties,
    in the driver's paramstyle (intake runs them on every batch; through SQLAlchemy, building
    and binding them cost more than running them). On PostgreSQL the ids are one array
    parameter (``= ANY(%b)``), one text for every count (still planned on every call: see
    :func:`planned_per_call`); SQLite gets an IN-list of ``count`` marks.

    Both must find their rows through ``ix_correlations_key`` (a few rows per
    BerichtIdentificatie). Given ``side = ? AND linked_id IS NULL``, SQLite's planner picks
    ``ix_correlations_linked`` instead, which walks every exchange still waiting for its retour:
    a cost that grew with the store on every intake batch. Comparing the side through an
    expression (``coalesce(side, '')``) keeps that index out of these two statements.

    Each touches only rows that really get a link (the new value is not NULL), so the rowcount
    says whether anything was linked: intake settles dossier verdicts only then, and an original
    whose retour is not there yet is not rewritten on every batch. That test is a scalar
    subquery, not an EXISTS: PostgreSQL may plan an EXISTS as a semi-join over the whole
    correlations table, and in bench/daemon.py it did (237 table scans reading 282,706 rows in
    6,000 messages; 3 scans reading none with the scalar subquery, which runs per candidate
    row through the indexes on both databases).
    """
    mark = "?" if dialect == "sqlite" else "%s"
    one_of_ids = f"IN ({', '.join([mark] * count)})" if dialect == "sqlite" else "= ANY(%b::text[])"
    waiting = (
        f"coalesce(correlations.side, '') = {mark} AND correlations.linked_id IS NULL "
        f"AND correlations.bericht_id {one_of_ids}"
    )
    # Parameters: the original side, the retour side, the ids, the original side.
    same_key_original = (
        f"FROM correlations AS other WHERE other.side = {mark} "
        "AND other.bericht_id = correlations.bericht_id "
        "AND other.afzender = correlations.afzender "
        "AND other.original_type = correlations.original_type"
    )
    original_of_retour = (
        f"(SELECT other.message_id {same_key_original} ORDER BY other.message_id DESC LIMIT 1)"
    )
    link_retours = (
        f"UPDATE correlations SET linked_id = {original_of_retour} "
        f"WHERE {waiting} AND {original_of_retour} IS NOT NULL"
    )
    # Parameters: the retour side, the original side, the ids, the retour side.
    inbound_retour = (
        f"FROM correlations AS other WHERE other.side = {mark} "
        "AND other.linked_id = correlations.message_id"
    )
    generated_retour = "FROM messages WHERE messages.in_reply_to = correlations.message_id"
    first_retour = (
        f"coalesce((SELECT min(other.message_id) {inbound_retour}), "
        f"(SELECT min(messages.id) {generated_retour}))"
    )
    link_originals = (
        f"UPDATE correlations SET linked_id = {first_retour} "
        f"WHERE {waiting} AND {first_retour} IS NOT NULL"
    )
    return link_retours, link_originals


def _message(row: Row[Any]) -> Message:
    m = row._mapping
    return Message(
        id=m["id"],
        state=State(m["state"]),
        sender=m["sender"],
        recipient=m["recipient"],
        message_type=m["message_type"],
        bericht_id=m["bericht_id"],
        content_hash=m["content_hash"],
        size=m["size"],
        received_at=m["received_at"],
        updated_at=m["updated_at"],
        direction=Direction(m["direction"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        lease_until=m["lease_until"],
        reason=m["reason"],
        in_reply_to=m["in_reply_to"],
    )


def _event(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        message_id=m["message_id"],
        at=m["at"],
        from_state=State(m["from_state"]) if m["from_state"] is not None else None,
        to_state=State(m["to_state"]),
        reason=m["reason"],
        actor=m["actor"],
    )


def _event_values(ev: Event) -> dict[str, Any]:
    return {
        "message_id": ev.message_id,
        "at": ev.at,
        "from_state": ev.from_state.value if ev.from_state is not None else None,
        "to_state": ev.to_state.value,
        "reason": ev.reason,
        "actor": ev.actor,
    }


def _utc(value: Any) -> dt.datetime:
    """An aggregate of a time column (SQLite may hand back text) as an aware UTC datetime."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _ledger_row(entry: LedgerEntry, message_id: str | None, recorded_at: Any) -> tuple[Any, ...]:
    """A ledger pair's row in :data:`LEDGER_COLUMNS` order (``recorded_at`` already converted)."""
    factor = entry.volume_factor
    return (
        entry.key.gemeente,
        entry.key.kind.value,
        entry.key.number,
        entry.original.categorie,
        entry.original.code,
        entry.translated.categorie,
        entry.translated.code,
        entry.original_generation,
        entry.translated_generation,
        entry.origin.value,
        entry.basis,
        entry.unit_original,
        entry.unit_translated,
        None if factor is None else str(factor),
        entry.recorded_on.isoformat() if entry.recorded_on else None,
        entry.decided_by,
        message_id,
        recorded_at,
    )


def _ledger_entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        key=LedgerKey(row.gemeente, LedgerKind(row.kind), row.number),
        original=Product(row.original_categorie, row.original_code),
        translated=Product(row.translated_categorie, row.translated_code),
        original_generation=row.original_generation,
        translated_generation=row.translated_generation,
        origin=Origin(row.origin),
        basis=row.basis,
        unit_original=row.unit_original,
        unit_translated=row.unit_translated,
        volume_factor=Fraction(row.volume_factor) if row.volume_factor else None,
        recorded_on=dt.date.fromisoformat(row.recorded_on) if row.recorded_on else None,
        decided_by=row.decided_by,
    )


def _product(value: str | None) -> Product | None:
    if not value:
        return None
    categorie, _, code = value.partition("/")
    return Product(categorie, code)


def undecided_problem(item: Undecided) -> str:
    """A short name for why a product waits for a decision (grouped by ``mappings coverage``)."""
    if item.reason.startswith("no mapping"):
        return "no mapping"
    if item.reason.startswith("one-to-many"):
        return "one-to-many"
    if "Eenheid" in item.reason:
        return "unit change"
    return "other"


DECIDED = "decided "
"""Prefix of a rewrite row's kind once an operator decided it (kept for coverage)."""


def _rewrite_rows(
    message_id: str, record: TranslationRecord, first: int = 0
) -> list[tuple[Any, ...]]:
    """A translation's rewrites, then its undecided products, in :data:`REWRITE_COLUMNS` order."""
    rows: list[tuple[Any, ...]] = [
        (
            message_id,
            first + position,
            "rewrite",
            rewrite.path,
            rewrite.old[:50],
            rewrite.new[:50],
            rewrite.basis,
            rewrite.key,
            None,
        )
        for position, rewrite in enumerate(record.rewrites)
    ]
    first += len(record.rewrites)
    rows += [
        (
            message_id,
            first + position,
            undecided_problem(item),
            item.path,
            str(item.product) if item.product is not None else None,
            None,
            item.reason,
            item.key,
            ",".join(map(str, item.candidates)) or None,
        )
        for position, item in enumerate(record.undecided)
    ]
    return rows


def _insert_ledger(
    conn: Connection,
    dialect: str,
    pairs: Sequence[tuple[LedgerEntry, str | None]],
    now: dt.datetime,
) -> None:
    """Record ledger pairs (each with the message that starts it) first-wins."""
    recorded_at = _time_parameter(dialect)(now)
    rows = [_ledger_row(entry, message_id, recorded_at) for entry, message_id in pairs]
    # First translation wins: a key that has a pair keeps it (also against another process, and
    # between two pairs of one call: rows go in this order).
    _insert_rows(conn, dialect, LEDGER, LEDGER_COLUMNS, rows, on_conflict="DO NOTHING")


def _insert_translations(
    conn: Connection,
    dialect: str,
    translations: Sequence[tuple[str, TranslationRecord, dt.datetime]],
    first_position: int = 0,
) -> None:
    """Insert translations (message id, record, when its ledger pairs are recorded) whose
    messages have none stored: one executemany each for translations, rewrites and ledger."""
    if not translations:
        return
    heads = [
        (message_id, r.gemeente, r.from_generation, r.to_generation, r.translated)
        for message_id, r, _ in translations
    ]
    _insert_rows(conn, dialect, TRANSLATIONS, TRANSLATION_COLUMNS, heads)
    rewrites = [
        row
        for message_id, record, _ in translations
        for row in _rewrite_rows(message_id, record, first_position)
    ]
    _insert_rows(conn, dialect, REWRITES, REWRITE_COLUMNS, rewrites)
    time = _time_parameter(dialect)
    ledger = [
        _ledger_row(entry, message_id, time(at))
        for message_id, record, at in translations
        for entry in record.entries
    ]
    _insert_rows(conn, dialect, LEDGER, LEDGER_COLUMNS, ledger, on_conflict="DO NOTHING")


def _write_translation(
    conn: Connection,
    dialect: str,
    message_id: str,
    record: TranslationRecord,
    now: dt.datetime,
) -> None:
    """Store (or replace) a message's translation."""
    # Replaced rewrites go; what waited for a decision stays, marked decided, so coverage
    # still counts the codes the tables could not translate.
    mine = REWRITES.c.message_id == message_id
    conn.execute(delete(REWRITES).where(mine, REWRITES.c.kind == "rewrite"))
    conn.execute(
        update(REWRITES)
        .where(mine, ~REWRITES.c.kind.startswith(DECIDED))
        .values(kind=DECIDED + REWRITES.c.kind)
    )
    first = conn.execute(select(func.max(REWRITES.c.position)).where(mine)).scalar()
    conn.execute(delete(TRANSLATIONS).where(TRANSLATIONS.c.message_id == message_id))
    _insert_translations(
        conn, dialect, [(message_id, record, now)], 0 if first is None else int(first) + 1
    )


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        with _driver_errors("creating the database folder"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" hook decide how each transaction starts (pysqlite's own
        # implicit BEGIN would be DEFERRED and could fail on lock upgrade without waiting).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Only takes effect on a new file (or at the next VACUUM): lets retention hand
            # freed pages back to the file system without a full rewrite of the database.
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front; readers never block anyone in WAL mode.
        if conn.get_execution_options().get("gateway_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


class SqlStore:
    """The :class:`~gateway.store.base.Store` on SQLAlchemy 2 (sync engine).

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/to/gateway.db`` (the folder is created) or
    ``postgresql+psycopg://user:pass@host/db``. Call :meth:`migrate` before first use.
    """

    def __init__(self, url: str, *, ids: IdGenerator | None = None) -> None:
        """Connect lazily to ``url``; ``ids`` makes message ids (default: system clock)."""
        # Ledger pairs are never changed once recorded (first translation wins, a decision
        # cannot replace one), so a pair read once may be remembered; misses are not.
        self._ledger_seen: dict[LedgerKey, LedgerEntry] = {}
        with _driver_errors("opening the store"):
            parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(url, parsed.database)
        elif self.dialect == "postgresql":
            _register_array_dumpers()
            with _driver_errors("opening the store"):
                self._engine = create_engine(
                    url,
                    hide_parameters=True,
                    pool_pre_ping=True,
                    connect_args={"connect_timeout": 10},
                )
        else:
            raise StoreError(f"unsupported store URL scheme {parsed.drivername!r}")
        self._ids = ids or IdGenerator()
        self._ids_lock = threading.Lock()
        # SQLite has one writer at a time anyway. Inside this process writers queue on this
        # lock, which wakes the next one at once, instead of in SQLite's busy handler, which
        # polls in sleeps of up to 100 ms; other processes still meet the busy timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and the benchmark)."""
        return self._engine

    def close(self) -> None:
        """Close all pooled connections."""
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(gateway_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def _new_id(self, at: dt.datetime) -> str:
        with self._ids_lock:
            return self._ids.next(at)

    # -- schema --------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start and from two processes.

        The whole upgrade is one transaction, serialised by SQLite's write lock or, on
        PostgreSQL, by a transaction-scoped advisory lock.
        """
        with _driver_errors("migrating the schema"), self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            SCHEMA_VERSION.create(conn, checkfirst=True)
            applied = set(conn.execute(select(SCHEMA_VERSION.c.version)).scalars())
            known = {m.version for m in MIGRATIONS}
            if applied - known:
                raise StoreError(
                    f"database schema version {max(applied)} is newer than this gateway knows"
                )
            now = dt.datetime.now(dt.UTC)
            fresh = not applied
            for migration in MIGRATIONS:
                if migration.version in applied:
                    continue
                if not fresh or migration.version == MIGRATIONS[0].version:
                    migration.apply(conn)
                conn.execute(
                    insert(SCHEMA_VERSION).values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=now,
                    )
                )

    def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""
        with _driver_errors("reading the schema version"), self._read() as conn:
            if not conn.dialect.has_table(conn, SCHEMA_VERSION.name):
                return 0
            return int(conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar() or 0)

    # -- intake --------------------------------------------------------------------------

    def _find_duplicate(self, conn: Connection, new: NewMessage) -> Message | None:
        same_bericht = (
            MESSAGES.c.bericht_id.is_(None)
            if new.bericht_id is None
            else MESSAGES.c.bericht_id == new.bericht_id
        )
        row = conn.execute(
            select(MESSAGES).where(
                MESSAGES.c.sender == new.sender,
                MESSAGES.c.content_hash == new.content_hash,
                same_bericht,
                MESSAGES.c.replay_of.is_(None),
            )
        ).first()
        return _message(row) if row is not None else None

    def save_received(self, new: NewMessage) -> Saved:
        """Durably store raw bytes and metadata in state ``received`` (idempotent).

        The same (sender, bericht_id, content_hash) returns the existing message with
        ``created=False``, also when two requests race (the unique index decides).
        """
        direction = Direction(new.direction)
        # Outside the transaction: the scan is cheap but needs no lock.
        keys = extract_keys(new.raw)
        try:
            with _driver_errors("saving a received message"), self._write() as conn:
                existing = None if new.replay_of else self._find_duplicate(conn, new)
                if existing is not None:
                    return Saved(existing, created=False)
                message = Message(
                    id=self._new_id(new.received_at),
                    state=State.RECEIVED,
                    sender=new.sender,
                    recipient=new.recipient,
                    message_type=new.message_type,
                    bericht_id=new.bericht_id,
                    content_hash=new.content_hash,
                    size=len(new.raw),
                    received_at=new.received_at,
                    updated_at=new.received_at,
                    direction=direction,
                    in_reply_to=new.in_reply_to,
                )
                values = dataclasses.asdict(message)
                values["state"] = message.state.value
                values["direction"] = message.direction.value
                values["replay_of"] = new.replay_of
                conn.execute(insert(MESSAGES).values(**values))
                conn.execute(insert(PAYLOADS).values(message_id=message.id, raw=new.raw))
                if keys:
                    conn.execute(insert(MESSAGE_KEYS), key_rows(message.id, keys))
                received = Event(
                    message_id=message.id,
                    at=new.received_at,
                    from_state=None,
                    to_state=State.RECEIVED,
                    reason=RECEIVED_REASON,
                    actor=new.actor,
                )
                conn.execute(insert(EVENTS).values(**_event_values(received)))
                return Saved(message, created=True)
        except StoreError as exc:
            # Another process inserted the same message between our check and our insert.
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with _driver_errors("saving a received message"), self._read() as conn:
                existing = self._find_duplicate(conn, new)
            if existing is None:
                raise
            return Saved(existing, created=False)

    # -- reads ---------------------------------------------------------------------------

    def get(self, message_id: str) -> Message | None:
        """One message's metadata."""
        with _driver_errors("reading a message"), self._read() as conn:
            row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
        return _message(row) if row is not None else None

    def payload(self, message_id: str) -> bytes | None:
        """The stored raw bytes (None when purged or unknown)."""
        with _driver_errors("reading a payload"), self._read() as conn:
            raw = conn.execute(
                select(PAYLOADS.c.raw).where(PAYLOADS.c.message_id == message_id)
            ).scalar()
        return bytes(raw) if raw is not None else None

    def history(self, message_id: str) -> list[Event]:
        """All events of a message, oldest first."""
        with _driver_errors("reading a message history"), self._read() as conn:
            rows = conn.execute(
                select(EVENTS).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)
            ).all()
        return [_event(r) for r in rows]

    def findings(self, message_id: str) -> list[dict[str, Any]]:
        """The findings recorded for a message (empty when none)."""
        with _driver_errors("reading findings"), self._read() as conn:
            stored = conn.execute(
                select(FINDINGS.c.findings_json).where(FINDINGS.c.message_id == message_id)
            ).scalar()
        if stored is None:
            return []
        loaded: list[dict[str, Any]] = json.loads(stored)
        return loaded

    def query(self, q: MessageQuery) -> list[Message]:
        """Messages matching the filters, ordered by id (ids sort by arrival)."""
        conditions = []
        if q.party is not None:
            conditions.append(or_(MESSAGES.c.sender == q.party, MESSAGES.c.recipient == q.party))
        if q.sender is not None:
            conditions.append(MESSAGES.c.sender == q.sender)
        if q.recipient is not None:
            conditions.append(MESSAGES.c.recipient == q.recipient)
        if q.state is not None:
            conditions.append(MESSAGES.c.state == q.state.value)
        if q.message_type is not None:
            conditions.append(MESSAGES.c.message_type == q.message_type)
        if q.after_id is not None:
            conditions.append(MESSAGES.c.id > q.after_id)
        stmt = select(MESSAGES).where(*conditions).order_by(MESSAGES.c.id)
        with _driver_errors("listing messages"), self._read() as conn:
            rows = conn.execute(stmt.limit(max(q.limit, 0))).all()
        return [_message(r) for r in rows]

    def counts_by_party(self) -> dict[tuple[str, str], int]:
        """(recipient, state) → count over the messages that have a recipient."""
        stmt = (
            select(MESSAGES.c.recipient, MESSAGES.c.state, func.count())
            .where(MESSAGES.c.recipient.is_not(None))
            .group_by(MESSAGES.c.recipient, MESSAGES.c.state)
        )
        with _driver_errors("counting messages"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return {(recipient, state): int(count) for recipient, state, count in rows}

    def oldest_waiting(self) -> dict[str, dt.datetime]:
        """recipient → received_at of its oldest queued/held message."""
        stmt = (
            select(MESSAGES.c.recipient, func.min(MESSAGES.c.received_at))
            .where(
                MESSAGES.c.state.in_([State.QUEUED.value, State.HELD.value]),
                MESSAGES.c.recipient.is_not(None),
            )
            .group_by(MESSAGES.c.recipient)
        )
        with _driver_errors("finding the oldest waiting messages"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return {row[0]: row[1] for row in rows}

    def audit_trail(self, target: str | None = None) -> list[dict[str, Any]]:
        """Recorded operator actions, oldest first (optionally only those on ``target``)."""
        stmt = select(AUDIT).order_by(AUDIT.c.id)
        if target is not None:
            stmt = stmt.where(AUDIT.c.target == target)
        with _driver_errors("reading the audit trail"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return [
            {k: r._mapping[k] for k in ("at", "actor", "action", "target", "reason")} for r in rows
        ]

    def party_holds(self) -> dict[str, str]:
        """Parties an operator has put on hold: party id → reason (persists across restarts)."""
        with _driver_errors("reading party holds"), self._read() as conn:
            rows = conn.execute(select(PARTY_HOLDS.c.party, PARTY_HOLDS.c.reason)).all()
        return {row[0]: row[1] for row in rows}

    def set_party_hold(self, party: str, reason: str | None, at: dt.datetime, actor: str) -> None:
        """Put ``party`` on hold with ``reason``, or release it when ``reason`` is None.

        Idempotent: holding a held party replaces the reason; releasing a free one does nothing.
        """
        with _driver_errors("changing a party hold"), self._write() as conn:
            if reason is None:
                conn.execute(delete(PARTY_HOLDS).where(PARTY_HOLDS.c.party == party))
                return
            values = {"party": party, "reason": reason, "held_at": at, "actor": actor}
            upsert = (
                pg_insert(PARTY_HOLDS)
                if self.dialect == "postgresql"
                else sqlite_insert(PARTY_HOLDS)
            )
            conn.execute(
                upsert.values(**values).on_conflict_do_update(
                    index_elements=[PARTY_HOLDS.c.party],
                    set_={"reason": reason, "held_at": at, "actor": actor},
                )
            )

    def healthy(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self._read() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    # -- writes --------------------------------------------------------------------------

    def apply_transition(
        self,
        moved: Message,
        event: Event,
        expected: State,
        *,
        lease: dt.datetime | None = None,
    ) -> None:
        """Write ``moved`` and ``event`` in one transaction if the row is still ``expected``.

        With ``lease`` (the mover's claim of a ``sending`` message) the row must also still
        carry that lease. Raises ``IllegalTransition`` when the message is gone or another
        worker moved or re-claimed it first (nothing is written then), ``ValueError`` when
        ``event`` does not describe the move.
        """
        if (event.message_id, event.from_state, event.to_state) != (
            moved.id,
            expected,
            moved.state,
        ):
            raise ValueError("the event does not describe this move")
        with _driver_errors("moving a message"), self._write() as conn:
            if not _compare_and_set(conn, self.dialect, moved, expected, lease):
                raise IllegalTransition(
                    f"message {moved.id} is no longer {expected}; not moved to {moved.state}"
                )
            conn.execute(insert(EVENTS).values(**_event_values(event)))

    def record_findings(self, message_id: str, findings: Sequence[dict[str, Any]]) -> None:
        """Keep the validation findings of a message (replacing earlier ones)."""
        encoded = json.dumps(list(findings), ensure_ascii=False, default=str)
        with _driver_errors("recording findings"), self._write() as conn:
            conn.execute(delete(FINDINGS).where(FINDINGS.c.message_id == message_id))
            conn.execute(insert(FINDINGS).values(message_id=message_id, findings_json=encoded))
            conn.execute(
                delete(MESSAGE_KEYS).where(
                    MESSAGE_KEYS.c.message_id == message_id,
                    MESSAGE_KEYS.c.kind == KeyKind.RULE.value,
                )
            )
            rules = rule_keys(findings)
            if rules:
                conn.execute(insert(MESSAGE_KEYS), key_rows(message_id, rules))

    def claim_due(
        self,
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
        recipients: Sequence[str] | None = None,
    ) -> list[Message]:
        """Move up to ``limit`` due ``queued`` messages to ``sending`` with a lease.

        Oldest first. Each claim is a lifecycle move with its own event, all in one
        transaction. PostgreSQL skips rows another worker has locked; SQLite holds the write
        lock for the whole claim, and the UPDATE re-checks ``state = 'queued'`` on both.
        """
        if limit <= 0 or (recipients is not None and not recipients):
            return []
        candidates = (
            select(MESSAGES)
            .where(
                MESSAGES.c.state == State.QUEUED.value,
                or_(MESSAGES.c.next_attempt_at.is_(None), MESSAGES.c.next_attempt_at <= now),
            )
            .order_by(MESSAGES.c.id)
            .limit(limit)
        )
        if recipients is not None:
            candidates = candidates.where(MESSAGES.c.recipient.in_(list(recipients)))
        if self.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        with _driver_errors("claiming due messages"), self._write() as conn:
            moves = [
                advance(
                    _message(row),
                    State.SENDING,
                    CLAIM_REASON,
                    CLAIM_ACTOR,
                    now,
                    lease_until=lease_until,
                )
                for row in conn.execute(candidates).all()
            ]
            if not moves:
                return []
            ids = [moved.id for moved, _ in moves]
            result = conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id.in_(ids), MESSAGES.c.state == State.QUEUED.value)
                .values(
                    state=State.SENDING.value,
                    lease_until=lease_until,
                    updated_at=now,
                    reason=CLAIM_REASON,
                )
            )
            if result.rowcount != len(ids):
                # Cannot happen while the rows are locked; roll back rather than half-claim.
                raise StoreError("claiming due messages raced with another writer")
            time = _time_parameter(self.dialect)
            claims = [_event_row(ev, time) for _, ev in moves]
            _insert_rows(conn, self.dialect, EVENTS, EVENT_COLUMNS, claims)
        return [moved for moved, _ in moves]

    def expired_leases(self, now: dt.datetime) -> list[Message]:
        """``sending`` messages whose lease has run out (the worker died), oldest first."""
        stmt = (
            select(MESSAGES)
            .where(MESSAGES.c.state == State.SENDING.value, MESSAGES.c.lease_until < now)
            .order_by(MESSAGES.c.id)
        )
        with _driver_errors("finding expired leases"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return [_message(r) for r in rows]

    def record_audit(
        self, at: dt.datetime, actor: str, action: str, target: str, reason: str | None
    ) -> None:
        """Append an operator action to the audit trail."""
        with _driver_errors("recording an audit entry"), self._write() as conn:
            conn.execute(
                insert(AUDIT).values(
                    at=at, actor=actor, action=action, target=target, reason=reason
                )
            )

    def purge_payloads(self, before: dt.datetime) -> int:
        """Drop the raw bytes of delivered and rejected messages last moved before ``before``.

        Metadata, history and findings stay. Dead messages keep their bytes because an
        operator may still retry them. Returns the number of payloads dropped.
        """
        finished = select(MESSAGES.c.id).where(
            MESSAGES.c.state.in_([State.DELIVERED.value, State.REJECTED.value]),
            MESSAGES.c.updated_at < before,
        )
        with _driver_errors("purging payloads"), self._write() as conn:
            conn.execute(
                update(TRANSLATIONS)
                .where(TRANSLATIONS.c.message_id.in_(finished))
                .values(translated=None)
            )
            result = conn.execute(delete(PAYLOADS).where(PAYLOADS.c.message_id.in_(finished)))
        return int(result.rowcount)

    # -- operator console ------------------------------------------------------------------

    def search(self, q: SearchQuery) -> SearchPage:
        """One page of messages matching ``q``, sorted by id, with the next page's cursor."""
        limit = max(q.limit, 0)
        statements = search_statements(q, MESSAGES, MESSAGE_KEYS, limit + 1)
        with _driver_errors("searching messages"), self._read() as conn:
            rows = [row for stmt in statements for row in conn.execute(stmt).all()]
        found = sorted((_message(r) for r in rows), key=lambda m: m.id, reverse=q.newest_first)
        page = found[:limit]
        more = len(found) > limit
        return SearchPage(page, page[-1].id if more and page else None)

    def count(self, q: SearchQuery) -> int:
        """How many messages match ``q`` (ignores cursor and limit)."""
        stmt = select(func.count()).select_from(
            count_statement(q, MESSAGES, MESSAGE_KEYS).subquery()
        )
        with _driver_errors("counting messages"), self._read() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def keys_of(self, message_id: str) -> dict[KeyKind, list[str]]:
        """The searchable values indexed for a message."""
        stmt = (
            select(MESSAGE_KEYS.c.kind, MESSAGE_KEYS.c.value)
            .where(MESSAGE_KEYS.c.message_id == message_id)
            .order_by(MESSAGE_KEYS.c.kind, MESSAGE_KEYS.c.value)
        )
        with _driver_errors("reading message keys"), self._read() as conn:
            rows = conn.execute(stmt).all()
        keys: dict[KeyKind, list[str]] = {}
        for kind, value in rows:
            keys.setdefault(KeyKind(kind), []).append(value)
        return keys

    def replay_of(self, message_id: str) -> str | None:
        """The original of a replayed message (None for an original or an unknown id)."""
        with _driver_errors("reading a message"), self._read() as conn:
            found = conn.execute(
                select(MESSAGES.c.replay_of).where(MESSAGES.c.id == message_id)
            ).scalar()
        return str(found) if found is not None else None

    def related(self, message_id: str) -> list[Related]:
        """Retours, originals, replays and messages with the same BerichtIdentificatie."""
        with _driver_errors("reading related messages"), self._read() as conn:
            row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
            if row is None:
                return []
            me = row._mapping
            labelled: list[tuple[str, Any]] = [
                ("retour", MESSAGES.c.in_reply_to == message_id),
                ("replayed as", MESSAGES.c.replay_of == message_id),
            ]
            if me["in_reply_to"]:
                labelled.append(("answers", MESSAGES.c.id == me["in_reply_to"]))
            if me["replay_of"]:
                labelled.append(("replay of", MESSAGES.c.id == me["replay_of"]))
                labelled.append(("other replay", MESSAGES.c.replay_of == me["replay_of"]))
            if me["bericht_id"]:
                labelled.append(
                    (
                        "same BerichtIdentificatie",
                        and_(
                            MESSAGES.c.bericht_id == me["bericht_id"],
                            MESSAGES.c.sender == me["sender"],
                        ),
                    )
                )
            found: dict[str, Related] = {}
            for relation, condition in labelled:
                stmt = (
                    select(MESSAGES)
                    .where(condition, MESSAGES.c.id != message_id)
                    .order_by(MESSAGES.c.id)
                    .limit(50)
                )
                for r in conn.execute(stmt).all():
                    found.setdefault(r._mapping["id"], Related(relation, _message(r)))
        return sorted(found.values(), key=lambda rel: rel.message.id)

    def delivered_copies(self, message: Message) -> list[Message]:
        """Delivered messages with the same sender, BerichtIdentificatie and content."""
        same_bericht = (
            MESSAGES.c.bericht_id.is_(None)
            if message.bericht_id is None
            else MESSAGES.c.bericht_id == message.bericht_id
        )
        stmt = (
            select(MESSAGES)
            .where(
                MESSAGES.c.sender == message.sender,
                same_bericht,
                MESSAGES.c.content_hash == message.content_hash,
                MESSAGES.c.state == State.DELIVERED.value,
            )
            .order_by(MESSAGES.c.id)
        )
        with _driver_errors("looking for delivered copies"), self._read() as conn:
            return [_message(r) for r in conn.execute(stmt).all()]

    def audit_entries(self, q: AuditQuery) -> list[AuditEntry]:
        """Recorded operator actions matching ``q``, newest first."""
        conditions = []
        if q.target is not None:
            conditions.append(AUDIT.c.target == q.target)
        if q.actor is not None:
            conditions.append(AUDIT.c.actor == q.actor)
        if q.action is not None:
            conditions.append(AUDIT.c.action == q.action)
        if q.since is not None:
            conditions.append(AUDIT.c.at >= q.since)
        if q.before_id is not None:
            conditions.append(AUDIT.c.id < q.before_id)
        stmt = select(AUDIT).where(*conditions).order_by(AUDIT.c.id.desc()).limit(q.limit)
        with _driver_errors("reading the audit trail"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return [
            AuditEntry(
                id=int(r._mapping["id"]),
                at=r._mapping["at"],
                actor=r._mapping["actor"],
                action=r._mapping["action"],
                target=r._mapping["target"],
                reason=r._mapping["reason"],
            )
            for r in rows
        ]

    def last_delivered(self) -> dict[str, dt.datetime]:
        """recipient → when its most recent delivered message was delivered."""
        stmt = (
            select(MESSAGES.c.recipient, func.max(MESSAGES.c.updated_at))
            .where(MESSAGES.c.state == State.DELIVERED.value, MESSAGES.c.recipient.is_not(None))
            .group_by(MESSAGES.c.recipient)
        )
        with _driver_errors("reading the last deliveries"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return {row[0]: row[1] for row in rows}

    def purge(
        self, cutoffs: dict[State, dt.datetime], *, batch_size: int, dry_run: bool
    ) -> PurgeResult:
        """Drop payloads of ``delivered``/``rejected`` messages last moved before the cutoff.

        Metadata, history, findings, search keys and the audit trail stay. Each batch is its
        own short transaction, so intake and delivery never wait long behind a purge.
        """
        allowed = {State.DELIVERED, State.REJECTED}
        if set(cutoffs) - allowed:
            raise ValueError("retention only drops payloads of delivered or rejected messages")
        counts: dict[str, int] = {}
        for state, before in cutoffs.items():
            candidates = (
                select(PAYLOADS.c.message_id)
                .join(MESSAGES, MESSAGES.c.id == PAYLOADS.c.message_id)
                .where(MESSAGES.c.state == state.value, MESSAGES.c.updated_at < before)
            )
            if dry_run:
                with _driver_errors("counting purgeable payloads"), self._read() as conn:
                    counts[state.value] = int(
                        conn.execute(
                            select(func.count()).select_from(candidates.subquery())
                        ).scalar()
                        or 0
                    )
                continue
            dropped = 0
            while True:
                with _driver_errors("purging payloads"), self._write() as conn:
                    ids = list(conn.execute(candidates.limit(batch_size)).scalars())
                    if not ids:
                        break
                    # Re-check the state inside the write: a message cannot leave delivered or
                    # rejected, but the guard keeps the promise local and obvious.
                    # The translated copy holds the same BSNs: it goes with the raw bytes.
                    conn.execute(
                        update(TRANSLATIONS)
                        .where(
                            TRANSLATIONS.c.message_id.in_(ids),
                            TRANSLATIONS.c.message_id.in_(
                                select(MESSAGES.c.id).where(
                                    MESSAGES.c.id.in_(ids), MESSAGES.c.state == state.value
                                )
                            ),
                        )
                        .values(translated=None)
                    )
                    result = conn.execute(
                        delete(PAYLOADS).where(
                            PAYLOADS.c.message_id.in_(ids),
                            PAYLOADS.c.message_id.in_(
                                select(MESSAGES.c.id).where(
                                    MESSAGES.c.id.in_(ids), MESSAGES.c.state == state.value
                                )
                            ),
                        )
                    )
                    dropped += int(result.rowcount)
                if len(ids) < batch_size:
                    break
            counts[state.value] = dropped
        return PurgeResult(counts)

    def database_bytes(self) -> int:
        """The size of the database as the engine counts it (pages in use on SQLite)."""
        with _driver_errors("measuring the database"), self._read() as conn:
            if self.dialect == "sqlite":
                pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
                size = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
                return (pages - free) * size
            return int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0
            )

    def reclaim_space(self, full: bool = False) -> int:
        """Hand freed pages back to the file system; returns bytes the file shrank by.

        SQLite: ``PRAGMA incremental_vacuum`` when the file was created in incremental mode,
        otherwise only with ``full`` a ``VACUUM`` (which rewrites the file once and switches
        it to incremental mode for next time). PostgreSQL reuses the space of deleted rows
        by itself (autovacuum); nothing to do here.
        """
        if self.dialect != "sqlite":
            return 0
        # VACUUM cannot run inside a transaction, so use the driver connection directly (it
        # is in autocommit mode: the connect hook sets isolation_level None).
        with _driver_errors("reclaiming disk space"):
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                size = int(cursor.execute("PRAGMA page_size").fetchone()[0])
                before = int(cursor.execute("PRAGMA page_count").fetchone()[0])
                mode = int(cursor.execute("PRAGMA auto_vacuum").fetchone()[0])
                if mode == 2:
                    cursor.execute("PRAGMA incremental_vacuum").fetchall()
                elif full:
                    cursor.execute("VACUUM")
                after = int(cursor.execute("PRAGMA page_count").fetchone()[0])
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                cursor.close()
            finally:
                raw.close()
        return max(before - after, 0) * size

    # -- heen/retour correlation -------------------------------------------------------------

    def record_correlation(self, message_id: str, correlation: Correlation) -> None:
        """Remember a stored message's place in an exchange and link what pairs up (idempotent:
        a message already recorded keeps its row)."""
        upsert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        with _driver_errors("recording a correlation"), self._write() as conn:
            _lock_exchanges(conn, [correlation.key.bericht_id])
            conn.execute(
                upsert(CORRELATIONS)
                .values(**_correlation_row(message_id, correlation))
                .on_conflict_do_nothing()
            )
            _link_correlations(conn, [correlation.key.bericht_id])
            _register_module().settle(conn, [message_id])

    def linked_message(self, message_id: str) -> str | None:
        """The other side of a message's exchange, once linked."""
        with _driver_errors("reading a correlation"), self._read() as conn:
            found = conn.execute(
                select(CORRELATIONS.c.linked_id).where(CORRELATIONS.c.message_id == message_id)
            ).scalar()
        return str(found) if found is not None else None

    def open_originals(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[OpenOriginal]:
        """Originals (not rejected) with no retour linked yet, oldest first."""
        stmt = (
            select(MESSAGES, CORRELATIONS.c.overdue_logged_at)
            .join(CORRELATIONS, CORRELATIONS.c.message_id == MESSAGES.c.id)
            .where(
                CORRELATIONS.c.side == Side.ORIGINAL.value,
                CORRELATIONS.c.linked_id.is_(None),
                MESSAGES.c.state.not_in([State.REJECTED.value, State.RECEIVED.value]),
            )
            .order_by(MESSAGES.c.id)
        )
        if party is not None:
            stmt = stmt.where(or_(MESSAGES.c.sender == party, MESSAGES.c.recipient == party))
        if received_before is not None:
            # Message ids grow with their receipt time: the primary key bounds the scan.
            stmt = stmt.where(MESSAGES.c.id < first_id_at(received_before))
        with _driver_errors("listing originals waiting for a retour"), self._read() as conn:
            rows = conn.execute(stmt).all()
        return [OpenOriginal(_message(r), r._mapping["overdue_logged_at"]) for r in rows]

    def record_register(
        self, message_id: str, update: RegisterUpdate, replay_of: str | None = None
    ) -> None:
        """Write a stored message's register entries once and settle what its link decides."""
        with _driver_errors("recording dossier entries"), self._write() as conn:
            _register_module().write_entries(conn, [(message_id, update)], replaces=replay_of)

    def mark_overdue_logged(self, message_ids: Sequence[str], at: dt.datetime) -> list[str]:
        """Mark the overdue notice of these originals logged; returns those not marked before."""
        if not message_ids:
            return []
        with _driver_errors("marking overdue notices"), self._write() as conn:
            marked = conn.execute(
                update(CORRELATIONS)
                .where(
                    CORRELATIONS.c.message_id.in_(list(message_ids)),
                    CORRELATIONS.c.overdue_logged_at.is_(None),
                )
                .values(overdue_logged_at=at)
                .returning(CORRELATIONS.c.message_id)
            )
            return sorted(str(row[0]) for row in marked)

    # -- request clocks ------------------------------------------------------------------------

    def request_exchanges(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[RequestExchange]:
        """Requests that count, with their answers, oldest request first."""
        counts = REGISTER.c.verdict != "rejected"
        requests = (
            select(MESSAGES, REGISTER.c.referentie, REGISTER.c.gemeente, REGISTER.c.aanbieder)
            .join(REGISTER, REGISTER.c.message_id == MESSAGES.c.id)
            .where(REGISTER.c.kind == "request", counts, REGISTER.c.referentie.is_not(None))
            .order_by(MESSAGES.c.id, REGISTER.c.id)
        )
        if party is not None:
            involved = or_(MESSAGES.c.sender == party, MESSAGES.c.recipient == party)
            requests = requests.where(involved)
        if received_before is not None:
            requests = requests.where(MESSAGES.c.id < first_id_at(received_before))
        with _driver_errors("reading the request clocks"), self._read() as conn:
            rows = conn.execute(requests).all()
            references = sorted({str(r._mapping["referentie"]) for r in rows})
            answers = (
                conn.execute(
                    select(
                        REGISTER.c.message_id,
                        REGISTER.c.kind,
                        REGISTER.c.gemeente,
                        REGISTER.c.aanbieder,
                        REGISTER.c.referentie,
                        REGISTER.c.body,
                        MESSAGES.c.message_type,
                        MESSAGES.c.received_at,
                    )
                    .join(MESSAGES, MESSAGES.c.id == REGISTER.c.message_id)
                    .where(
                        REGISTER.c.kind.in_(("answer", "allocation")),
                        counts,
                        REGISTER.c.referentie.in_(references),
                    )
                    .order_by(REGISTER.c.message_id)
                ).all()
                if references
                else []
            )
        by_request: dict[tuple[str, str, str], dict[str, RequestAnswer]] = {}
        for a in answers:
            verzoek = json.loads(a.body).get("verzoek_antwoord") if a.kind == "answer" else None
            found = RequestAnswer(str(a.message_id), a.message_type or "", a.received_at, verzoek)
            # A JW301 honouring a request names it in every product: one answer per message.
            key = (str(a.gemeente), str(a.aanbieder), str(a.referentie))
            by_request.setdefault(key, {})[found.message_id] = found
        # One tuple per reference, shared by every request that carries it: a reference
        # reused by many requests must not cost requests x answers.
        shared = {key: tuple(found.values()) for key, found in by_request.items()}
        result = []
        for row in rows:
            m = row._mapping
            key = (str(m["gemeente"]), str(m["aanbieder"]), str(m["referentie"]))
            result.append(
                RequestExchange(
                    message=_message(row),
                    referentie=key[2],
                    gemeente=key[0],
                    aanbieder=key[1],
                    answers=shared.get(key, ()),
                )
            )
        return result

    def mark_notices_logged(self, keys: Sequence[str], at: dt.datetime) -> list[str]:
        """Mark these deadline keys' overdue notices logged; returns those not marked before."""
        if not keys:
            return []
        upsert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        with _driver_errors("marking overdue notices"), self._write() as conn:
            marked = conn.execute(
                upsert(DEADLINE_NOTICES)
                .values([{"key": key, "logged_at": at} for key in sorted(set(keys))])
                .on_conflict_do_nothing()
                .returning(DEADLINE_NOTICES.c.key)
            )
            return sorted(str(row[0]) for row in marked)

    def logged_notices(self, keys: Sequence[str]) -> dict[str, dt.datetime]:
        """When each of these deadline keys' overdue notice was logged."""
        if not keys:
            return {}
        with _driver_errors("reading overdue notices"), self._read() as conn:
            rows = conn.execute(
                select(DEADLINE_NOTICES).where(DEADLINE_NOTICES.c.key.in_(sorted(set(keys))))
            ).all()
        return {str(r.key): r.logged_at for r in rows}

    # -- product-code translation -----------------------------------------------------------

    def ledger_entry(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for an allocation or request, or None."""
        known = self._ledger_seen.get(key)
        if known is not None:
            return known
        with _driver_errors("reading the translation ledger"), self._read() as conn:
            row = conn.execute(
                select(LEDGER).where(
                    LEDGER.c.gemeente == key.gemeente,
                    LEDGER.c.kind == key.kind.value,
                    LEDGER.c.number == key.number,
                )
            ).first()
        if row is None:
            return None
        entry = _ledger_entry(row)
        if len(self._ledger_seen) >= LEDGER_CACHE_SIZE:
            self._ledger_seen.clear()  # bounded memory; the next reads refill it
        self._ledger_seen[key] = entry
        return entry

    def ledger_requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request pair of a ReferentieAanbieder, in key order."""
        with _driver_errors("reading the translation ledger"), self._read() as conn:
            rows = conn.execute(
                select(LEDGER)
                .where(
                    LEDGER.c.gemeente == gemeente,
                    LEDGER.c.kind == LedgerKind.VERZOEK.value,
                    or_(LEDGER.c.number == referentie, LEDGER.c.number.like(f"{referentie}#%")),
                )
                .order_by(LEDGER.c.number)
            ).all()
        # LIKE treats '_' and '%' in the reference as wildcards; the exact check drops those.
        entries = (_ledger_entry(row) for row in rows)
        return tuple(e for e in entries if e.key.referentie == referentie)

    def record_ledger(self, entries: Sequence[LedgerEntry], message_id: str | None) -> None:
        """Record pairs first-wins: a key that has a pair already keeps it."""
        with _driver_errors("recording translation pairs"), self._write() as conn:
            pairs = [(entry, message_id) for entry in entries]
            _insert_ledger(conn, self.dialect, pairs, dt.datetime.now(dt.UTC))

    def save_translation(self, message_id: str, record: TranslationRecord) -> None:
        """Store (or replace) a message's translation and record its ledger pairs."""
        with _driver_errors("saving a translation"), self._write() as conn:
            _write_translation(conn, self.dialect, message_id, record, dt.datetime.now(dt.UTC))

    def translation_of(self, message_id: str) -> StoredTranslation | None:
        """The stored translation of a message, or None when it was never translated."""
        with _driver_errors("reading a translation"), self._read() as conn:
            head = conn.execute(
                select(
                    TRANSLATIONS.c.gemeente,
                    TRANSLATIONS.c.from_generation,
                    TRANSLATIONS.c.to_generation,
                    TRANSLATIONS.c.translated.is_not(None),
                ).where(TRANSLATIONS.c.message_id == message_id)
            ).first()
            if head is None:
                return None
            rows = conn.execute(
                select(REWRITES)
                .where(REWRITES.c.message_id == message_id)
                .order_by(REWRITES.c.position)
            ).all()
        rewrites = tuple(
            Rewrite(r.path, r.original or "", r.translated or "", r.basis, r.ledger_key)
            for r in rows
            if r.kind == "rewrite"
        )
        undecided = tuple(
            Undecided(
                r.path,
                _product(r.original),
                r.basis,
                r.ledger_key,
                tuple(p for p in map(_product, (r.candidates or "").split(",")) if p),
            )
            for r in rows
            if r.kind != "rewrite" and not r.kind.startswith(DECIDED)
        )
        return StoredTranslation(head[0], head[1], head[2], bool(head[3]), rewrites, undecided)

    def delivery_payload(self, message_id: str) -> bytes | None:
        """The bytes to deliver: the translation when there is one, else the raw bytes."""
        with _driver_errors("reading a payload"), self._read() as conn:
            row = conn.execute(
                select(PAYLOADS.c.raw, TRANSLATIONS.c.translated)
                .select_from(PAYLOADS)
                .outerjoin(TRANSLATIONS, TRANSLATIONS.c.message_id == PAYLOADS.c.message_id)
                .where(PAYLOADS.c.message_id == message_id)
            ).first()
        if row is None:
            return None
        chosen = row[1] if row[1] is not None else row[0]
        return bytes(chosen)

    def translation_coverage(self, since: dt.datetime | None = None) -> list[CoverageRow]:
        """Products in messages received since ``since`` that waited for a mapping decision."""
        product = REWRITES.c.original
        problem = func.replace(REWRITES.c.kind, DECIDED, "")
        query = (
            select(
                TRANSLATIONS.c.gemeente,
                TRANSLATIONS.c.from_generation,
                TRANSLATIONS.c.to_generation,
                product,
                problem,
                func.count(func.distinct(REWRITES.c.message_id)),
                func.min(MESSAGES.c.received_at),
                func.max(MESSAGES.c.received_at),
            )
            .select_from(REWRITES)
            .join(TRANSLATIONS, TRANSLATIONS.c.message_id == REWRITES.c.message_id)
            .join(MESSAGES, MESSAGES.c.id == REWRITES.c.message_id)
            .where(REWRITES.c.kind != "rewrite", product.is_not(None))
            .group_by(
                TRANSLATIONS.c.gemeente,
                TRANSLATIONS.c.from_generation,
                TRANSLATIONS.c.to_generation,
                product,
                problem,
            )
        )
        if since is not None:
            query = query.where(MESSAGES.c.received_at >= since)
        with _driver_errors("reading translation coverage"), self._read() as conn:
            rows = conn.execute(query).all()
        found = [
            CoverageRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), _utc(r[6]), _utc(r[7]))
            for r in rows
        ]
        return sorted(found, key=lambda c: (-c.messages, c.gemeente, c.product, c.problem))

    # -- batched intake (group commit) -----------------------------------------------------

    def new_message_id(self, at: dt.datetime) -> str:
        """A fresh message id, sortable by ``at``, for a message that intake is preparing."""
        return self._new_id(at)

    def write_batch(
        self, records: Sequence[IntakeRecord], moves: Sequence[Move] = ()
    ) -> BatchResult:
        """Store received messages and make state moves in one transaction (see Store).

        A batch costs a fixed number of statements, not some per message: one multi-row
        ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for the message rows (the
        idempotency index decides which are new, also between two records of one batch and
        against another process), then one executemany (on PostgreSQL one statement) each for
        payloads, events, findings, keys, correlations, register entries, translations, rewrites
        and ledger pairs of the new ones, all at driver level (see ``_insert_rows``); on
        PostgreSQL every one of them has the same SQL text whatever the batch holds, so it is
        prepared once per connection. Only a re-submission costs a SELECT, each move its own
        compare-and-set UPDATE, and settling dossier verdicts runs only when the batch linked
        an exchange.
        """
        retours = [r.retour for r in records if r.retour is not None]
        for record in (*records, *retours):
            self._check_intake(record)
        for move in moves:
            if (move.event.message_id, move.event.from_state, move.event.to_state) != (
                move.moved.id,
                move.expected,
                move.moved.state,
            ):
                raise ValueError("the event does not describe this move")
        # Outside the transaction: the byte scans need no lock.
        keys = {
            r.message.id: extract_keys(r.raw) + rule_keys(r.findings) for r in (*records, *retours)
        }
        with _driver_errors("saving received messages"), self._write() as conn:
            saved = self._insert_intake(conn, records, retours, keys) if records else []
            moved = [False] * len(moves)
            # In id order, so two processes moving the same rows lock them in the same order.
            for index in sorted(range(len(moves)), key=lambda i: moves[i].moved.id):
                move = moves[index]
                moved[index] = _compare_and_set(
                    conn, self.dialect, move.moved, move.expected, move.lease
                )
            time = _time_parameter(self.dialect)
            events = [
                _event_row(m.event, time) for m, done in zip(moves, moved, strict=True) if done
            ]
            _insert_rows(conn, self.dialect, EVENTS, EVENT_COLUMNS, events)
        return BatchResult(saved, moved)

    def _insert_intake(
        self,
        conn: Connection,
        records: Sequence[IntakeRecord],
        retours: Sequence[IntakeRecord],
        keys: dict[str, list[tuple[KeyKind, str]]],
    ) -> list[Saved]:
        dialect = self.dialect
        time = _time_parameter(dialect)
        created = _insert_new_messages(
            conn, dialect, [_message_row(r.message, time) for r in records]
        )
        answers = [r for r in retours if r.message.in_reply_to in created]
        if answers:
            rows = [_message_row(r.message, time) for r in answers]
            created |= _insert_new_messages(conn, dialect, rows)
        stored = [r for r in (*records, *answers) if r.message.id in created]
        _insert_rows(
            conn, dialect, PAYLOADS, ("message_id", "raw"), [(r.message.id, r.raw) for r in stored]
        )
        events = [_event_row(ev, time) for r in stored for ev in self._intake_events(r)]
        _insert_rows(conn, dialect, EVENTS, EVENT_COLUMNS, events)
        findings = [
            (r.message.id, json.dumps(list(r.findings), ensure_ascii=False, default=str))
            for r in stored
            if r.findings
        ]
        _insert_rows(conn, dialect, FINDINGS, ("message_id", "findings_json"), findings)
        key_values = [
            (row["kind"], row["value"], row["message_id"])
            for r in stored
            for row in key_rows(r.message.id, keys[r.message.id])
        ]
        _insert_rows(conn, dialect, MESSAGE_KEYS, ("kind", "value", "message_id"), key_values)
        correlated = [(r.message.id, r.correlation) for r in stored if r.correlation is not None]
        linked = 0
        if correlated:
            exchanges = [c.key.bericht_id for _, c in correlated]
            _lock_exchanges(conn, exchanges)
            correlations = [_correlation_tuple(*pair) for pair in correlated]
            _insert_rows(conn, dialect, CORRELATIONS, CORRELATION_COLUMNS, correlations)
            linked = _link_correlations(conn, exchanges)
        registered = [(r.message.id, r.register) for r in stored if r.register is not None]
        if registered:
            # Only new rows here, and only an exchange linked just now can need settling: one
            # linked before had its retour's verdict applied when it was linked.
            _register_module().write_entries(
                conn,
                registered,
                fresh=True,
                correlated=[mid for mid, _ in correlated] if linked else [],
            )
        translated = [
            (r.message.id, r.translation, r.message.updated_at)
            for r in stored
            if r.translation is not None
        ]
        _insert_translations(conn, dialect, translated)
        return [
            Saved(r.message, created=True)
            if r.message.id in created
            else Saved(self._stored_original(conn, r.message), created=False)
            for r in records
        ]

    @staticmethod
    def _check_intake(record: IntakeRecord) -> None:
        msg = record.message
        state = State.RECEIVED
        for ev in record.moves:
            if ev.message_id != msg.id or ev.from_state is not state:
                raise ValueError(f"the moves of message {msg.id} do not follow from {state}")
            state = ev.to_state
        if state is not msg.state:
            raise ValueError(f"the moves of message {msg.id} end in {state}, not {msg.state}")
        if record.retour is not None and record.retour.message.in_reply_to != msg.id:
            raise ValueError(f"the retour of message {msg.id} does not reply to it")

    @staticmethod
    def _intake_row(msg: Message) -> dict[str, Any]:
        return {
            "id": msg.id,
            "state": msg.state.value,
            "sender": msg.sender,
            "recipient": msg.recipient,
            "message_type": msg.message_type,
            "bericht_id": msg.bericht_id,
            "content_hash": msg.content_hash,
            "size": msg.size,
            "received_at": msg.received_at,
            "updated_at": msg.updated_at,
            "direction": msg.direction.value,
            "attempts": msg.attempts,
            "next_attempt_at": msg.next_attempt_at,
            "lease_until": msg.lease_until,
            "reason": msg.reason,
            "in_reply_to": msg.in_reply_to,
            "replay_of": None,
        }

    @staticmethod
    def _intake_events(record: IntakeRecord) -> list[Event]:
        msg = record.message
        received = Event(
            message_id=msg.id,
            at=msg.received_at,
            from_state=None,
            to_state=State.RECEIVED,
            reason=RECEIVED_REASON,
            actor=record.actor,
        )
        return [received, *record.moves]

    @staticmethod
    def _stored_original(conn: Connection, msg: Message) -> Message:
        """The stored message that ``msg`` re-submits (same idempotency key)."""
        # The same expression as the unique index, so the index answers.
        row = conn.execute(
            select(MESSAGES).where(
                MESSAGES.c.sender == msg.sender,
                func.coalesce(MESSAGES.c.bericht_id, "") == (msg.bericht_id or ""),
                MESSAGES.c.content_hash == msg.content_hash,
                MESSAGES.c.replay_of.is_(None),
            )
        ).first()
        if row is None:
            raise StoreError(f"message id {msg.id} is already in use")
        return _message(row)

    # -- intake quota -----------------------------------------------------------------------

    def received_bytes(self, sender: str, since: dt.datetime) -> int:
        """Bytes of the messages ``sender`` sent that were stored at or after ``since``."""
        stmt = select(func.coalesce(func.sum(MESSAGES.c.size), 0)).where(
            MESSAGES.c.sender == sender,
            MESSAGES.c.direction == Direction.INBOUND.value,
            MESSAGES.c.replay_of.is_(None),
            MESSAGES.c.received_at >= since,
        )
        with _driver_errors("summing received bytes"), self._read() as conn:
            return int(conn.execute(stmt).scalar() or 0)


if TYPE_CHECKING:

    def _implements_the_protocol(store: SqlStore) -> Store:
        # mypy fails here when SqlStore drifts from the Store Protocol.
        return store
