"""The daemon's periodic jobs besides delivery and the inbox scan: process again what a crash
left ``received``, sweep the outbox's temporary files, give freed memory back, write overdue
notices, answer originals held for a mapping decision once their decision wait is over,
and apply the retention policy."""

from __future__ import annotations

import asyncio

from gateway.config import Settings
from gateway.daemon.delivery import Delivery
from gateway.daemon.memory import release_free_memory
from gateway.daemon.scheduler import Scheduler
from gateway.service.gateway_service import GatewayService
from gateway.service.operator import retention_job
from gateway.service.reprocessing import STUCK_SCAN_SECONDS
from gateway.service.retour_deadlines import OverdueNotices

HOUSEKEEPING_SECONDS = 60.0


def schedule_housekeeping(
    scheduler: Scheduler, settings: Settings, service: GatewayService, delivery: Delivery
) -> None:
    """Add the housekeeping jobs to ``scheduler`` (before it starts)."""
    scheduler.every("reprocess_stuck", STUCK_SCAN_SECONDS, service.reprocessing.process_stuck)
    scheduler.every("outbox_sweep", HOUSEKEEPING_SECONDS, delivery.sweep_temp_files)
    scheduler.every("memory", HOUSEKEEPING_SECONDS, _release_free_memory)
    scheduler.every(
        "retour_deadlines", HOUSEKEEPING_SECONDS, OverdueNotices(service.store, service.clock).run
    )
    scheduler.every("decision_wait", HOUSEKEEPING_SECONDS, service.held_answers.run)
    scheduler.every(
        "retention",
        settings.retention.interval_hours * 3600,
        retention_job(service, settings.retention),
    )


async def _release_free_memory() -> None:
    # Resident memory otherwise creeps up with freed-but-kept pages in malloc's arenas
    # (gateway/daemon/memory.py); the trim walks every arena, so off the event loop.
    await asyncio.to_thread(release_free_memory)
