"""The composition root: build every part from :class:`Settings` and run them in one process.

Nothing imports this module except the command line. ``gateway run`` calls :func:`run`:
migrate the store, process anything a crash left behind, then serve HTTP, scan the inbox and
deliver on a schedule until SIGTERM/SIGINT. Shutdown stops intake first, lets in-flight
requests and job runs finish, and exits cleanly: nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import signal
from dataclasses import dataclass

from aiohttp import web

from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.core.errors import ConfigError
from gateway.core.retry import RetryPolicy
from gateway.delivery import Delivery
from gateway.inbox_watcher import InboxWatcher
from gateway.logs import get_logger
from gateway.operator import retention_job
from gateway.retour_deadlines import OverdueNotices
from gateway.scheduler import Scheduler
from gateway.schemas import load_schema_set
from gateway.server import create_app
from gateway.service import GatewayService
from gateway.store.sql import SqlStore

log = get_logger("gateway.app")

HOUSEKEEPING_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 30.0


@dataclass
class Gateway:
    """All parts of a running gateway, wired together."""

    settings: Settings
    store: SqlStore
    service: GatewayService
    delivery: Delivery
    watcher: InboxWatcher
    web_app: web.Application


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy from ``[retry]``."""
    return RetryPolicy(
        base_delay=dt.timedelta(seconds=settings.retry.base_seconds),
        max_delay=dt.timedelta(seconds=settings.retry.cap_seconds),
        max_attempts=settings.retry.max_attempts,
        max_age=dt.timedelta(hours=settings.retry.max_age_hours),
    )


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    store: SqlStore | None = None,
    rng: random.Random | None = None,
) -> Gateway:
    """Build the gateway from settings (tests may pass a clock, a store and a seeded rng)."""
    clock = clock or SystemClock()
    store = store or SqlStore(settings.store_url)
    lease = dt.timedelta(seconds=settings.delivery.lease_seconds)
    service = GatewayService(
        store=store,
        registry=settings.registry(),
        schemas=load_schema_set(list(settings.schemas)),
        clock=clock,
        max_message_bytes=settings.limits.max_message_bytes,
        lease=lease,
    )
    delivery = Delivery(
        service,
        outbox=settings.outbox,
        policy=retry_policy(settings),
        rng=rng,
        batch_size=settings.delivery.batch_size,
        lease=lease,
        http_timeout=settings.delivery.http_timeout_seconds,
    )
    watcher = InboxWatcher(service, settings.inbox)
    web_app = create_app(service, settings.max_body_bytes)
    return Gateway(settings, store, service, delivery, watcher, web_app)


async def serve(gateway: Gateway, stop: asyncio.Event) -> None:
    """Run server, watcher and scheduler until ``stop`` is set, then shut down in order."""
    settings = gateway.settings
    service = gateway.service
    await asyncio.to_thread(gateway.store.migrate)
    await service.refresh_holds()
    recovered = await service.process_stuck(older_than=dt.timedelta(0))

    runner = web.AppRunner(
        gateway.web_app, shutdown_timeout=SHUTDOWN_GRACE_SECONDS, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        address = f"{settings.server.host}:{settings.server.port}"
        raise ConfigError(
            f"cannot listen on {address}: {exc.strerror or exc}; is another gateway running, "
            "or set [server] port in the configuration"
        ) from None

    scheduler = Scheduler()
    scheduler.every("delivery", settings.delivery.interval_seconds, gateway.delivery.tick)
    scheduler.every("inbox", settings.delivery.inbox_poll_seconds, gateway.watcher.scan)
    scheduler.every("housekeeping", HOUSEKEEPING_SECONDS, service.process_stuck)
    scheduler.every(
        "retour_deadlines", HOUSEKEEPING_SECONDS, OverdueNotices(gateway.store, service.clock).run
    )
    scheduler.every(
        "retention",
        settings.retention.interval_hours * 3600,
        retention_job(service, settings.retention),
    )
    scheduler.start()
    log.info(
        "gateway_started",
        host=settings.server.host,
        port=settings.server.port,
        parties=len(service.registry),
        reprocessed=recovered,
    )
    try:
        await stop.wait()
    finally:
        log.info("gateway_stopping")
        service.stop_intake()
        await scheduler.stop()  # lets a running delivery pass or inbox scan finish
        await runner.cleanup()  # stops listening, waits for in-flight requests
        await service.drain()
        await gateway.delivery.close()
        gateway.store.close()
        log.info("gateway_stopped")


def run(settings: Settings) -> int:
    """``gateway run``: serve until SIGTERM or SIGINT; returns the exit code."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(build_app(settings), stop)

    asyncio.run(main())
    return 0
