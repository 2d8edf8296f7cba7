"""Prepare worker processes (``[server] prepare_workers``): intake means the same as with the
daemon's own threads, and a worker that dies or cannot start loses nothing.

Each test runs real worker processes (spawned, as the daemon does) on a copy of the shipped
demo configuration; the demo dossier itself goes through both ways in test_demo_dossier.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import FakeClock
from gateway.config import Settings
from gateway.core.errors import ConfigError
from gateway.core.model import State
from gateway.daemon.app import Gateway, build_app, build_service
from gateway.daemon.prepare_workers import JOBS_IN_FLIGHT, PreparePool
from gateway.service.gateway_service import GatewayService
from tests.integration.demo_config import shipped_demo_settings
from tests.paths import EXAMPLES_DIR, REPO

EXAMPLES = REPO / "docs" / "examples"
DEMO_DAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
REQUEST = ("01-JW315.xml", "jeugdhulp-oost")  # to gemeente-deventer: queued, answered JW316
NO_ALLOCATION = ("90-JW305-no-allocation.xml", "zorgpartners")  # rejected: TR019 (9019)


def broken_service(settings: Settings) -> GatewayService:
    """A worker's build step that fails, as a changed or unreadable file would make it."""
    raise ConfigError(f"{settings.config_path}: mappings unreadable in this test")


@pytest.fixture
async def pooled(tmp_path: Path) -> AsyncIterator[tuple[Gateway, PreparePool, FakeClock]]:
    settings = shipped_demo_settings(tmp_path)
    clock = FakeClock(DEMO_DAY)
    gateway = build_app(settings, clock=clock, rng=random.Random(3))
    gateway.store.migrate()
    pool = PreparePool(settings, 1, build_service)
    await pool.start()
    gateway.service.intake.prepare_pool = pool
    yield gateway, pool, clock
    await pool.close()
    await gateway.delivery.close()
    gateway.store.close()


async def _submit(gateway: Gateway, example: tuple[str, str]) -> str:
    file, sender = example
    party = gateway.service.registry.get(sender)
    assert party is not None
    receipt = await gateway.service.intake.submit(party, (EXAMPLES / file).read_bytes(), "test")
    return receipt.message.id


def _rules(gateway: Gateway, message_id: str) -> set[str]:
    return {finding["rule"] for finding in gateway.store.findings(message_id)}


async def test_a_worker_decides_as_of_the_parents_clock(
    pooled: tuple[Gateway, PreparePool, FakeClock],
) -> None:
    """The worker has a system clock of its own; the message must be judged by the parent's
    (injected) moment: a day before the Dagtekening, TR135 rejects it."""
    gateway, pool, clock = pooled
    clock.set(dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.UTC))
    message_id = await _submit(gateway, REQUEST)
    stored = gateway.store.get(message_id)
    assert stored is not None
    assert stored.state is State.REJECTED
    assert "TR135" in _rules(gateway, message_id)
    assert {event.at for event in gateway.store.history(message_id)} == {clock.now()}
    assert pool.pids() and os.getpid() not in pool.pids()


async def test_a_worker_sees_the_parents_operator_holds(
    pooled: tuple[Gateway, PreparePool, FakeClock],
) -> None:
    gateway, _pool, _clock = pooled
    await gateway.service.steering.hold_party("gemeente-deventer", "operator")
    message_id = await _submit(gateway, REQUEST)
    held = gateway.store.get(message_id)
    assert held is not None and held.state is State.HELD
    assert await gateway.service.steering.release_party("gemeente-deventer", "operator") == 1


async def test_a_dead_worker_fails_only_its_message_and_is_replaced(
    pooled: tuple[Gateway, PreparePool, FakeClock],
) -> None:
    """Killed before the message reaches it: the message is stored as received (acknowledged,
    not lost), housekeeping processes it later, and a new worker takes the next message."""
    gateway, pool, clock = pooled
    # The sender's quota count is read from the store (in a thread) at its first submission:
    # read it now, so that submit() below does not let the event loop run before it sends.
    assert await gateway.service.intake.volume.used(REQUEST[1], clock.now()) == 0
    [first_worker] = pool.pids()
    os.kill(first_worker, signal.SIGKILL)
    # Until it has exited; WNOWAIT leaves reaping it to the pool.
    os.waitid(os.P_PID, first_worker, os.WEXITED | os.WNOWAIT)
    # submit() reaches the dead worker's pipe before the event loop runs again.
    lost_id = await _submit(gateway, REQUEST)
    lost = gateway.store.get(lost_id)
    assert lost is not None and lost.state is State.RECEIVED

    await pool.settled()
    [second_worker] = pool.pids()
    assert second_worker != first_worker
    next_id = await _submit(gateway, NO_ALLOCATION)  # the dossier rules run in the new one
    next_one = gateway.store.get(next_id)
    assert next_one is not None and next_one.state is State.REJECTED
    assert _rules(gateway, next_id) == {"TR019"}

    assert await gateway.service.reprocessing.process_stuck(older_than=dt.timedelta(0)) == 1
    recovered = gateway.store.get(lost_id)
    assert recovered is not None and recovered.state is State.QUEUED


async def test_a_worker_that_cannot_start_stops_the_start(tmp_path: Path) -> None:
    settings = shipped_demo_settings(tmp_path)
    pool = PreparePool(settings, 2, broken_service)
    with pytest.raises(ConfigError, match="mappings unreadable in this test"):
        await pool.start()
    assert pool.pids() == []


async def test_without_workers_intake_prepares_in_process(
    pooled: tuple[Gateway, PreparePool, FakeClock],
) -> None:
    """A pool whose workers are all gone and cannot be restarted does not stop intake."""
    gateway, pool, _clock = pooled
    await pool.close()
    assert not pool.available
    stored = gateway.store.get(await _submit(gateway, REQUEST))
    assert stored is not None and stored.state is State.QUEUED


async def test_jobs_in_flight_come_back_to_their_own_callers(tmp_path: Path) -> None:
    """Up to JOBS_IN_FLIGHT messages wait in a worker's pipe at once; each caller must get the
    record of its own message, the same as preparing in threads gives."""
    examples = sorted(p for p in EXAMPLES_DIR.glob("*.xml"))
    outcomes: dict[int, list[tuple[str | None, State, str | None, set[str]]]] = {}
    for workers in (0, 1):
        folder = tmp_path / f"workers-{workers}"
        folder.mkdir()
        settings = shipped_demo_settings(folder)
        gateway = build_app(settings, clock=FakeClock(DEMO_DAY), rng=random.Random(3))
        gateway.store.migrate()
        pool = None
        if workers:
            pool = PreparePool(settings, workers, build_service)
            await pool.start()
            gateway.service.intake.prepare_pool = pool
        party = gateway.service.registry.get("jeugdhulp-oost")
        assert party is not None
        receipts = await asyncio.gather(
            *(gateway.service.intake.submit(party, p.read_bytes(), "test") for p in examples)
        )
        outcomes[workers] = []
        for receipt in receipts:
            stored = gateway.store.get(receipt.message.id)
            assert stored is not None
            rules = {f["rule"] for f in gateway.store.findings(stored.id)}
            outcomes[workers].append((stored.message_type, stored.state, stored.reason, rules))
        if pool is not None:
            await pool.close()
        await gateway.delivery.close()
        gateway.store.close()
    assert len(examples) > JOBS_IN_FLIGHT
    assert [o[0] for o in outcomes[1]] == [p.stem for p in examples]
    assert outcomes[1] == outcomes[0]
