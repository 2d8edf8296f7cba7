"""One lock per client, so two messages about one client are checked and committed in turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class ClientLocks:
    """One asyncio lock per client key, created on demand and dropped when unused.

    :meth:`hold` takes the locks of several clients in sorted order, so two messages about
    overlapping clients never wait for each other in a circle.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

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
            yield
        finally:
            for key in reversed(acquired):
                self._locks[key].release()
                self._drop(key)

    def _drop(self, key: str) -> None:
        self._users[key] -= 1
        if self._users[key] == 0:
            del self._users[key], self._locks[key]

    def __len__(self) -> int:
        """How many clients have a lock now (held or waited for)."""
        return len(self._locks)
