"""The daemon's periodic jobs besides delivery and the inbox scan: process again what a crash
left ``received``, sweep the outbox's temporary files, give freed memory back, write overdue
notices, answer originals held for a mapping decision once their decision wait is over,
and apply the retention policy.

On several nodes (``gateway.daemon.cluster``) reprocessing, overdue notices, the decision-wait
answers and retention run on one node per interval, the outbox sweep on the folder owner, and
every node gives back its own memory."""

from __future__ import annotations

import asyncio

from gateway.config import Settings
from gateway.daemon.cluster import Cluster
from gateway.daemon.delivery import Delivery
from gateway.daemon.memory import release_free_memory
from gateway.daemon.scheduler import Scheduler
from gateway.service.gateway_service import GatewayService
from gateway.service.operator import retention_job
from gateway.service.reprocessing import STUCK_SCAN_SECONDS
from gateway.service.retour_deadlines import OverdueNotices

HOUSEKEEPING_SECONDS = 60.0
REPROCESS_STUCK = "reprocess_stuck"


def schedule_housekeeping(
    scheduler: Scheduler,
    settings: Settings,
    service: GatewayService,
    delivery: Delivery,
    cluster: Cluster,
) -> None:
    """Add the housekeeping jobs to ``scheduler`` (before it starts)."""
    cluster.every(
        scheduler, REPROCESS_STUCK, STUCK_SCAN_SECONDS, service.reprocessing.process_stuck
    )
    cluster.every(scheduler, "decision_wait", HOUSEKEEPING_SECONDS, service.held_answers.run)
    scheduler.every(
        "outbox_sweep", HOUSEKEEPING_SECONDS, cluster.for_folder_owner(delivery.sweep_temp_files)
    )
    scheduler.every("memory", HOUSEKEEPING_SECONDS, _release_free_memory)
    cluster.every(
        scheduler,
        "retour_deadlines",
        HOUSEKEEPING_SECONDS,
        OverdueNotices(service.store, service.clock).run,
    )
    cluster.every(
        scheduler,
        "retention",
        settings.retention.interval_hours * 3600,
        retention_job(service, settings.retention),
    )


async def _release_free_memory() -> None:
    # Resident memory otherwise creeps up with freed-but-kept pages in malloc's arenas
    # (gateway/daemon/memory.py); the trim walks every arena, so off the event loop.
    await asyncio.to_thread(release_free_memory)
