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
from typing import Any, Protocol

from gateway.core.model import Event, Message, State


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


@dataclass(frozen=True, slots=True)
class Saved:
    """Result of :meth:`Store.save_received`: the message and whether it was new."""

    message: Message
    created: bool


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


class Store(Protocol):
    """Durable message store. Implementations raise ``StoreError`` for driver failures."""

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start."""

    def save_received(self, new: NewMessage) -> Saved:
        """Durably store raw bytes and metadata in state ``received`` (idempotent).

        The same (sender, bericht_id, content_hash) returns the existing message with
        ``created=False``. Returns only after the transaction is committed.
        """
        ...

    def get(self, message_id: str) -> Message | None:
        """One message's metadata."""
        ...

    def payload(self, message_id: str) -> bytes | None:
        """The stored raw bytes (None when purged)."""
        ...

    def apply_transition(self, moved: Message, event: Event, expected: State) -> None:
        """Write ``moved`` and ``event`` in one transaction if the row is still ``expected``.

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

    def claim_due(self, now: dt.datetime, lease_until: dt.datetime, limit: int,
                  recipients: Sequence[str] | None = None) -> list[Message]:
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

    def record_audit(self, at: dt.datetime, actor: str, action: str, target: str,
                     reason: str | None) -> None:
        """Append an operator action to the audit trail."""
        ...

    def party_holds(self) -> dict[str, str]:
        """Parties an operator has put on hold: party id → reason (persists across restarts)."""
        ...

    def set_party_hold(self, party: str, reason: str | None, at: dt.datetime,
                       actor: str) -> None:
        """Put ``party`` on hold with ``reason``, or release it when ``reason`` is None.

        Idempotent; callers record the operator action with :meth:`record_audit`.
        """

    def healthy(self) -> bool:
        """True when the store answers a trivial query."""
        ...
