"""The periodic jobs: delivery pass, inbox scan and housekeeping, on APScheduler 3.

Queue state lives in our tables, not in an APScheduler job store: the jobs only call
``tick()``/``scan()``. ``max_instances=1`` and ``coalesce=True`` mean a slow pass is never run
twice at once and missed runs collapse into one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.logs import get_logger

log = get_logger("gateway.scheduler")


class Scheduler:
    """Thin wrapper that registers our interval jobs on an ``AsyncIOScheduler``."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self._running: set[asyncio.Task[Any]] = set()

    def _guarded(
        self, name: str, job: Callable[[], Awaitable[Any]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await job()
            except Exception:
                log.exception("job_failed", job=name)
            finally:
                if task is not None:
                    self._running.discard(task)

        return run

    def every(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        """Run ``job`` every ``seconds``, first right away, never overlapping itself."""
        self._scheduler.add_job(
            self._guarded(name, job),
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
            misfire_grace_time=None,
        )

    def start(self) -> None:
        """Start running jobs on the current event loop."""
        self._scheduler.start()

    async def stop(self) -> None:
        """Stop starting runs, let the runs in progress finish, then shut down.

        APScheduler 3's asyncio executor cancels running coroutine jobs on shutdown, which
        would cut a delivery short; pausing first and waiting avoids that.
        """
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
        self._scheduler.shutdown(wait=False)

    @property
    def job_ids(self) -> list[str]:
        """The registered jobs, for status and tests."""
        return [job.id for job in self._scheduler.get_jobs()]
