"""The group commit: concurrent intake records and moves share transactions, failures stay apart."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Sequence

import pytest

from gateway.core.errors import IllegalTransition, StoreError
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.service.group_commit import GroupCommit
from gateway.store.base import BatchResult, IntakeRecord, Move, Saved

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def _record(number: int) -> IntakeRecord:
    msg = Message(
        id=f"M{number:04d}",
        state=State.RECEIVED,
        sender="diemen",
        recipient=None,
        message_type="JW301",
        bericht_id=f"B{number}",
        content_hash=f"h{number}",
        size=1,
        received_at=AT,
        updated_at=AT,
    )
    return IntakeRecord(msg, b"x", "party:diemen")


def _move(number: int) -> Move:
    msg = Message(
        id=f"Q{number:04d}",
        state=State.QUEUED,
        sender="diemen",
        recipient="provider-a",
        message_type="JW301",
        bericht_id=None,
        content_hash="h",
        size=1,
        received_at=AT,
        updated_at=AT,
    )
    moved, event = advance(msg, State.HELD, "paused", "scheduler", AT)
    return Move(moved, event, State.QUEUED)


class FakeStore:
    """Records each batch; a gate holds the first commit so others pile up behind it."""

    def __init__(self, bad: frozenset[str] = frozenset(), stale: frozenset[str] = frozenset()):
        self.batches: list[tuple[list[str], list[str]]] = []
        self.bad = bad
        self.stale = stale
        self.gate = threading.Event()
        self.gate.set()

    def write_batch(self, records: Sequence[IntakeRecord], moves: Sequence[Move]) -> BatchResult:
        self.gate.wait(timeout=10)
        ids = [r.message.id for r in records]
        moved = [m.moved.id for m in moves]
        if self.bad & {*ids, *moved}:
            raise StoreError("database constraint violated while saving received messages")
        self.batches.append((ids, moved))
        return BatchResult(
            [Saved(r.message, created=True) for r in records],
            [m.moved.id not in self.stale for m in moves],
        )


async def test_waiting_work_is_committed_together_after_the_running_commit() -> None:
    """While one commit runs, later records and moves gather and share the next transaction."""
    store = FakeStore()
    commits = GroupCommit(store.write_batch)
    store.gate.clear()
    first = asyncio.create_task(commits.save(_record(0)))
    await asyncio.sleep(0)  # the writer takes the first record and blocks on the gate
    rest = [asyncio.create_task(commits.save(_record(n))) for n in range(1, 6)]
    moving = asyncio.create_task(commits.move(_move(1)))
    await asyncio.sleep(0)
    store.gate.set()
    saved = await asyncio.gather(first, *rest)
    await moving
    assert [s.message.id for s in saved] == [f"M{n:04d}" for n in range(6)]
    assert store.batches == [
        (["M0000"], []),
        ([f"M{n:04d}" for n in range(1, 6)], ["Q0001"]),
    ]
    assert commits.counters()["gateway_write_batches_total"] == 2


async def test_batches_are_bounded() -> None:
    """No transaction carries more than ``max_batch`` records."""
    store = FakeStore()
    commits = GroupCommit(store.write_batch, max_batch=4)
    store.gate.clear()
    tasks = [asyncio.create_task(commits.save(_record(n))) for n in range(10)]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(*tasks)
    assert [len(ids) for ids, _ in store.batches] == [4, 4, 2]


async def test_a_failing_batch_is_retried_one_by_one() -> None:
    """One bad record fails alone with the store's error; the rest of its batch is stored."""
    store = FakeStore(bad=frozenset({"M0002"}))
    commits = GroupCommit(store.write_batch)
    store.gate.clear()
    tasks = [asyncio.create_task(commits.save(_record(n))) for n in range(4)]
    moving = asyncio.create_task(commits.move(_move(1)))
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*tasks, moving, return_exceptions=True)
    assert isinstance(results[2], StoreError)
    assert [r.message.id for r in results[:2] + results[3:4]] == ["M0000", "M0001", "M0003"]  # type: ignore[union-attr]
    assert results[4] is None
    stored = [i for ids, _ in store.batches for i in ids]
    assert sorted(stored) == ["M0000", "M0001", "M0003"]


async def test_a_stale_move_raises_illegal_transition_only_for_its_caller() -> None:
    """A move the store reports as lost raises IllegalTransition; its batch-mates succeed."""
    store = FakeStore(stale=frozenset({"Q0002"}))
    commits = GroupCommit(store.write_batch)
    store.gate.clear()
    tasks = [asyncio.create_task(commits.move(_move(n))) for n in range(1, 4)]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IllegalTransition)


async def test_flush_waits_for_work_handed_in() -> None:
    """``flush`` returns only once every record handed in has been committed."""
    store = FakeStore()
    commits = GroupCommit(store.write_batch)
    store.gate.clear()
    task = asyncio.create_task(commits.save(_record(1)))
    await asyncio.sleep(0)
    flushing = asyncio.create_task(commits.flush())
    await asyncio.sleep(0.01)  # gives a wrong flush the chance to return early
    assert not flushing.done()
    store.gate.set()
    await flushing
    assert task.done() and store.batches == [(["M0001"], [])]


async def test_a_caller_that_goes_away_does_not_undo_the_commit() -> None:
    """Cancelling a waiting submission leaves its record committed and the writer running."""
    store = FakeStore()
    commits = GroupCommit(store.write_batch)
    store.gate.clear()
    gone = asyncio.create_task(commits.save(_record(1)))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    store.gate.set()
    assert (await commits.save(_record(2))).created
    assert store.batches == [(["M0001"], []), (["M0002"], [])]
