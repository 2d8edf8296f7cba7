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
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
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
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
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
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from gateway.core.errors import IllegalTransition, StoreError
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Event, Message, State
from gateway.store.base import MessageQuery, NewMessage, Saved

if TYPE_CHECKING:
    from gateway.store.base import Store

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for SQLite's write lock before the store reports "database busy"."""

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

# Delivery looks up due messages per recipient; the idempotency key treats a missing
# BerichtIdentificatie as "" so resubmitting the same unparseable bytes is idempotent too.
Index("ix_messages_due", MESSAGES.c.recipient, MESSAGES.c.state, MESSAGES.c.next_attempt_at)
Index(
    "ux_messages_idempotency",
    MESSAGES.c.sender,
    func.coalesce(MESSAGES.c.bericht_id, ""),
    MESSAGES.c.content_hash,
    unique=True,
)
Index("ix_messages_sender", MESSAGES.c.sender, MESSAGES.c.id)

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


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "messages, payloads, events, findings, audit, party holds", _create_tables),
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


def _movable_values(msg: Message) -> dict[str, Any]:
    values = {name: getattr(msg, name) for name in _MOVABLE_COLUMNS}
    values["state"] = msg.state.value
    return values


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
        with _driver_errors("opening the store"):
            parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(url, parsed.database)
        elif self.dialect == "postgresql":
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

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and the benchmark)."""
        return self._engine

    def close(self) -> None:
        """Close all pooled connections."""
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
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
            )
        ).first()
        return _message(row) if row is not None else None

    def save_received(self, new: NewMessage) -> Saved:
        """Durably store raw bytes and metadata in state ``received`` (idempotent).

        The same (sender, bericht_id, content_hash) returns the existing message with
        ``created=False``, also when two requests race (the unique index decides).
        """
        direction = Direction(new.direction)
        try:
            with _driver_errors("saving a received message"), self._write() as conn:
                existing = self._find_duplicate(conn, new)
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
                conn.execute(insert(MESSAGES).values(**values))
                conn.execute(insert(PAYLOADS).values(message_id=message.id, raw=new.raw))
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

    def apply_transition(self, moved: Message, event: Event, expected: State) -> None:
        """Write ``moved`` and ``event`` in one transaction if the row is still ``expected``.

        Raises ``IllegalTransition`` when the message is gone or another worker moved it first
        (nothing is written then), ``ValueError`` when ``event`` does not describe the move.
        """
        if (event.message_id, event.from_state, event.to_state) != (
            moved.id,
            expected,
            moved.state,
        ):
            raise ValueError("the event does not describe this move")
        with _driver_errors("moving a message"), self._write() as conn:
            result = conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == moved.id, MESSAGES.c.state == expected.value)
                .values(**_movable_values(moved))
            )
            if result.rowcount != 1:
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
            conn.execute(insert(EVENTS), [_event_values(ev) for _, ev in moves])
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
            result = conn.execute(delete(PAYLOADS).where(PAYLOADS.c.message_id.in_(finished)))
        return int(result.rowcount)


if TYPE_CHECKING:

    def _implements_the_protocol(store: SqlStore) -> Store:
        # mypy fails here when SqlStore drifts from the Store Protocol.
        return store
