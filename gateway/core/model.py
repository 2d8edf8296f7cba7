"""The gateway's domain records: stored messages, their lifecycle events and states."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a stored message is in its life (see ``core.lifecycle`` for the allowed moves)."""

    RECEIVED = "received"
    REJECTED = "rejected"
    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Direction(StrEnum):
    """Whether a stored message came in from a party or was made by the gateway itself."""

    INBOUND = "inbound"
    GENERATED = "generated"


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message's metadata; the raw bytes live beside it in the store.

    ``sender``/``recipient`` are party ids from the registry; ``recipient`` is None until
    routing decides it (or when routing failed and the message was rejected).
    """

    id: str
    state: State
    sender: str
    recipient: str | None
    message_type: str | None
    bericht_id: str | None
    content_hash: str
    size: int
    received_at: dt.datetime
    updated_at: dt.datetime
    direction: Direction = Direction.INBOUND
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    lease_until: dt.datetime | None = None
    reason: str | None = None
    in_reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded state move: written in the same transaction as the move itself."""

    message_id: str
    at: dt.datetime
    from_state: State | None
    to_state: State
    reason: str
    actor: str
