"""Row mappers: messages, events and correlations between core objects and table rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Row,
)

from gateway.core.catalogue import ORIGINAL_TYPES
from gateway.core.correlate import Correlation
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.model import Direction, Event, Message, State
from gateway.store.dialect import TimeParameter
from gateway.store.tables import (
    CLAIM_LINES,
    CORRELATIONS,
    LEDGER,
    MESSAGES,
    REWRITES,
    TRANSLATIONS,
)

MESSAGE_COLUMNS = tuple(column.name for column in MESSAGES.columns)
EVENT_COLUMNS = ("message_id", "at", "from_state", "to_state", "reason", "actor")
CORRELATION_COLUMNS = tuple(column.name for column in CORRELATIONS.columns)
LEDGER_COLUMNS = tuple(column.name for column in LEDGER.columns)
CLAIM_LINE_COLUMNS = tuple(column.name for column in CLAIM_LINES.columns)
TRANSLATION_COLUMNS = tuple(column.name for column in TRANSLATIONS.columns)
REWRITE_COLUMNS = tuple(column.name for column in REWRITES.columns)


def correlation_values(message_id: str, correlation: Correlation) -> dict[str, Any]:
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


def claims_identificatie(msg: Message) -> bool:
    """True when ``msg``, stored now, holds its sender's BerichtIdentificatie for its type: an
    inbound original (or JW325) not rejected at intake. A rejected one holds nothing (the
    cross-message rules ignore it too), a replay is a deliberate copy, a retour repeats its
    original's id. Nor does one held for a mapping decision: it goes nowhere yet, and the
    rules that judge a reused Identificatie run once the operator has decided."""
    return (
        msg.direction is Direction.INBOUND
        and msg.bericht_id is not None
        and msg.message_type in ORIGINAL_TYPES
        and msg.state is not State.REJECTED
        and not waits_for_mapping_decision(msg)
    )


def message_row(msg: Message, time: TimeParameter) -> tuple[Any, ...]:
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
        1 if claims_identificatie(msg) else None,
    )


def event_row(ev: Event, time: TimeParameter) -> tuple[Any, ...]:
    """An event's row in :data:`EVENT_COLUMNS` order."""
    return (
        ev.message_id,
        time(ev.at),
        ev.from_state.value if ev.from_state is not None else None,
        ev.to_state.value,
        ev.reason,
        ev.actor,
    )


def correlation_row(message_id: str, correlation: Correlation) -> tuple[Any, ...]:
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


def message_from_row(row: Row[Any]) -> Message:
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


def event_from_row(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        message_id=m["message_id"],
        at=m["at"],
        from_state=State(m["from_state"]) if m["from_state"] is not None else None,
        to_state=State(m["to_state"]),
        reason=m["reason"],
        actor=m["actor"],
    )


def event_values(ev: Event) -> dict[str, Any]:
    return {
        "message_id": ev.message_id,
        "at": ev.at,
        "from_state": ev.from_state.value if ev.from_state is not None else None,
        "to_state": ev.to_state.value,
        "reason": ev.reason,
        "actor": ev.actor,
    }


def utc(value: Any) -> dt.datetime:
    """An aggregate of a time column (SQLite may hand back text) as an aware UTC datetime."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
