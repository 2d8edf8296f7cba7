"""The composition root: build every part from :class:`Settings` and run them in one process.

Nothing imports this module except the command line. ``gateway run`` calls :func:`run`:
migrate the store, process anything a crash left behind, then serve HTTP, scan the inbox and
deliver on a schedule until SIGTERM/SIGINT. Shutdown stops intake first, lets in-flight
requests and job runs finish, and exits cleanly: nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.clock import Clock, FileClock, SystemClock
from gateway.config import Settings
from gateway.contracts import load_contract_table
from gateway.core.codes import ProductCodeList
from gateway.core.envelope import Systeem
from gateway.core.errors import ConfigError
from gateway.core.lists import ContractTable, ExternalLists, ListFormatError, parse_gemeenten
from gateway.core.retry import RetryPolicy
from gateway.daemon.chain_client import ChainSender, client_tls_context
from gateway.daemon.chain_server import create_chain_app, tls_context
from gateway.daemon.cluster import Cluster, node_name
from gateway.daemon.delivery import Delivery
from gateway.daemon.housekeeping import REPROCESS_STUCK, schedule_housekeeping
from gateway.daemon.inbox_watcher import InboxWatcher
from gateway.daemon.memory import freeze_startup_objects, limit_malloc_arenas
from gateway.daemon.prepare_workers import PreparePool
from gateway.daemon.scheduler import Scheduler
from gateway.daemon.server import HttpLimits, create_app, listen
from gateway.logs import get_logger
from gateway.mapping_files import load_code_list, load_mappings
from gateway.metrics import StoreFigures
from gateway.pseudonym_key import load_pseudonymizer
from gateway.schemas import load_envelope_schema, load_schema_set
from gateway.service.chain_intake import ChainIntake
from gateway.service.gateway_service import GatewayService
from gateway.service.reprocessing import STUCK_SCAN_SECONDS
from gateway.service.retour_deadlines import overdue_by_party, request_deadlines, retour_deadlines
from gateway.service.volume import VolumeLimits, free_disk_bytes
from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA
from gateway.store.history import history_factory
from gateway.store.sql import SqlStore
from gateway.translator import Translator

log = get_logger("gateway.app")

GEMEENTEN_FILE = "gemeenten_cbs.csv"
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
    cluster: Cluster
    chain_app: web.Application | None = None
    """The StUF-GGk endpoint, when ``[chain] enabled``."""


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy from ``[retry]``."""
    return RetryPolicy(
        base_delay=dt.timedelta(seconds=settings.retry.base_seconds),
        max_delay=dt.timedelta(seconds=settings.retry.cap_seconds),
        max_attempts=settings.retry.max_attempts,
        max_age=dt.timedelta(hours=settings.retry.max_age_hours),
    )


def translator(settings: Settings, contracts: ContractTable | None = None) -> Translator | None:
    """The translation step, with the mapping tables loaded once (None: no party needs it),
    and the contract tariffs that price declaration lines under a declared conversion.

    A broken table raises ``MappingError`` (a ``ConfigError``) listing every problem as
    ``file:line: message``, so ``gateway run`` stops with exit 2 before serving anything.
    """
    if not settings.translates:
        return None
    return Translator(load_mappings(settings.mappings), contracts)


def contract_table(settings: Settings) -> ContractTable | None:
    """The contract tariffs of ``[lists] contracts``, loaded once (None when not configured)."""
    if settings.contracts is None:
        return None
    return load_contract_table(settings.contracts, settings.mappings)


def external_lists(settings: Settings, contracts: ContractTable | None = None) -> ExternalLists:
    """The lists the level-E rules consult, loaded once: the CBS gemeente list and the product
    code lists named in ``[rules] product_codes`` from the mapping folder (their union), and the
    contract tariffs of ``[lists] contracts`` when configured
    (``gateway.contracts.load_contract_table``).

    A missing or broken list raises ``ConfigError``, so ``gateway run`` stops with exit 2.
    """
    path = settings.mappings / GEMEENTEN_FILE
    try:
        with path.open(encoding="utf-8", newline="") as lines:
            gemeenten = parse_gemeenten(lines)
    except (OSError, UnicodeDecodeError, ListFormatError) as exc:
        raise ConfigError(f"{path}: cannot load the gemeente list: {exc}") from exc
    # Several lists may be named, comma-separated (JZ21 lacks category 55, for instance).
    names = [name.strip() for name in settings.rules.product_codes.split(",") if name.strip()]
    codes = (
        ProductCodeList.union(
            "+".join(names), [load_code_list(settings.mappings, name) for name in names]
        )
        if names
        else None
    )
    return ExternalLists(
        gemeenten=gemeenten,
        product_codes=codes,
        contracts=contracts if contracts is not None else contract_table(settings),
        missing_tariff=settings.missing_tariff,
    )


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    store: SqlStore | None = None,
    rng: random.Random | None = None,
) -> Gateway:
    """Build the gateway from settings (tests may pass a clock, a store and a seeded rng)."""
    store = store or SqlStore(settings.store_url, pseudonyms=load_pseudonymizer(settings))
    service = build_service(settings, clock=clock, store=store)
    lease = service.lease
    cluster = Cluster(store, service.clock, lease, node_name(settings.server.port))
    delivery = Delivery(
        service,
        outbox=settings.outbox,
        policy=retry_policy(settings),
        rng=rng,
        batch_size=settings.delivery.batch_size,
        lease=lease,
        http_timeout=settings.delivery.http_timeout_seconds,
        max_lanes=settings.delivery.max_lanes,
        pass_wait=settings.delivery.pass_wait,
        owns_folders=cluster.owns_folders,
        chain=chain_sender(settings, service),
    )
    watcher = InboxWatcher(service, settings.inbox)
    watch_store_figures(service)
    web_app = create_app(
        service,
        settings.max_body_bytes,
        limits=http_limits(settings),
        metrics_token_sha256=settings.metrics_token_sha256,
    )
    return Gateway(
        settings, store, service, delivery, watcher, web_app, cluster, chain_app(settings, service)
    )


