"""Many intake records and state moves in one transaction and one fsync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.core.errors import IllegalTransition
from gateway.logs import get_logger
from gateway.store.base import BatchResult, IntakeRecord, Move, Saved

log = get_logger("gateway.service")

T = TypeVar("T")

GROUP_COMMIT_MAX_BATCH = 64
"""Most intake records committed in one transaction (bounds the time one commit holds the
write lock and the work repeated when a batch fails and is retried record by record)."""


class GroupCommit:
    """Writes the intake records and state moves of concurrent tasks together: one
    transaction and one fsync for many messages.

    Each caller awaits its own future, which resolves only after the transaction holding its
    record or move has committed, so an acknowledgement still means "durably stored" and a
    move still returns only once it is recorded. One writer task runs while work waits and
    takes up to ``max_batch`` records and ``max_batch`` moves per transaction; what arrives
    during a commit forms the next batch, so there is no timer and an idle gateway commits a
    lone record at once. Delivery's moves ride along with intake's commits instead of paying
    an fsync each. When a batch fails its items are retried one by one: one bad item fails
    alone, and records a failed commit did store come back as re-submissions of themselves
    (intake is idempotent), never twice.
    """

    def __init__(
        self,
        write: Callable[[Sequence[IntakeRecord], Sequence[Move]], BatchResult],
        max_batch: int = GROUP_COMMIT_MAX_BATCH,
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        # A thread of its own: in the shared pool the writer would queue behind validations
        # and outbox fsyncs, and every request waiting for this commit would wait with it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._records: list[tuple[IntakeRecord, asyncio.Future[Saved]]] = []
        self._moves: list[tuple[Move, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0
        self.records = 0
        self.moves = 0
        self.seconds = 0.0

    async def save(self, record: IntakeRecord) -> Saved:
        """Store ``record`` with the next batch; returns once that batch has committed."""
        done: asyncio.Future[Saved] = asyncio.get_running_loop().create_future()
        self._records.append((record, done))
        self._wake()
        return await done

    async def move(self, move: Move) -> None:
        """Make ``move`` with the next batch; ``IllegalTransition`` if the message moved first."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._moves.append((move, done))
        self._wake()
        if not await done:
            claim = " under this claim" if move.lease is not None else ""
            raise IllegalTransition(
                f"message {move.moved.id} is no longer {move.expected}{claim}; "
                f"not moved to {move.moved.state}"
            )

    async def flush(self) -> None:
        """Wait until everything handed in so far has been committed (or has failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())

    async def _write_all(self) -> None:
        while self._records or self._moves:
            records = self._records[: self.max_batch]
            moves = self._moves[: self.max_batch]
            del self._records[: self.max_batch], self._moves[: self.max_batch]
            try:
                await self._commit(records, moves)
            except asyncio.CancelledError:
                for _, saved_done in (*records, *self._records):
                    saved_done.cancel()
                for _, moved_done in (*moves, *self._moves):
                    moved_done.cancel()
                self._records.clear()
                self._moves.clear()
                raise

    async def _commit(
        self,
        records: list[tuple[IntakeRecord, asyncio.Future[Saved]]],
        moves: list[tuple[Move, asyncio.Future[bool]]],
    ) -> None:
        started = time.perf_counter()
        try:
            result = await self._in_thread([r for r, _ in records], [m for m, _ in moves])
        except Exception as exc:
            if len(records) + len(moves) == 1:
                for _, saved_done in records:
                    _fail(saved_done, exc)
                for _, moved_done in moves:
                    _fail(moved_done, exc)
                return
            log.warning("batch_failed", records=len(records), moves=len(moves), error=str(exc))
            await self._one_by_one(records, moves)
            return
        self._count(len(records), len(moves), started)
        for (_, saved_done), saved in zip(records, result.saved, strict=True):
            _resolve(saved_done, saved)
        for (_, moved_done), moved in zip(moves, result.moved, strict=True):
            _resolve(moved_done, moved)

    async def _one_by_one(
        self,
        records: list[tuple[IntakeRecord, asyncio.Future[Saved]]],
        moves: list[tuple[Move, asyncio.Future[bool]]],
    ) -> None:
        for record, saved_done in records:
            started = time.perf_counter()
            try:
                result = await self._in_thread([record], [])
            except Exception as exc:
                _fail(saved_done, exc)
            else:
                self._count(1, 0, started)
                _resolve(saved_done, result.saved[0])
        for move, moved_done in moves:
            started = time.perf_counter()
            try:
                result = await self._in_thread([], [move])
            except Exception as exc:
                _fail(moved_done, exc)
            else:
                self._count(0, 1, started)
                _resolve(moved_done, result.moved[0])

    async def _in_thread(self, records: list[IntakeRecord], moves: list[Move]) -> BatchResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._write, records, moves)

    def _count(self, records: int, moves: int, started: float) -> None:
        self.commits += 1
        self.records += records
        self.moves += moves
        self.seconds += time.perf_counter() - started

    def counters(self) -> dict[str, float]:
        """The totals for ``/metrics`` (see :data:`gateway.metrics.WRITE_BATCH_COUNTERS`)."""
        return {
            "gateway_write_batches_total": self.commits,
            "gateway_write_batch_records_total": self.records,
            "gateway_write_batch_moves_total": self.moves,
            "gateway_write_batch_seconds_total": self.seconds,
        }


def _resolve(done: asyncio.Future[T], value: T) -> None:
    if not done.done():  # a caller that went away: what was committed stays committed
        done.set_result(value)


def _fail(done: asyncio.Future[Any], error: Exception) -> None:
    if not done.done():
        done.set_exception(error)
