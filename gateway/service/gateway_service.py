"""The gateway's use cases, composed: shared by the HTTP server, the inbox watcher, delivery,
housekeeping and the CLI.

:class:`GatewayService` holds the shared state (:class:`SharedState`: store, parties, clock,
operator holds, metrics, group commit) and one object per concern: :attr:`intake`,
:attr:`mailbox`, :attr:`steering`, :attr:`decisions` and :attr:`reprocessing`, which share
one :attr:`preparation`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from gateway.clock import Clock
from gateway.core.held_answers import DecisionPolicies
from gateway.core.lists import ExternalLists
from gateway.core.route import PartyRegistry
from gateway.core.schemaset import SchemaSet
from gateway.metrics import (
    Metrics,
)
from gateway.service.client_locks import NodeLocks
from gateway.service.decisions import Decisions
from gateway.service.held_answers import HeldAnswers
from gateway.service.intake import Intake
from gateway.service.mailbox import Mailbox
from gateway.service.preparation import Preparation
from gateway.service.reprocessing import Reprocessing
from gateway.service.shared import HistoryFactory, SharedState
from gateway.service.steering import Steering
from gateway.service.volume import VolumeLimits
from gateway.store.base import Store
from gateway.translator import Translator


class GatewayService(SharedState):
    """Receive, process, show and operate on messages: the shared state and its use cases."""

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
        volume: VolumeLimits | None = None,
        free_disk: Callable[[], int] | None = None,
        node_locks: NodeLocks | None = None,
    ) -> None:
        super().__init__(
            store=store,
            registry=registry,
            schemas=schemas,
            clock=clock,
            max_message_bytes=max_message_bytes,
            lease=lease,
            metrics=metrics,
            translator=translator,
            history=history,
            lists=lists,
            decision_policies=decision_policies,
            node_locks=node_locks,
        )
        self.preparation = Preparation(self)
        self.intake = Intake(self, self.preparation, volume, free_disk)
        self.reprocessing = Reprocessing(self, self.preparation)
        self.mailbox = Mailbox(self)
        self.steering = Steering(self)
        self.decisions = Decisions(self, self.preparation, self.reprocessing)
        self.held_answers = HeldAnswers(self, self.preparation, self.reprocessing)

    async def healthy(self) -> bool:
        """True when the store answers (any driver error counts as unhealthy)."""
        try:
            return await self.db(self.store.healthy)
        except Exception:
            return False

    async def render_metrics(self) -> bytes:
        """Prometheus text (:mod:`gateway.metrics`); the store figures are read now."""
        return await asyncio.to_thread(self.metrics.render)
