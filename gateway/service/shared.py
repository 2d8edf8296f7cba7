"""What the use cases share: the store, the parties, the clock, the operator holds, the metrics,
the group commit and the client locks, and the one way a message moves (:meth:`SharedState.move`).

Every later move goes through :meth:`SharedState.move`, so ``core.lifecycle.advance`` decides
what is allowed and the store records state and event together; nothing else changes a
message's state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from gateway.clock import Clock
from gateway.core.document import MessageDocument
from gateway.core.dossier import History
from gateway.core.held_answers import DecisionPolicies
from gateway.core.lifecycle import advance, return_unattempted
from gateway.core.lists import ExternalLists
from gateway.core.model import Message, State
from gateway.core.route import PartyRegistry
from gateway.core.schemaset import SchemaSet
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.service.client_locks import ClientLocks, NodeLocks
from gateway.service.group_commit import GroupCommit
from gateway.store.base import BatchResult, IntakeRecord, Move, Store
from gateway.translator import Translator

log = get_logger("gateway.service")

T = TypeVar("T")

PAGE = 500
"""Messages read per query when a use case walks a whole state."""

HistoryFactory = Callable[[Collection[str], Collection[str], MessageDocument | None], History]
"""Builds the dossier history for one message from (its plain BSNs, message ids to leave out,
the message read: what its rules will ask is then read at once)."""


class SharedState:
    """The parts every use case works with, built once by :class:`GatewayService`."""

    def __init__(
        self,
        *,
        store: Store,
        registry: PartyRegistry,
        schemas: SchemaSet,
        clock: Clock,
        max_message_bytes: int,
        lease: dt.timedelta = dt.timedelta(seconds=120),
        metrics: Metrics | None = None,
        translator: Translator | None = None,
        history: HistoryFactory | None = None,
        lists: ExternalLists | None = None,
        decision_policies: DecisionPolicies | None = None,
        node_locks: NodeLocks | None = None,
    ) -> None:
        self.store = store
        self.history = history
        self.lists = lists
        self.decision_policies = decision_policies or DecisionPolicies()
        self.client_locks = ClientLocks(node_locks)
        self.translator = translator
        self.registry = registry
        self.schemas = schemas
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.operator_holds: dict[str, str] = {}
        self.commits = GroupCommit(self._write_batch)

    def _write_batch(self, records: Sequence[IntakeRecord], moves: Sequence[Move]) -> BatchResult:
        # Looked up at each commit, so a store method replaced at run time (tests) is used.
        return self.store.write_batch(records, moves)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous store call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def move(
        self,
        msg: Message,
        to: State,
        reason: str,
        actor: str,
        *,
        attempted: bool = True,
        **changes: object,
    ) -> Message:
        """Move a message through the lifecycle and record it (compare-and-set in the store).

        ``attempted=False`` returns an unattempted claim without counting an attempt.
        """
        now = self.clock.now()
        if attempted:
            moved, event = advance(msg, to, reason, actor, now, **changes)
        elif to is State.QUEUED and not changes:
            moved, event = return_unattempted(msg, reason, actor, now)
        else:
            raise ValueError("only a claim returned to queued, unchanged, can be unattempted")
        # Out of ``sending`` only while the row still carries this claim (see Move.lease).
        claim = msg.lease_until if msg.state is State.SENDING else None
        await self.commits.move(Move(moved, event, msg.state, claim))
        log.info(
            "message_moved",
            message_id=msg.id,
            party=moved.recipient or moved.sender,
            from_state=msg.state.value,
            state=to.value,
            reason=reason,
            actor=actor,
        )
        return moved

    def today(self) -> dt.date:
        """The gateway's date (UTC) for readiness and rule checks."""
        return self.clock.now().date()

    @property
    def holds(self) -> dict[str, str]:
        """Parties on operator hold, as last read from the store."""
        return dict(self.operator_holds)

    async def refresh_holds(self) -> dict[str, str]:
        """Re-read operator holds (another process, e.g. the CLI, may have changed them)."""
        self.operator_holds = await self.db(self.store.party_holds)
        return self.holds