def chain_sender(settings: Settings, service: GatewayService) -> ChainSender | None:
    """The ``ggk`` channel's sender when ``[chain] ggk_url`` is set (None when not)."""
    chain = settings.chain
    tls = chain.outbound_tls
    if chain.ggk_url is None or tls is None:
        return None
    return ChainSender(
        service,
        load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA),
        Systeem(chain.organisatie, chain.applicatie),
        chain.ggk_url,
        client_tls_context(*tls),
    )


def chain_app(settings: Settings, service: GatewayService) -> web.Application | None:
    """The StUF-GGk endpoint's application when ``[chain] enabled`` (None when not)."""
    if not settings.chain.enabled:
        return None
    intake = ChainIntake(
        service,
        load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA),
        Systeem(settings.chain.organisatie, settings.chain.applicatie),
    )
    return create_chain_app(intake, http_limits(settings))


def watch_store_figures(service: GatewayService) -> None:
    """Let /metrics show the store's queue figures and every party's counters from zero."""
    store, clock = service.store, service.clock
    parties = [party.id for party in service.registry]

    def overdue_retours() -> dict[str, int]:
        late = retour_deadlines(store, clock.now(), overdue_only=True)
        return dict.fromkeys(parties, 0) | overdue_by_party(late)

    def overdue_answers() -> dict[str, int]:
        late = request_deadlines(store, clock.now(), overdue_only=True)
        return dict.fromkeys(parties, 0) | overdue_by_party(late)

    service.metrics.know_parties(parties)
    service.metrics.watch(
        StoreFigures(store, clock, overdue_retours, overdue_answers, service.commits.counters)
    )


def http_limits(settings: Settings) -> HttpLimits:
    """Connection and body bounds from ``[server]``."""
    server = settings.server
    return HttpLimits(
        header_timeout=server.header_timeout_seconds,
        idle_timeout=server.idle_timeout_seconds,
        body_min_bytes_per_second=server.body_min_bytes_per_second,
        body_grace=server.body_grace_seconds,
        max_bodies_in_flight=server.max_bodies_in_flight,
        max_body_bytes_in_flight=server.max_body_bytes_in_flight,
    )


def volume_limits(settings: Settings) -> VolumeLimits:
    """The per-party window cap and the free-disk floor from ``[limits]``."""
    return VolumeLimits(
        party_bytes_per_window=settings.limits.party_bytes_per_window,
        window=dt.timedelta(hours=settings.limits.party_window_hours),
        min_free_disk_bytes=settings.limits.min_free_disk_bytes,
    )


DEMO_CLOCK_VARIABLE = "GATEWAY_DEMO_CLOCK_FILE"


