"""Steering deliveries: send a dead message again, hold or release a party, and keep a party's
waiting messages in line with its readiness."""

from __future__ import annotations

from gateway.core.errors import IllegalTransition
from gateway.core.model import Message, State
from gateway.core.pipeline import MESSAGE_HOLD, OPERATOR_HOLD, placement
from gateway.core.release_conversion import waits_for_release
from gateway.core.route import Party
from gateway.service.errors import NotFoundError, OperatorRefusedError
from gateway.service.shared import PAGE, SharedState
from gateway.store.base import MessageQuery
from gateway.translator import waits_for_decision


class Steering:
    """Operator and scheduler actions on the delivery of messages, all audited."""

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    async def retry(self, message_id: str, actor: str) -> Message:
        """Send a ``dead`` message again, or release a ``held`` one now."""
        msg = await self.shared.db(self.shared.store.get, message_id)
        if msg is None:
            raise NotFoundError(f"no message {message_id}")
        if msg.state not in (State.DEAD, State.HELD):
            raise OperatorRefusedError(
                f"message {message_id} is {msg.state.value}; only dead or held messages "
                "can be retried"
            )
        if waits_for_decision(msg):
            raise OperatorRefusedError(
                f"message {message_id} waits for a mapping decision; use 'gateway mappings decide'"
            )
        if waits_for_release(msg.reason):
            raise OperatorRefusedError(
                f"message {message_id} is held because its recipient's iJw release cannot take "
                "it; sent now it would go unconverted"
            )
        moved = await self.shared.move(msg, State.QUEUED, "retried by operator", actor)
        await self.shared.db(
            self.shared.store.record_audit,
            self.shared.clock.now(),
            actor,
            "retry",
            message_id,
            f"from {msg.state.value}",
        )
        return moved

    async def hold_party(self, party_id: str, actor: str, reason: str = OPERATOR_HOLD) -> int:
        """Hold all deliveries to a party until released; returns messages moved to held."""
        party = self._party(party_id)
        now = self.shared.clock.now()
        await self.shared.db(self.shared.store.set_party_hold, party.id, reason, now, actor)
        await self.shared.db(self.shared.store.record_audit, now, actor, "hold", party.id, reason)
        self.shared.operator_holds[party.id] = reason
        return await self.rebalance(party, actor)

    async def release_party(self, party_id: str, actor: str) -> int:
        """Lift an operator hold; returns messages moved back to the queue, in order."""
        party = self._party(party_id)
        now = self.shared.clock.now()
        await self.shared.db(self.shared.store.set_party_hold, party.id, None, now, actor)
        await self.shared.db(self.shared.store.record_audit, now, actor, "release", party.id, None)
        self.shared.operator_holds.pop(party.id, None)
        return await self.rebalance(party, actor)

    def _party(self, party_id: str) -> Party:
        party = self.shared.registry.get(party_id)
        if party is None:
            known = ", ".join(p.id for p in self.shared.registry)
            raise NotFoundError(f"no party {party_id!r} (configured: {known})")
        return party

    async def rebalance(self, party: Party, actor: str = "scheduler") -> int:
        """Make a party's waiting messages match its readiness: hold or release, in order."""
        state, reason = placement(party, self.shared.today(), self.shared.operator_holds)
        source = State.HELD if state is State.QUEUED else State.QUEUED
        moved = 0
        after: str | None = None
        while True:
            page = await self.shared.db(
                self.shared.store.query,
                MessageQuery(recipient=party.id, state=source, after_id=after, limit=PAGE),
            )
            for msg in page:
                if state is State.QUEUED and (msg.reason or "").startswith(MESSAGE_HOLD):
                    continue  # an operator held this one message; only they release it
                if state is State.QUEUED and waits_for_decision(msg):
                    continue  # only an operator's mapping decision releases it
                if state is State.QUEUED and waits_for_release(msg.reason):
                    continue  # its recipient's release cannot take it; readiness changes nothing
                try:
                    await self.shared.move(
                        msg,
                        state,
                        "released: " + reason if state is State.QUEUED else reason,
                        actor,
                    )
                    moved += 1
                except IllegalTransition:
                    continue
            if len(page) < PAGE:
                return moved
            after = page[-1].id
