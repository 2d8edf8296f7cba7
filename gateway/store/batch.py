"""Group commit: a batch of received messages and state moves written in one transaction.

Intake hands the writer whole batches (see :meth:`BatchWriter.write_batch`); a batch costs a fixed
number of driver-level statements, not some per message.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.engine import Connection

from gateway.core.errors import StoreError
from gateway.core.model import Event, Message, State
from gateway.store.base import (
    BatchResult,
    IntakeRecord,
    KeyKind,
    Move,
    Saved,
)
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import columns_of, insert_rows, marks, time_parameter, unnest
from gateway.store.exchanges import link_correlations, lock_exchanges
from gateway.store.ledger import insert_translations
from gateway.store.messages import RECEIVED_REASON, compare_and_set, identificatie_holder
from gateway.store.register import write_entries
from gateway.store.rows import (
    CORRELATION_COLUMNS,
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    claims_identificatie,
    correlation_row,
    event_row,
    message_from_row,
    message_row,
)
from gateway.store.search import (
    extract_keys,
    key_rows,
    rule_keys,
)
from gateway.store.tables import (
    CORRELATIONS,
    EVENTS,
    FINDINGS,
    MESSAGE_KEYS,
    MESSAGES,
    PAYLOADS,
)

MESSAGE_ROWS_PER_STATEMENT = 200
"""Rows per multi-row INSERT of messages (17 parameters each; far below every driver's limit)."""


@functools.lru_cache(maxsize=MESSAGE_ROWS_PER_STATEMENT)
def insert_new_messages_sql(dialect: str, count: int) -> str:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` into messages: from ``VALUES (...) x
    count`` on SQLite, from :func:`unnest` (any count) on PostgreSQL."""
    columns = ", ".join(MESSAGE_COLUMNS)
    if dialect == "sqlite":
        source = f"VALUES {', '.join([marks(dialect, len(MESSAGE_COLUMNS))] * count)}"
    else:
        source = unnest(MESSAGES, MESSAGE_COLUMNS)
    return f"INSERT INTO {MESSAGES.name} ({columns}) {source} ON CONFLICT DO NOTHING RETURNING id"


def insert_new_messages(
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
        columns = columns_of(rows, MESSAGES.name, MESSAGE_COLUMNS)
        result = conn.exec_driver_sql(insert_new_messages_sql(dialect, 0), columns)
        return {str(row[0]) for row in result}
    created: set[str] = set()
    for first in range(0, len(rows), MESSAGE_ROWS_PER_STATEMENT):
        chunk = rows[first : first + MESSAGE_ROWS_PER_STATEMENT]
        parameters = tuple(value for row in chunk for value in row)
        result = conn.exec_driver_sql(insert_new_messages_sql(dialect, len(chunk)), parameters)
        created.update(str(row[0]) for row in result)
    return created


class BatchWriter(Repository):
    """Writes intake's batches: received messages with everything they carry, and moves."""

    def new_message_id(self, at: dt.datetime) -> str:
        """A fresh message id, sortable by ``at``, for a message that intake is preparing."""
        return self._db.new_id(at)

    def write_batch(
        self, records: Sequence[IntakeRecord], moves: Sequence[Move] = ()
    ) -> BatchResult:
        """Store received messages and make state moves in one transaction (see Store).

        A batch costs a fixed number of statements, not some per message: one multi-row
        ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for the message rows (the
        idempotency index decides which are new, also between two records of one batch and
        against another process), then one executemany (on PostgreSQL one statement) each for
        payloads, events, findings, keys, correlations, register entries, translations, rewrites
        and ledger pairs of the new ones, all at driver level (see ``insert_rows``); on
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
            r.message.id: extract_keys(r.raw, self._db.pseudonyms) + rule_keys(r.findings)
            for r in (*records, *retours)
        }
        with driver_errors("saving received messages"), self._db.write() as conn:
            saved = self._insert_intake(conn, records, retours, keys) if records else []
            moved = [False] * len(moves)
            # In id order, so two processes moving the same rows lock them in the same order.
            for index in sorted(range(len(moves)), key=lambda i: moves[i].moved.id):
                move = moves[index]
                moved[index] = compare_and_set(
                    conn, self._db.dialect, move.moved, move.expected, move.lease
                )
            time = time_parameter(self._db.dialect)
            events = [
                event_row(m.event, time) for m, done in zip(moves, moved, strict=True) if done
            ]
            insert_rows(conn, self._db.dialect, EVENTS, EVENT_COLUMNS, events)
        return BatchResult(saved, moved)

    def _insert_intake(
        self,
        conn: Connection,
        records: Sequence[IntakeRecord],
        retours: Sequence[IntakeRecord],
        keys: dict[str, list[tuple[KeyKind, str]]],
    ) -> list[Saved]:
        dialect = self._db.dialect
        time = time_parameter(dialect)
        created = insert_new_messages(
            conn, dialect, [message_row(r.message, time) for r in records]
        )
        answers = [r for r in retours if r.message.in_reply_to in created]
        if answers:
            rows = [message_row(r.message, time) for r in answers]
            created |= insert_new_messages(conn, dialect, rows)
        stored = [r for r in (*records, *answers) if r.message.id in created]
        insert_rows(
            conn, dialect, PAYLOADS, ("message_id", "raw"), [(r.message.id, r.raw) for r in stored]
        )
        events = [event_row(ev, time) for r in stored for ev in self._intake_events(r)]
        insert_rows(conn, dialect, EVENTS, EVENT_COLUMNS, events)
        findings = [
            (r.message.id, json.dumps(list(r.findings), ensure_ascii=False, default=str))
            for r in stored
            if r.findings
        ]
        insert_rows(conn, dialect, FINDINGS, ("message_id", "findings_json"), findings)
        key_values = [
            (row["kind"], row["value"], row["message_id"])
            for r in stored
            for row in key_rows(r.message.id, keys[r.message.id])
        ]
        insert_rows(conn, dialect, MESSAGE_KEYS, ("kind", "value", "message_id"), key_values)
        correlated = [(r.message.id, r.correlation) for r in stored if r.correlation is not None]
        linked = 0
        if correlated:
            exchanges = [c.key.bericht_id for _, c in correlated]
            lock_exchanges(conn, exchanges)
            correlations = [correlation_row(*pair) for pair in correlated]
            insert_rows(conn, dialect, CORRELATIONS, CORRELATION_COLUMNS, correlations)
            linked = link_correlations(conn, exchanges)
        registered = [(r.message.id, r.register) for r in stored if r.register is not None]
        if registered:
            # Only new rows here, and only an exchange linked just now can need settling: one
            # linked before had its retour's verdict applied when it was linked.
            write_entries(
                conn,
                registered,
                pseudonyms=self._db.pseudonyms,
                fresh=True,
                correlated=[mid for mid, _ in correlated] if linked else [],
            )
        translated = [
            (r.message.id, r.translation, r.message.updated_at)
            for r in stored
            if r.translation is not None
        ]
        insert_translations(conn, dialect, translated)
        return [
            Saved(r.message, created=True)
            if r.message.id in created
            else self._not_stored(conn, r.message)
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
    def _not_stored(conn: Connection, msg: Message) -> Saved:
        """Why a unique index let ``msg`` not in: the stored message it re-submits (same
        idempotency key), or the one that holds its BerichtIdentificatie."""
        # The same expression as the unique index, so the index answers.
        row = conn.execute(
            select(MESSAGES).where(
                MESSAGES.c.sender == msg.sender,
                func.coalesce(MESSAGES.c.bericht_id, "") == (msg.bericht_id or ""),
                MESSAGES.c.content_hash == msg.content_hash,
                MESSAGES.c.replay_of.is_(None),
            )
        ).first()
        if row is not None:
            return Saved(message_from_row(row), created=False)
        holder = (
            identificatie_holder(conn, msg.sender, msg.message_type, msg.bericht_id)
            if claims_identificatie(msg)
            else None
        )
        if holder is None:
            raise StoreError(f"message id {msg.id} is already in use")
        return Saved(holder, created=False, identificatie_taken=True)
