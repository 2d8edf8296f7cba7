"""Answering originals held for a mapping decision once nobody decided in time.

The housekeeping job (:meth:`HeldAnswers.run`, gateway/daemon/housekeeping.py) looks at every
original held with "needs mapping decision" whose recipient the BVO answers for; once the
decision wait of its generation pair is over (:mod:`gateway.core.held_answers`, working days
before its retour deadline) it answers the sender with the S329 retour on the recipient's
behalf and rejects the original. An operator's cancel of such an original answers it the same
way (:meth:`HeldAnswers.answer`). The operator is told: a ``held_original_answered`` log event
(ids and codes only), an audit entry, and the original's state and reason in ``gateway show``.

Exactly one retour: the original is read again under its client locks and must still wait for
a decision; a retour already stored for it (a crash after writing it, before the move) is not
made again, only the move is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools

from gateway.core.deadlines import dutch_day
from gateway.core.held_answers import UNACCEPTED_PRODUCT_RETOURCODE, wait_is_over
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.model import Message
from gateway.logs import get_logger
from gateway.service.preparation import HeldAnswerError, Preparation
from gateway.service.reprocessing import Reprocessing
from gateway.service.retour_deadlines import retour_deadlines
from gateway.service.shared import SharedState
from gateway.service.sniffing import client_keys

log = get_logger("gateway.held_answers")

ACTOR = "decision-wait"
"""The actor of the housekeeping job's answers in the history and the audit trail."""
AUDIT_ACTION = "answer-held"


class HeldAnswers:
    """The decision-wait use case: answer held originals the BVO answers for."""

    def __init__(
        self, shared: SharedState, preparation: Preparation, reprocessing: Reprocessing
    ) -> None:
        self.shared = shared
        self.preparation = preparation
        self.reprocessing = reprocessing

    async def run(self) -> int:
        """The housekeeping job: answer every held original whose decision wait is over;
        returns how many were answered."""
        answered = 0
        for msg in await self.due():
            try:
                done = await self.answer(msg.id, actor=ACTOR, why="no mapping decision in time")
            except HeldAnswerError as exc:
                log.warning("held_original_not_answered", message_id=msg.id, error=str(exc))
                continue
            answered += done is not None
        return answered

    async def due(self) -> list[Message]:
        """The originals held for a decision whose recipient the BVO answers for and whose
        decision wait is over on the gateway's Dutch day, oldest first."""
        now = self.shared.clock.now()
        waiting = await asyncio.to_thread(
            functools.partial(
                retour_deadlines, self.shared.store, now, policies=self.shared.decision_policies
            )
        )
        return [
            d.message
            for d in waiting
            if wait_is_over(d.answer_by, dutch_day(now)) and self._answered_for(d.message)
        ]

    def _answered_for(self, msg: Message) -> bool:
        recipient = self.shared.registry.get(msg.recipient or "")
        return recipient is not None and recipient.answered_by is not None

    async def answer(self, message_id: str, *, actor: str, why: str) -> Message | None:
        """Answer one original held for a mapping decision with the S329 retour on its
        recipient's behalf and reject it; None when it no longer waits for a decision (decided
        or answered meanwhile). Raises :class:`HeldAnswerError` when the BVO does not answer
        for its recipient or its content is gone."""
        msg = await self.shared.db(self.shared.store.get, message_id)
        raw = await self.shared.db(self.shared.store.payload, message_id)
        if msg is None or not waits_for_mapping_decision(msg):
            return None
        sender = self.shared.registry.get(msg.sender)
        if raw is None or sender is None:
            raise HeldAnswerError(
                f"message {message_id}: sender no longer configured or content purged"
            )
        async with self.shared.client_locks.hold(client_keys(raw)):
            # Read again under the lock: an operator may have decided meanwhile.
            msg = await self.shared.db(self.shared.store.get, message_id)
            stored = await self.shared.db(self.shared.store.translation_of, message_id)
            if msg is None or stored is None or not waits_for_mapping_decision(msg):
                return None
            unaccepted = [(u.path, u.reason) for u in stored.undecided] or [("/Bericht", why)]
            record = await asyncio.to_thread(
                self.preparation.prepare_answer,
                msg,
                raw,
                sender,
                unaccepted,
                actor=actor,
                why=why,
            )
            if await self.shared.db(self.shared.store.linked_message, message_id) is not None:
                # Its retour was stored before a crash: never a second one.
                record = dataclasses.replace(record, retour=None)
            replay_of = await self.shared.db(self.shared.store.replay_of, message_id)
            moved = await self.reprocessing.write(msg, record, sender, replay_of, judged_again=True)
        await self.shared.db(
            self.shared.store.record_audit,
            self.shared.clock.now(),
            actor,
            AUDIT_ACTION,
            message_id,
            moved.reason,
        )
        log.warning(
            "held_original_answered",
            message_id=message_id,
            message_type=msg.message_type,
            party=msg.recipient,
            sender=msg.sender,
            retourcode=UNACCEPTED_PRODUCT_RETOURCODE,
            products=len(unaccepted),
            actor=actor,
        )
        return moved
