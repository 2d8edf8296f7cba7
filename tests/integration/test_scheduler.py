"""The scheduler wrapper: jobs never overlap, and stopping lets a running pass finish."""

from __future__ import annotations

import asyncio

from gateway.daemon.scheduler import Scheduler


async def test_stop_waits_for_running_job_instead_of_cancelling() -> None:
    """A delivery pass in progress at shutdown completes; it is not cancelled half-way."""
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def job() -> None:
        started.set()
        await release.wait()
        finished.append("done")

    scheduler = Scheduler()
    scheduler.every("delivery", 3600, job)
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0)  # let stop() begin waiting
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert finished == ["done"]


async def test_jobs_are_single_instance_and_coalesced() -> None:
    """Each job is registered with max_instances=1 and coalesce=True."""
    scheduler = Scheduler()

    async def job() -> None:
        return None

    scheduler.every("delivery", 5, job)
    scheduler.every("inbox", 1, job)
    jobs = {j.id: j for j in scheduler._scheduler.get_jobs()}
    assert set(jobs) == {"delivery", "inbox"}
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
