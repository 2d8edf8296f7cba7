"""Processing a message held for a mapping decision, once the operator has decided
(``gateway mappings decide``; :func:`gateway.translator.decide_mapping` drives it)."""

from __future__ import annotations

import asyncio
import datetime as dt

from gateway.clock import Clock
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.model import Message
from gateway.core.route import Party, PartyRegistry
from gateway.service.errors import OperatorRefusedError
from gateway.service.preparation import Preparation
from gateway.service.reprocessing import Reprocessing
from gateway.service.shared import SharedState
from gateway.service.sniffing import client_keys
from gateway.store.base import IntakeRecord, Store
from gateway.translator import Decided, Translator


class Decisions:
    """The mapping decisions use case (a :class:`gateway.translator.DecisionProcessing`)."""

    def __init__(
        self, shared: SharedState, preparation: Preparation, reprocessing: Reprocessing
    ) -> None:
        self.shared = shared
        self.preparation = preparation
        self.reprocessing = reprocessing

    @property
    def translator(self) -> Translator | None:
        """The translation step, None when no party needs one."""
        return self.shared.translator

    @property
    def store(self) -> Store:
        """The store the decided message is read from and written to."""
        return self.shared.store

    @property
    def registry(self) -> PartyRegistry:
        """The configured parties."""
        return self.shared.registry

    @property
    def clock(self) -> Clock:
        """The gateway's clock."""
        return self.shared.clock

    def today(self) -> dt.date:
        """The gateway's date (UTC)."""
        return self.shared.today()

    async def process_decided(self, message_id: str, decided: Decided) -> Message:
        """Process a message held for a mapping decision once the operator has decided.

        The same preparation as intake, translated with the decided pairs: the B and E rules
        run when the recipient is answered for, the retour goes back to the sender, and the
        register, the correlation, the findings and the translation (with the decided pairs
        in the ledger) are recorded; the message moves to ``queued``, ``held`` (recipient
        not ready) or ``rejected``. Under the client lock, as intake; ``OperatorRefusedError``
        when the message no longer waits for a decision.
        """
        msg, raw, sender = await self._decidable(message_id)
        async with self.shared.client_locks.hold(client_keys(raw)):
            # Read again under the lock: an operator may have cancelled it meanwhile.
            msg, raw, sender = await self._decidable(message_id)
            return await self.reprocessing.process_locked(msg, raw, sender, decided)

    async def preview_decided(self, message_id: str, decided: Decided) -> IntakeRecord:
        """What :meth:`process_decided` would record, without writing anything (a dry run)."""
        msg, raw, sender = await self._decidable(message_id)
        replay_of = await self.shared.db(self.shared.store.replay_of, msg.id)
        return await asyncio.to_thread(
            self.preparation.prepare, msg, raw, sender, decided.actor, replay_of, decided=decided
        )

    async def _decidable(self, message_id: str) -> tuple[Message, bytes, Party]:
        msg = await self.shared.db(self.shared.store.get, message_id)
        if msg is None or not waits_for_mapping_decision(msg):
            raise OperatorRefusedError(f"message {message_id} does not wait for a mapping decision")
        raw = await self.shared.db(self.shared.store.payload, message_id)
        sender = self.shared.registry.get(msg.sender)
        if raw is None or sender is None:
            raise OperatorRefusedError(
                f"message {message_id}: sender no longer configured or content purged"
            )
        return msg, raw, sender
