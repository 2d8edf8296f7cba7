"""Lease rows shared by several nodes (gateway.store.leases, gateway.daemon.cluster): a job runs
on one node per interval, a dead node blocks it for one lease at most, the folders have one
owner at a time; and the client locks across nodes on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from gateway.clock import FakeClock
from gateway.daemon.cluster import FOLDERS, Cluster
from gateway.service.client_locks import ClientLocks
from gateway.store.leases import advisory_key
from gateway.store.sql import SqlStore

LEASE = dt.timedelta(seconds=30)


def _nodes(store: SqlStore, clock: FakeClock) -> tuple[Cluster, Cluster]:
    return (
        Cluster(store, clock, LEASE, "host:8001"),
        Cluster(store, clock, LEASE, "host:8002"),
    )


async def test_a_job_runs_on_one_node_per_interval(store: SqlStore) -> None:
    clock = FakeClock()
    first, second = _nodes(store, clock)
    runs: list[str] = []

    def job(node: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs.append(node)

        return run

    assert await first.once("retention", 60, job("first"))
    assert not await second.once("retention", 60, job("second"))  # not due yet
    clock.advance(seconds=30)
    assert not await second.once("retention", 60, job("second"))
    clock.advance(seconds=30)
    assert await second.once("retention", 60, job("second"))
    assert runs == ["first", "second"]


async def test_a_running_job_is_not_run_elsewhere(store: SqlStore) -> None:
    clock = FakeClock()
    first, second = _nodes(store, clock)
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        await finish.wait()

    running = asyncio.create_task(first.once("retour_deadlines", 60, slow))
    await started.wait()
    assert not await second.once("retour_deadlines", 60, slow)
    finish.set()
    assert await running


async def test_a_dead_nodes_job_is_taken_over_after_its_lease(store: SqlStore) -> None:
    clock = FakeClock()
    first, second = _nodes(store, clock)
    now = clock.now()
    # The first node claimed the job and died: nobody releases it.
    assert store.claim_lease("reprocess_stuck", first.node, now, now + LEASE)
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    assert not await second.once("reprocess_stuck", 20, job)
    clock.advance(LEASE)
    assert await second.once("reprocess_stuck", 20, job)
    assert ran == [True]


async def test_a_restarted_node_takes_its_own_lease_back_at_once(store: SqlStore) -> None:
    clock = FakeClock()
    now = clock.now()
    assert store.claim_lease(FOLDERS, "host:8001", now, now + LEASE)
    restarted = Cluster(store, clock, LEASE, "host:8001")
    assert await restarted.owns_folders()


async def test_the_folders_have_one_owner_and_pass_on_when_it_dies(store: SqlStore) -> None:
    clock = FakeClock()
    first, second = _nodes(store, clock)
    assert await first.owns_folders()
    assert not await second.owns_folders()
    clock.advance(LEASE / 2)  # the owner renews
    assert await first.owns_folders()
    assert store.lease_holder(FOLDERS, clock.now()) == first.node
    clock.advance(LEASE / 2)
    assert not await second.owns_folders()  # renewed: still the first's
    clock.advance(LEASE)  # the first stopped renewing: its lease ran out
    assert await second.owns_folders()
    assert store.lease_holder(FOLDERS, clock.now()) == second.node
    assert not await first.owns_folders()


async def test_a_clean_stop_hands_the_folders_on_at_once(store: SqlStore) -> None:
    clock = FakeClock()
    first, second = _nodes(store, clock)
    assert await first.owns_folders()
    await first.let_go()
    clock.advance(LEASE / 10)  # the second asks again a tenth of a lease later
    assert await second.owns_folders()


def test_sqlite_has_no_client_locks_across_nodes(backend: str, store: SqlStore) -> None:
    assert (store.client_locks_across_nodes() is None) is (backend == "sqlite")


@pytest.mark.postgres
async def test_client_locks_hold_across_two_stores(
    make_store: Callable[[], SqlStore], backend: str
) -> None:
    """Two nodes (two stores, two ClientLocks): a second holder of one client waits for the
    first to let go; another client does not wait."""
    if backend != "postgres":
        pytest.skip("advisory locks are PostgreSQL's")
    stores: list[SqlStore] = [make_store(), make_store()]
    across = [s.client_locks_across_nodes() for s in stores]
    assert across[0] is not None and across[1] is not None
    first, second = ClientLocks(across[0]), ClientLocks(across[1])
    order: list[str] = []
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def hold_first() -> None:
        async with first.hold(["999900006"]):
            order.append("first in")
            inside.set()
            await leave.wait()
            order.append("first out")

    async def hold_second() -> None:
        await inside.wait()
        async with second.hold(["999900006"]):
            order.append("second in")

    holding = asyncio.create_task(hold_first())
    waiting = asyncio.create_task(hold_second())
    await inside.wait()
    async with second.hold(["999900018"]):  # another client: no wait
        order.append("other client")
    # The second holder of the same client waits in the database until the first leaves.
    while not await asyncio.to_thread(_waited_for, stores[0], "999900006"):
        await asyncio.sleep(0.01)  # the other node's thread reaching its wait
    assert not waiting.done()
    leave.set()
    await asyncio.gather(holding, waiting)
    assert order == ["first in", "other client", "first out", "second in"]
    for made in stores:
        made.close()


def _waited_for(store: SqlStore, bsn: str) -> bool:
    """True when a session waits for the advisory lock of this client (a bigint key shows in
    pg_locks as its high and low 32 bits)."""
    key = advisory_key(store.pseudonyms.client_key(bsn)) & 0xFFFF_FFFF_FFFF_FFFF
    with store.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
            ),
            {"high": key >> 32, "low": key & 0xFFFF_FFFF},
        ).scalar()
    return bool(waiting)


@pytest.mark.postgres
async def test_more_holders_than_lock_connections_all_get_through(
    make_store: Callable[[], SqlStore], backend: str
) -> None:
    """Three times as many clients at once as the node has lock connections: they queue for a
    connection instead of filling every thread with waits, so each holder gets in and out."""
    if backend != "postgres":
        pytest.skip("advisory locks are PostgreSQL's")
    store = make_store()
    across = store.client_locks_across_nodes()
    assert across is not None
    locks = ClientLocks(across)
    inside = 0
    most = 0

    async def hold(client: int) -> None:
        nonlocal inside, most
        async with locks.hold([f"9{client:08d}"]):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)  # let the others pile up behind the connections
            inside -= 1

    await asyncio.gather(*(hold(client) for client in range(3 * across.capacity)))
    assert most <= across.capacity
    store.close()
