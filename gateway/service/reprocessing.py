"""Processing a stored message again: one left ``received`` by a crash or a failed step, a
replayed copy, or one held for a mapping decision once the operator has decided.

The same preparation as intake; only the writing differs, because the message row exists
already: findings, the generated retour and the move are recorded in turn, each of them
idempotent, so a crash in between is repaired by the next pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from gateway.core.errors import IllegalTransition
from gateway.core.model import Direction, Message, State
from gateway.core.pipeline import placement
from gateway.core.route import Party
from gateway.logs import get_logger
from gateway.service.preparation import Preparation
from gateway.service.shared import PAGE, SharedState
from gateway.service.sniffing import client_keys
from gateway.store.base import IntakeRecord, MessageQuery, Move
from gateway.translator import Decided

log = get_logger("gateway.service")

# A message stored ``received`` (its prepare worker died, or processing failed) is taken up by
# the reprocessing pass once it is this old (so a step that just failed is not retried in a
# tight loop); with STUCK_SCAN_SECONDS between passes it waits at most their sum, under the
# minute the operator guide promises.
STUCK_AFTER = dt.timedelta(seconds=30)
STUCK_SCAN_SECONDS = 20.0


class Reprocessing:
    """Prepares and records messages that are stored already."""

    def __init__(self, shared: SharedState, preparation: Preparation) -> None:
        self.shared = shared
        self.preparation = preparation

    async def process(self, msg: Message, raw: bytes, sender: Party) -> Message:
        """Validate, decide, answer and move one stored ``received`` message (housekeeping).

        The same preparation as intake; only the writing differs, because the message row
        exists already: findings, the generated retour and the move are recorded in turn, each
        of them idempotent, so a crash in between is repaired by the next housekeeping pass.
        """
        async with self.shared.client_locks.hold(client_keys(raw)):
            return await self.process_locked(msg, raw, sender)

    async def process_stuck(self, older_than: dt.timedelta = STUCK_AFTER) -> int:
        """Process messages left in ``received`` by a crash or a failed processing step."""
        cutoff = self.shared.clock.now() - older_than
        stuck = await self.shared.db(
            self.shared.store.query, MessageQuery(state=State.RECEIVED, limit=PAGE)
        )
        done = 0
        for msg in stuck:
            if msg.received_at > cutoff:
                continue
            try:
                await self._process_again(msg)
                done += 1
            except IllegalTransition:
                continue  # another worker got there first
            except Exception:
                log.exception("reprocessing_failed", message_id=msg.id, party=msg.sender)
        return done

    async def _process_again(self, msg: Message) -> None:
        if msg.direction is Direction.GENERATED:
            recipient = self.shared.registry.get(msg.recipient or "")
            if recipient is None:
                await self.shared.move(
                    msg, State.REJECTED, "recipient no longer configured", "pipeline"
                )
            else:
                await self._place(msg, recipient, "retour")
            return
        sender = self.shared.registry.get(msg.sender)
        raw = await self.shared.db(self.shared.store.payload, msg.id)
        if sender is None or raw is None:
            await self.shared.move(
                msg, State.REJECTED, "sender no longer configured or payload gone", "pipeline"
            )
            return
        await self.process(msg, raw, sender)

    async def process_locked(
        self, msg: Message, raw: bytes, sender: Party, decided: Decided | None = None
    ) -> Message:
        """Prepare and record ``msg`` again, under its client locks held by the caller; with
        ``decided``, translated with the operator's decided pairs."""
        replay_of = await self.shared.db(self.shared.store.replay_of, msg.id)
        actor = "pipeline" if decided is None else decided.actor
        record = await asyncio.to_thread(
            self.preparation.prepare, msg, raw, sender, actor, replay_of, decided=decided
        )
        return await self.write(msg, record, sender, replay_of, judged_again=decided is not None)

    async def write(
        self,
        msg: Message,
        record: IntakeRecord,
        sender: Party,
        replay_of: str | None,
        *,
        judged_again: bool,
    ) -> Message:
        """Record what preparing the stored ``msg`` again decided, step by step (under its
        client locks, held by the caller). ``judged_again``: a held message judged anew (a
        mapping decision, or the answer without one); its findings replace intake's, and
        going on it must claim its Identificatie."""
        actor = record.moves[0].actor
        if judged_again and record.message.state is not State.REJECTED:
            # Held for a decision it held no Identificatie; going on, it must (never two).
            holder = await self.shared.db(self.shared.store.claim_identificatie, msg.id)
            if holder is not None:
                return await self.shared.move(
                    msg,
                    State.REJECTED,
                    f"BerichtIdentificatie {msg.bericht_id} already used by message {holder.id}",
                    actor,
                )
        if record.findings or judged_again:
            # Replacing what intake found: a decided message is judged on the translation.
            await self.shared.db(self.shared.store.record_findings, msg.id, list(record.findings))
        if record.retour is not None:
            await self.shared.commits.save(record.retour)
        if record.translation is not None:
            await self.shared.db(self.shared.store.save_translation, msg.id, record.translation)
        if record.register is not None:
            # Before the move: once the message leaves "received" nobody writes them again.
            await self.shared.db(
                self.shared.store.record_register, msg.id, record.register, replay_of
            )
        (event,) = record.moves
        await self.shared.commits.move(Move(record.message, event, msg.state))
        log.info(
            "message_moved",
            message_id=msg.id,
            party=record.message.recipient or record.message.sender,
            from_state=msg.state.value,
            state=record.message.state.value,
            reason=record.message.reason,
            actor=event.actor,
        )
        if record.message.state is State.REJECTED:
            self.shared.metrics.inc("rejected", sender.id)
        if record.correlation is not None:
            await self.shared.db(self.shared.store.record_correlation, msg.id, record.correlation)
        return record.message

    async def _place(self, msg: Message, recipient: Party, what: str) -> Message:
        state, reason = placement(recipient, self.shared.today(), self.shared.operator_holds)
        return await self.shared.move(
            msg,
            state,
            f"{what} {reason}" if state is State.QUEUED else reason,
            "pipeline",
            recipient=recipient.id,
        )
