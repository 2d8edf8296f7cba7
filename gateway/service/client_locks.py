"""One lock per client, so two messages about one client are checked and committed in turn,
in this process and, on PostgreSQL, across every node on the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Protocol

from gateway.core.errors import StoreError
from gateway.logs import get_logger

log = get_logger("gateway.service")


class HeldLocks(Protocol):
    """Locks taken in the database; :meth:`release` (blocking) lets go of them."""

    def release(self) -> None: ...


class NodeLocks(Protocol):
    """Client locks shared by the nodes on one database (a blocking call):
    ``gateway.store.leases.AdvisoryClientLocks``; at most ``capacity`` held or waited for."""

    @property
    def capacity(self) -> int: ...

    def acquire(self, bsns: Collection[str]) -> HeldLocks: ...


class ClientLocks:
    """One asyncio lock per client key, created on demand and dropped when unused.

    :meth:`hold` takes the locks of several clients in sorted order, so two messages about
    overlapping clients never wait for each other in a circle. With ``across_nodes`` it then
    also takes the clients' locks in the database, so a message about the same client at
    another node waits too; in-process waiters queue here first, so only one of them at a time
    holds a database connection for a client.
    """

    def __init__(self, across_nodes: NodeLocks | None = None) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._across = across_nodes
        # Threads of their own: a wait for another node must not hold up validations. Twice
        # as many as may wait for or hold a lock, so a release always finds a free thread.
        capacity = across_nodes.capacity if across_nodes is not None else 0
        self._across_slots = asyncio.Semaphore(capacity)
        self._threads = (
            ThreadPoolExecutor(max_workers=2 * capacity, thread_name_prefix="client-locks")
            if across_nodes is not None
            else None
        )

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` for the duration of the block."""
        acquired: list[str] = []
        try:
            for key in sorted(set(keys)):
                lock = self._locks.setdefault(key, asyncio.Lock())
                self._users[key] = self._users.get(key, 0) + 1
                try:
                    await lock.acquire()
                except BaseException:
                    self._drop(key)
                    raise
                acquired.append(key)
            if self._across is None or not acquired:
                yield
            else:
                async with self._across_nodes(acquired):
                    yield
        finally:
            for key in reversed(acquired):
                self._locks[key].release()
                self._drop(key)

    @asynccontextmanager
    async def _across_nodes(self, keys: list[str]) -> AsyncIterator[None]:
        async with self._across_slots, self._in_database(keys):
            yield

    @asynccontextmanager
    async def _in_database(self, keys: list[str]) -> AsyncIterator[None]:
        across, threads = self._across, self._threads
        assert across is not None and threads is not None
        loop = asyncio.get_running_loop()
        taking = loop.run_in_executor(threads, across.acquire, keys)
        try:
            held = await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The thread goes on waiting; whatever it takes is let go of at once.
            taking.add_done_callback(
                lambda done: (
                    None
                    if done.cancelled() or done.exception() is not None
                    else threads.submit(done.result().release)
                )
            )
            raise
        try:
            yield
        finally:
            try:
                await loop.run_in_executor(threads, held.release)
            except StoreError as exc:
                # What was committed stays committed: a broken connection took its locks along.
                log.warning("client_lock_release_failed", error=str(exc))

    def _drop(self, key: str) -> None:
        self._users[key] -= 1
        if self._users[key] == 0:
            del self._users[key], self._locks[key]

    def __len__(self) -> int:
        """How many clients have a lock now (held or waited for)."""
        return len(self._locks)
