"""Per-party queues: what waits for each recipient, party holds, last deliveries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.core.lifecycle import FETCHED
from gateway.core.model import Event, State
from gateway.store.database import Repository, driver_errors
from gateway.store.rows import event_values
from gateway.store.tables import (
    EVENTS,
    MESSAGES,
    PARTY_HOLDS,
)


class Mailbox(Repository):
    """The queue overview per party and the operator's holds on parties."""

    def counts_by_party(self) -> dict[tuple[str, str], int]:
        """(recipient, state) → count over the messages that have a recipient."""
        stmt = (
            select(MESSAGES.c.recipient, MESSAGES.c.state, func.count())
            .where(MESSAGES.c.recipient.is_not(None))
            .group_by(MESSAGES.c.recipient, MESSAGES.c.state)
        )
        with driver_errors("counting messages"), self._db.read() as conn:
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
        with driver_errors("finding the oldest waiting messages"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return {row[0]: row[1] for row in rows}

    def party_holds(self) -> dict[str, str]:
        """Parties an operator has put on hold: party id → reason (persists across restarts)."""
        with driver_errors("reading party holds"), self._db.read() as conn:
            rows = conn.execute(select(PARTY_HOLDS.c.party, PARTY_HOLDS.c.reason)).all()
        return {row[0]: row[1] for row in rows}

    def set_party_hold(self, party: str, reason: str | None, at: dt.datetime, actor: str) -> None:
        """Put ``party`` on hold with ``reason``, or release it when ``reason`` is None.

        Idempotent: holding a held party replaces the reason; releasing a free one does nothing.
        """
        with driver_errors("changing a party hold"), self._db.write() as conn:
            if reason is None:
                conn.execute(delete(PARTY_HOLDS).where(PARTY_HOLDS.c.party == party))
                return
            values = {"party": party, "reason": reason, "held_at": at, "actor": actor}
            upsert = (
                pg_insert(PARTY_HOLDS)
                if self._db.dialect == "postgresql"
                else sqlite_insert(PARTY_HOLDS)
            )
            conn.execute(
                upsert.values(**values).on_conflict_do_update(
                    index_elements=[PARTY_HOLDS.c.party],
                    set_={"reason": reason, "held_at": at, "actor": actor},
                )
            )

    def record_fetch(self, message_id: str, at: dt.datetime, actor: str) -> bool:
        """Note in the message's history that ``actor`` fetched it (``fetched``, no state move).

        True when noted. A fetch right after another one is not noted again: repeated GETs
        of one message cannot grow its history without bound.
        """
        with driver_errors("recording a fetch"), self._db.write() as conn:
            state = conn.execute(
                select(MESSAGES.c.state).where(MESSAGES.c.id == message_id)
            ).scalar()
            if state is None:
                return False
            last = conn.execute(
                select(EVENTS.c.reason, EVENTS.c.actor)
                .where(EVENTS.c.message_id == message_id)
                .order_by(EVENTS.c.id.desc())
                .limit(1)
            ).first()
            if last is not None and tuple(last) == (FETCHED, actor):
                return False
            here = State(state)
            note = Event(message_id, at, here, here, FETCHED, actor)
            conn.execute(insert(EVENTS).values(**event_values(note)))
        return True

    def last_delivered(self) -> dict[str, dt.datetime]:
        """recipient → when its most recent delivered message was delivered."""
        stmt = (
            select(MESSAGES.c.recipient, func.max(MESSAGES.c.updated_at))
            .where(MESSAGES.c.state == State.DELIVERED.value, MESSAGES.c.recipient.is_not(None))
            .group_by(MESSAGES.c.recipient)
        )
        with driver_errors("reading the last deliveries"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return {row[0]: row[1] for row in rows}
