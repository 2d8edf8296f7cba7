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
import functools
from collections.abc import Callable

from gateway.clock import Clock
from gateway.core.lists import ExternalLists
from gateway.core.route import PartyRegistry
from gateway.core.schemaset import SchemaSet
from gateway.metrics import (
    Metrics,
    render_overdue_answers,
    render_overdue_retours,
    render_write_batches,
)
from gateway.service.decisions import Decisions
from gateway.service.intake import Intake
from gateway.service.mailbox import Mailbox
from gateway.service.preparation import Preparation
from gateway.service.reprocessing import Reprocessing
from gateway.service.retour_deadlines import overdue_by_party, request_deadlines, retour_deadlines
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
        volume: VolumeLimits | None = None,
        free_disk: Callable[[], int] | None = None,
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
        )
        self.preparation = Preparation(self)
        self.intake = Intake(self, self.preparation, volume, free_disk)
        self.reprocessing = Reprocessing(self, self.preparation)
        self.mailbox = Mailbox(self)
        self.steering = Steering(self)
        self.decisions = Decisions(self, self.preparation, self.reprocessing)

    async def healthy(self) -> bool:
        """True when the store answers (any driver error counts as unhealthy)."""
        try:
            return await self.db(self.store.healthy)
        except Exception:
            return False

    async def render_metrics(self) -> str:
        """Prometheus text: counters plus queue figures read from the store now."""
        counts = await self.db(self.store.counts_by_party)
        oldest = await self.db(self.store.oldest_waiting)
        text = self.metrics.render(counts, oldest, self.clock.now())
        deadlines = await asyncio.to_thread(
            functools.partial(retour_deadlines, self.store, self.clock.now(), overdue_only=True)
        )
        overdue = {p.id: 0 for p in self.registry} | overdue_by_party(deadlines)
        requests = await asyncio.to_thread(
            functools.partial(request_deadlines, self.store, self.clock.now(), overdue_only=True)
        )
        unanswered = {p.id: 0 for p in self.registry} | overdue_by_party(requests)
        return (
            text
            + render_write_batches(self.commits.counters())
            + render_overdue_retours(overdue)
            + render_overdue_answers(unanswered)
        )
