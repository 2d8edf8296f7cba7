"""Messages and their lifecycle: intake of one message, reads, state moves and claims."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    IntegrityError,
)

from gateway.core.errors import IllegalTransition, StoreError
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Event, Message, State
from gateway.store.base import (
    KeyKind,
    MessageQuery,
    NewMessage,
    Saved,
)
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import insert_rows, time_parameter
from gateway.store.rows import (
    EVENT_COLUMNS,
    claims_identificatie,
    event_from_row,
    event_row,
    event_values,
    message_from_row,
)
from gateway.store.search import (
    extract_keys,
    key_rows,
    rule_keys,
)
from gateway.store.tables import (
    EVENTS,
    FINDINGS,
    MESSAGE_KEYS,
    MESSAGES,
    PAYLOADS,
)

CLAIM_ACTOR = "delivery"
CLAIM_REASON = "claimed for delivery"
RECEIVED_REASON = "received"

# Columns a state move may change; identity and intake facts never change after intake.
MOVABLE_COLUMNS = (
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


def compare_and_set(
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
    time = time_parameter(dialect)
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
    result = conn.exec_driver_sql(move_sql(dialect, lease is not None), parameters)
    return result.rowcount == 1


@functools.cache
def move_sql(dialect: str, with_lease: bool) -> str:
    """The compare-and-set UPDATE of a state move, in the driver's paramstyle."""
    mark = "?" if dialect == "sqlite" else "%s"
    assignments = ", ".join(f"{name} = {mark}" for name in MOVABLE_COLUMNS)
    condition = f"id = {mark} AND state = {mark}"
    if with_lease:
        condition += f" AND lease_until = {mark}"
    return f"UPDATE {MESSAGES.name} SET {assignments} WHERE {condition}"


def identificatie_holder(
    conn: Connection, sender: str, message_type: str | None, bericht_id: str | None
) -> Message | None:
    """The stored message that holds ``sender``'s BerichtIdentificatie for ``message_type``
    (see ``IDENTIFICATIE_INDEX``), if any."""
    row = conn.execute(
        select(MESSAGES).where(
            MESSAGES.c.sender == sender,
            MESSAGES.c.message_type == message_type,
            MESSAGES.c.bericht_id == bericht_id,
            MESSAGES.c.identificatie_claim.is_not(None),
        )
    ).first()
    return message_from_row(row) if row is not None else None


