"""Several ``gateway run`` nodes on one database: which node runs which job, and which node owns
the folders.

A periodic job that must not run twice (reprocessing, overdue notices, retention) is claimed
through its lease row before each run (``gateway.store.leases``): the first node to find it
due runs it, renewing the lease while it runs, and sets when it is due next. Every node runs
delivery passes (messages are claimed one by one with ``SKIP LOCKED`` and a lease) and gives
back its own memory.

The folders have one owner: the node holding the ``folders`` lease scans ``inbox/``, writes to
``outbox/`` for folder parties and sweeps its temporary files. It renews the lease while it
runs; when it dies, another node takes the lease once it has run out and carries on from the
files as they are (folders must be one shared file system for that). A node that stops
cleanly lets go of its leases at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.clock import Clock
from gateway.daemon.scheduler import Scheduler
from gateway.logs import get_logger
from gateway.store.leases import JobLeases

log = get_logger("gateway.cluster")

FOLDERS = "folders"
"""The lease of the folder owner."""
DUE_SLACK = 0.05
"""Part of its interval a job may be due early, so the node that ran it last, whose scheduler
fires one interval after its claim, finds it due again."""


def node_name(port: int) -> str:
    """This node's name in lease rows: host and HTTP port, which no other running node has,
    so a node restarted after a crash takes its own leases back at once. Without a fixed port
    (tests), process id and a random tag."""
    host = socket.gethostname()[:120]
    return f"{host}:{port}" if port else f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


class Cluster:
    """This node's side of the lease rows: runs jobs once across nodes, owns the folders."""

    def __init__(self, leases: JobLeases, clock: Clock, lease: dt.timedelta, node: str) -> None:
        self.leases = leases
        self.clock = clock
        self.lease = lease
        self.node = node
        self._folders_until: dt.datetime | None = None
        self._folders_checked: dt.datetime | None = None
        self._running: set[str] = set()

    async def once(self, name: str, interval: float, job: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``job`` if no node runs it now and it is due; True when it ran here."""
        claimed_at = self.clock.now()
        claimed = await asyncio.to_thread(
            self.leases.claim_lease, name, self.node, claimed_at, claimed_at + self.lease
        )
        if not claimed:
            return False
        self._running.add(name)
        renewing = asyncio.create_task(self._renew(name))
        try:
            await job()
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            self._running.discard(name)
            due = claimed_at + dt.timedelta(seconds=interval * (1 - DUE_SLACK))
            kept = await asyncio.to_thread(self.leases.release_lease, name, self.node, due)
            if not kept:
                log.warning("job_lease_lost", job=name, node=self.node)
        return True

    async def _renew(self, name: str) -> None:
        # A job that outlives its lease keeps it; a node that dies stops renewing.
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            now = self.clock.now()
            await asyncio.to_thread(self.leases.claim_lease, name, self.node, now, now + self.lease)

    def every(
        self, scheduler: Scheduler, name: str, seconds: float, job: Callable[[], Awaitable[Any]]
    ) -> None:
        """Schedule ``job`` every ``seconds`` on this node, run by one node per interval."""

        async def run_once() -> None:
            await self.once(name, seconds, job)

        scheduler.every(name, seconds, run_once)

    def for_folder_owner(self, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """``job``, run only while this node owns the folders."""

        async def run_if_owner() -> None:
            if await self.owns_folders():
                await job()

        return run_if_owner

    async def owns_folders(self) -> bool:
        """True while this node holds the folder lease; takes or renews it when due.

        The owner renews once a third of its lease has passed; another node asks again every
        tenth of a lease, so it takes over at most that long after the lease ran out.
        """
        now = self.clock.now()
        if self._folders_until is not None and now < self._folders_until - 2 * self.lease / 3:
            return True
        if (
            self._folders_until is None
            and self._folders_checked is not None
            and now < self._folders_checked + self.lease / 10
        ):
            return False
        until = now + self.lease
        held = await asyncio.to_thread(self.leases.claim_lease, FOLDERS, self.node, now, until)
        self._folders_checked = now
        if held and self._folders_until is None:
            log.info("folders_owned", node=self.node)
        self._folders_until = until if held else None
        return held

    async def let_go(self) -> None:
        """Give up the folder lease (a clean stop): another node may take it at once."""
        if self._folders_until is not None:
            self._folders_until = None
            await asyncio.to_thread(self.leases.release_lease, FOLDERS, self.node)
