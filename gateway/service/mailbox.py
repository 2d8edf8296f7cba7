"""What a party may see and fetch: a message with its history, its mailbox, the XML of a
message waiting there, and its acknowledgement."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import IllegalTransition
from gateway.core.lifecycle import ACKNOWLEDGED, visible_to
from gateway.core.model import Direction, Event, Message, State
from gateway.core.route import Channel, Party
from gateway.service.errors import NotFoundError, OperatorRefusedError
from gateway.service.shared import SharedState
from gateway.store.base import MessageQuery


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a party (or operator) may see of a message."""

    message: Message
    history: list[Event]
    findings: list[dict[str, Any]]


class Mailbox:
    """A party's view of its messages (``party=None`` in :meth:`view`: the operator)."""

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    async def view(self, party: Party | None, message_id: str) -> MessageView:
        """A message with its history; ``party=None`` is the operator, who sees everything.

        A party sees only messages it sent or that are addressed to it; anything else is
        ``NotFoundError``, so ids of other parties' traffic reveal nothing.
        """
        msg = await self.shared.db(self.shared.store.get, message_id)
        if msg is None or (party is not None and not visible_to(msg, party.id)):
            raise NotFoundError(f"no message {message_id}")
        history = await self.shared.db(self.shared.store.history, message_id)
        findings = await self.shared.db(self.shared.store.findings, message_id)
        if party is not None and party.id != msg.sender:
            findings = []  # a recipient has no business with the sender's validation findings
        return MessageView(msg, history, findings)

    def _check_mailbox(self, party: Party) -> None:
        if party.channel is not Channel.MAILBOX:
            raise OperatorRefusedError(
                f"party {party.id} receives by {party.channel.value}, not by mailbox"
            )

    async def waiting(self, party: Party, after: str | None, limit: int) -> list[Message]:
        """Messages waiting for ``party`` to fetch, oldest first, after the cursor."""
        self._check_mailbox(party)
        return await self.shared.db(
            self.shared.store.query,
            MessageQuery(recipient=party.id, state=State.QUEUED, after_id=after, limit=limit),
        )

    async def _mailbox_message(self, party: Party, message_id: str) -> Message:
        self._check_mailbox(party)
        msg = await self.shared.db(self.shared.store.get, message_id)
        visible = (State.QUEUED, State.SENDING, State.DELIVERED)
        if msg is None or msg.recipient != party.id or msg.state not in visible:
            raise NotFoundError(f"no message {message_id} in the mailbox of {party.id}")
        return msg

    async def payload(self, party: Party, message_id: str) -> bytes:
        """The XML of a message in ``party``'s mailbox."""
        await self._mailbox_message(party, message_id)
        # The translated bytes when the message was translated for this party.
        raw = await self.shared.db(self.shared.store.delivery_payload, message_id)
        if raw is None:
            raise NotFoundError(f"the content of message {message_id} has been purged")
        await self.shared.db(
            self.shared.store.record_fetch, message_id, self.shared.clock.now(), f"party:{party.id}"
        )
        return raw

    async def ack(self, party: Party, message_id: str) -> Message:
        """``party`` confirms it has the message: it becomes ``delivered`` (idempotent)."""
        msg = await self._mailbox_message(party, message_id)
        actor = f"party:{party.id}"
        # A queued message's last move made it deliverable; the delivery latency counts from it.
        queued_at = msg.updated_at
        try:
            if msg.state is State.QUEUED:
                msg = await self.shared.move(
                    msg,
                    State.SENDING,
                    "acknowledgement received",
                    actor,
                    lease_until=self.shared.clock.now() + self.shared.lease,
                )
            if msg.state is State.SENDING:
                msg = await self.shared.move(msg, State.DELIVERED, ACKNOWLEDGED, actor)
                self.shared.metrics.delivered(party.id, queued_at, self.shared.clock.now())
        except IllegalTransition:
            # A concurrent ack won; report the state it left.
            current = await self.shared.db(self.shared.store.get, message_id)
            assert current is not None
            return current
        return msg


def message_summary(msg: Message) -> dict[str, Any]:
    """The JSON shape of a message's metadata (never its content)."""
    data = dataclasses.asdict(msg)
    for key, value in data.items():
        if isinstance(value, dt.datetime):
            data[key] = value.isoformat()
        elif isinstance(value, State | Direction):
            data[key] = value.value
    return data


def event_summary(event: Event) -> dict[str, Any]:
    """The JSON shape of one state move."""
    return {
        "at": event.at.isoformat(),
        "from": event.from_state.value if event.from_state else None,
        "to": event.to_state.value,
        "reason": event.reason,
        "actor": event.actor,
    }