class MessageRepository(Repository):
    """One message at a time: saved, read, moved (compare-and-set) or claimed for delivery."""

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
        return message_from_row(row) if row is not None else None

    def save_received(self, new: NewMessage) -> Saved:
        """Durably store raw bytes and metadata in state ``received`` (idempotent).

        The same (sender, bericht_id, content_hash) returns the existing message with
        ``created=False``, also when two requests race (the unique index decides). Other bytes
        under a BerichtIdentificatie another message holds (see ``claims_identificatie``) are
        not stored: ``identificatie_taken`` and that message.
        """
        direction = Direction(new.direction)
        # Outside the transaction: the scan is cheap but needs no lock.
        keys = extract_keys(new.raw, self._db.pseudonyms)
        try:
            with driver_errors("saving a received message"), self._db.write() as conn:
                existing = None if new.replay_of else self._find_duplicate(conn, new)
                if existing is not None:
                    return Saved(existing, created=False)
                message = Message(
                    id=self._db.new_id(new.received_at),
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
                claims = new.replay_of is None and claims_identificatie(message)
                holder = (
                    identificatie_holder(conn, new.sender, new.message_type, new.bericht_id)
                    if claims
                    else None
                )
                if holder is not None:
                    return Saved(holder, created=False, identificatie_taken=True)
                values = dataclasses.asdict(message)
                values["state"] = message.state.value
                values["direction"] = message.direction.value
                values["replay_of"] = new.replay_of
                values["identificatie_claim"] = 1 if claims else None
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
                conn.execute(insert(EVENTS).values(**event_values(received)))
                return Saved(message, created=True)
        except StoreError as exc:
            # Another process inserted the same message between our check and our insert.
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with driver_errors("saving a received message"), self._db.read() as conn:
                existing = self._find_duplicate(conn, new)
                holder = identificatie_holder(conn, new.sender, new.message_type, new.bericht_id)
            if existing is not None:
                return Saved(existing, created=False)
            if new.replay_of is not None or holder is None:
                raise
            return Saved(holder, created=False, identificatie_taken=True)

    def claim_identificatie(self, message_id: str) -> Message | None:
        """Let a stored message that held nothing (it waited for a mapping decision) hold its
        sender's BerichtIdentificatie for its type now that it goes on; the message that
        already holds it when another does (the unique index decides, across processes too),
        else None."""
        with driver_errors("reading a message"), self._db.read() as conn:
            row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
        if row is None or row.identificatie_claim is not None or row.replay_of is not None:
            return None
        msg = message_from_row(row)
        if not claims_identificatie(dataclasses.replace(msg, state=State.QUEUED, reason=None)):
            return None
        claim = update(MESSAGES).where(MESSAGES.c.id == message_id).values(identificatie_claim=1)
        try:
            with driver_errors("claiming a BerichtIdentificatie"), self._db.write() as conn:
                holder = identificatie_holder(conn, msg.sender, msg.message_type, msg.bericht_id)
                if holder is not None:
                    return holder
                conn.execute(claim)
                return None
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with driver_errors("claiming a BerichtIdentificatie"), self._db.read() as conn:
                holder = identificatie_holder(conn, msg.sender, msg.message_type, msg.bericht_id)
            if holder is None:
                raise
            return holder

    def get(self, message_id: str) -> Message | None:
        """One message's metadata."""
        with driver_errors("reading a message"), self._db.read() as conn:
            row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
        return message_from_row(row) if row is not None else None

    def payload(self, message_id: str) -> bytes | None:
        """The stored raw bytes (None when purged or unknown)."""
        with driver_errors("reading a payload"), self._db.read() as conn:
            raw = conn.execute(
                select(PAYLOADS.c.raw).where(PAYLOADS.c.message_id == message_id)
            ).scalar()
        return bytes(raw) if raw is not None else None

    def history(self, message_id: str) -> list[Event]:
        """All events of a message, oldest first."""
        with driver_errors("reading a message history"), self._db.read() as conn:
            rows = conn.execute(
                select(EVENTS).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)
            ).all()
        return [event_from_row(r) for r in rows]

    def findings(self, message_id: str) -> list[dict[str, Any]]:
        """The findings recorded for a message (empty when none)."""
        with driver_errors("reading findings"), self._db.read() as conn:
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
        with driver_errors("listing messages"), self._db.read() as conn:
            rows = conn.execute(stmt.limit(max(q.limit, 0))).all()
        return [message_from_row(r) for r in rows]

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
        with driver_errors("moving a message"), self._db.write() as conn:
            if not compare_and_set(conn, self._db.dialect, moved, expected, lease):
                raise IllegalTransition(
                    f"message {moved.id} is no longer {expected}; not moved to {moved.state}"
                )
            conn.execute(insert(EVENTS).values(**event_values(event)))

    def record_findings(self, message_id: str, findings: Sequence[dict[str, Any]]) -> None:
        """Keep the validation findings of a message (replacing earlier ones)."""
        encoded = json.dumps(list(findings), ensure_ascii=False, default=str)
        with driver_errors("recording findings"), self._db.write() as conn:
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
        if self._db.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        with driver_errors("claiming due messages"), self._db.write() as conn:
            moves = [
                advance(
                    message_from_row(row),
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
            time = time_parameter(self._db.dialect)
            claims = [event_row(ev, time) for _, ev in moves]
            insert_rows(conn, self._db.dialect, EVENTS, EVENT_COLUMNS, claims)
        return [moved for moved, _ in moves]

    def expired_leases(self, now: dt.datetime) -> list[Message]:
        """``sending`` messages whose lease has run out (the worker died), oldest first."""
        stmt = (
            select(MESSAGES)
            .where(MESSAGES.c.state == State.SENDING.value, MESSAGES.c.lease_until < now)
            .order_by(MESSAGES.c.id)
        )
        with driver_errors("finding expired leases"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [message_from_row(r) for r in rows]

    def received_bytes(self, sender: str, since: dt.datetime) -> int:
        """Bytes of the messages ``sender`` sent that were stored at or after ``since``."""
        stmt = select(func.coalesce(func.sum(MESSAGES.c.size), 0)).where(
            MESSAGES.c.sender == sender,
            MESSAGES.c.direction == Direction.INBOUND.value,
            MESSAGES.c.replay_of.is_(None),
            MESSAGES.c.received_at >= since,
        )
        with driver_errors("summing received bytes"), self._db.read() as conn:
            return int(conn.execute(stmt).scalar() or 0)