def process_clock() -> Clock:
    """The wall clock; or, for a test or demo that names a file in ``GATEWAY_DEMO_CLOCK_FILE``,
    the instant written in it (``FileClock``). Read here only, never from a config file, so a
    production configuration cannot switch it on (docs/configuration.md)."""
    path = os.environ.get(DEMO_CLOCK_VARIABLE)
    if not path:
        return SystemClock()
    try:
        clock = FileClock(Path(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{DEMO_CLOCK_VARIABLE}: {exc}") from None
    log.warning("demo_clock", variable=DEMO_CLOCK_VARIABLE, now=clock.now().isoformat())
    return clock


def build_service(
    settings: Settings, *, clock: Clock | None = None, store: SqlStore | None = None
) -> GatewayService:
    """The intake and operations service alone (also what a prepare worker process builds)."""
    store = store or SqlStore(settings.store_url, pseudonyms=load_pseudonymizer(settings))
    contracts = contract_table(settings)
    return GatewayService(
        store=store,
        registry=settings.registry(),
        schemas=load_schema_set(list(settings.schemas)),
        clock=clock or process_clock(),
        max_message_bytes=settings.limits.max_message_bytes,
        lease=dt.timedelta(seconds=settings.delivery.lease_seconds),
        translator=translator(settings, contracts),
        history=history_factory(store) if settings.rules.dossier else None,
        lists=external_lists(settings, contracts) if settings.rules.dossier else None,
        volume=volume_limits(settings),
        decision_policies=settings.translation.policies(),
        free_disk=lambda: free_disk_bytes(settings.data),
        node_locks=store.client_locks_across_nodes(),
    )


def schedule(gateway: Gateway) -> Scheduler:
    """The periodic jobs: delivery passes on every node, the inbox scan on the folder owner,
    housekeeping (``gateway.daemon.housekeeping``)."""
    settings, cluster = gateway.settings, gateway.cluster
    scheduler = Scheduler()
    scheduler.every("delivery", settings.delivery.interval_seconds, gateway.delivery.tick)
    scheduler.every(
        "inbox",
        settings.delivery.inbox_poll_seconds,
        cluster.for_folder_owner(gateway.watcher.scan),
    )
    schedule_housekeeping(scheduler, settings, gateway.service, gateway.delivery, cluster)
    return scheduler


async def serve(gateway: Gateway, stop: asyncio.Event) -> None:
    """Run server, watcher and scheduler until ``stop`` is set, then shut down in order."""
    settings = gateway.settings
    service = gateway.service
    await asyncio.to_thread(gateway.store.migrate)
    await service.refresh_holds()
    cluster = gateway.cluster
    recovered = 0

    async def recover() -> None:
        nonlocal recovered
        recovered = await service.reprocessing.process_stuck(older_than=dt.timedelta(0))

    # Once across the nodes: a node joining a running cluster leaves this to the job.
    await cluster.once(REPROCESS_STUCK, STUCK_SCAN_SECONDS, recover)
    pool = None
    if settings.server.prepare_workers:
        # After migrating: workers read the store as it is now.
        pool = PreparePool(settings, settings.server.prepare_workers, build_service)
        await pool.start()
        service.intake.prepare_pool = pool

    rest = chain = Listening()
    try:
        rest = await open_listener(
            gateway.web_app, settings, settings.server.host, settings.server.port
        )
        chain = await start_chain(gateway)
    except ConfigError:
        rest.close()
        await rest.finish()
        if pool is not None:
            await pool.close()
        raise

    scheduler = schedule(gateway)
    scheduler.start()
    frozen = freeze_startup_objects()  # start-up is complete (gateway/daemon/memory.py says why)
    log.info(
        "gateway_started",
        host=settings.server.host,
        port=settings.server.port,
        parties=len(service.registry),
        reprocessed=recovered,
        prepare_workers=pool.pids() if pool is not None else [],
        frozen_objects=frozen,
        node=cluster.node,
    )
    try:
        await stop.wait()
    finally:
        log.info("gateway_stopping")
        service.intake.stop()
        await scheduler.stop()  # lets a running delivery pass or inbox scan finish
        rest.close()  # no new connections
        chain.close()
        await rest.finish()  # waits for in-flight requests
        await chain.finish()
        await service.intake.drain()
        if pool is not None:
            service.intake.prepare_pool = None
            await pool.close()
        await gateway.delivery.close()
        await cluster.let_go()
        gateway.store.close()
        log.info("gateway_stopped")


@dataclass
class Listening:
    """An endpoint being served (or nothing, for one that is off)."""

    runner: web.AppRunner | None = None
    server: asyncio.Server | None = None

    def close(self) -> None:
        """Take no new connections."""
        if self.server is not None:
            self.server.close()

    async def finish(self) -> None:
        """Let in-flight requests finish, then release everything."""
        if self.runner is not None:
            await self.runner.cleanup()
        if self.server is not None:
            await self.server.wait_closed()


async def start_chain(gateway: Gateway) -> Listening:
    """Serve the StUF-GGk endpoint behind mutual TLS, when configured."""
    if gateway.chain_app is None:
        return Listening()
    chain = gateway.settings.chain
    assert chain.certificate and chain.private_key and chain.client_ca  # settings check this
    tls = tls_context(chain.certificate, chain.private_key, chain.client_ca)
    listening = await open_listener(
        gateway.chain_app, gateway.settings, chain.host, chain.port, tls, section="chain"
    )
    log.info("chain_endpoint_started", host=chain.host, port=chain.port)
    return listening


async def open_listener(
    app: web.Application,
    settings: Settings,
    host: str,
    port: int,
    tls: ssl.SSLContext | None = None,
    *,
    section: str = "server",
) -> Listening:
    """Serve a :func:`~gateway.daemon.server.bounded_app` on ``host:port``; a port that cannot
    be had is a ``ConfigError`` naming the section to change."""
    runner = web.AppRunner(
        app,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=None,
        **http_limits(settings).runner_options(),
    )
    await runner.setup()
    try:
        server = await listen(runner, host, port, tls)
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another gateway running, "
            f"or set [{section}] port in the configuration"
        ) from None
    return Listening(runner, server)


def run(settings: Settings) -> int:
    """``gateway run``: serve until SIGTERM or SIGINT; returns the exit code."""
    # Before any worker thread exists: each would otherwise get a malloc arena of its own.
    limit_malloc_arenas()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(build_app(settings), stop)

    asyncio.run(main())
    return 0
