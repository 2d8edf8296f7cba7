"""Intake preparation in worker processes, so that the daemon uses more than one core.

Python runs one thread at a time per process, so the daemon's HTTP server, group commit,
delivery and intake preparation (validation, translation, the dossier rules, the retour:
``Preparation.prepare``) all share one core, however many the machine has. Preparation is
the CPU-heavy part and needs nothing the event loop process holds in memory: the settings, a
store to read the register and the translation ledger from, and the message. With
``[server] prepare_workers = N`` the daemon starts N processes that each build the same
service from the same settings and prepare the messages sent to them over a pipe. The parent
keeps everything else, so intake means what it meant with worker threads:

- the parent holds the client locks from before a message is sent to a worker until its
  records are committed, as it does around a worker thread;
- each message carries the parent's time and operator holds, so a worker decides as the
  parent would have at that moment, and tests that inject a clock keep control of it;
- a worker reads through a store connection of its own, which sees committed data only, like
  the parent's threads;
- a worker that dies fails only the messages it held (up to :data:`JOBS_IN_FLIGHT`), like any
  processing failure (stored as ``received``, processed again by housekeeping), and is started
  anew.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from gateway.config import Settings
from gateway.core.errors import ConfigError, GatewayError
from gateway.daemon.memory import freeze_startup_objects, limit_malloc_arenas
from gateway.logs import configure_logging, get_logger
from gateway.service.preparation import PrepareJob
from gateway.store.base import IntakeRecord

log = get_logger("gateway.prepare_workers")

JOBS_IN_FLIGHT = 4
"""Messages a worker may have queued in its pipe: while it prepares one, the next is already
there, so it does not wait for the event loop between messages."""
LARGE_JOB_BYTES = 64 * 1024
"""A message at least this large is written to a worker's pipe from a thread (the write may
wait until the worker reads, which must not stop the event loop)."""
START_TIMEOUT_SECONDS = 120.0
"""How long a new worker may take to load schemas, mappings and lists before it counts as failed."""
STOP_TIMEOUT_SECONDS = 10.0

_READY = "ready"
_FAILED = "failed"


class PrepareWorkerLostError(GatewayError):
    """A prepare worker died (or its pipe broke) while it held a message."""


@dataclass(frozen=True, slots=True)
class _Reply:
    record: IntakeRecord | None
    error: str | None = None


def run_worker(settings: Settings, conn: Connection, build: Callable[[Settings], Any]) -> None:
    """A worker process's whole life: build the service, then prepare jobs until told to stop.

    The parent decides when workers stop (it sends ``None`` or closes the pipe): SIGINT from a
    terminal and SIGTERM from a service manager reach the whole process group, and a worker
    stopping on its own would fail the message it holds.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_malloc_arenas()
    configure_logging(json=True)
    try:
        service = build(settings)
    except Exception as exc:  # reported to the parent, which stops with the reason
        conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))
        return
    conn.send((_READY, freeze_startup_objects()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if job is None:
            return
        conn.send(_prepare(service, job))


def _prepare(service: Any, job: PrepareJob) -> _Reply:
    sender = service.registry.get(job.sender)
    if sender is None:
        return _Reply(None, f"unknown sender {job.sender!r}")
    try:
        record = service.preparation.prepare_as_of(job, sender)
    except Exception as exc:
        log.exception("prepare_failed", message_id=job.received.id, party=job.sender)
        return _Reply(None, f"{type(exc).__name__}: {exc}")
    return _Reply(record)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    # Replies come back in the order the jobs were sent.
    pending: collections.deque[asyncio.Future[_Reply]] = field(default_factory=collections.deque)
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    frozen_objects: int = 0
    """How many start-up objects the worker froze out of the garbage collector's reach."""


class PreparePool:
    """The parent's side: a fixed number of worker processes, each with up to
    :data:`JOBS_IN_FLIGHT` messages sent to it and not answered yet."""

    def __init__(self, settings: Settings, size: int, build: Callable[[Settings], Any]) -> None:
        """``build`` makes a worker's service from the settings (a module-level function: it
        is sent to the new process by name)."""
        if size < 1:
            raise ValueError("a prepare pool needs at least one worker")
        self._settings = settings
        self._build = build
        self._size = size
        self._context = multiprocessing.get_context("spawn")
        # One entry per free job slot of a worker; None wakes the waiters when the last worker
        # is gone and cannot be started again.
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._respawns: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def available(self) -> bool:
        """False once every worker is gone and none is starting (intake prepares in-process)."""
        return bool(self._workers or self._respawns)

    def pids(self) -> list[int]:
        """The process ids of the running workers (for operators and tests)."""
        return sorted(w.process.pid for w in self._workers if w.process.pid is not None)

    async def start(self) -> None:
        """Start every worker and wait until each has loaded what it needs.

        Raises ``ConfigError`` when a worker cannot build the service (the parent would have
        failed the same way before serving, so this only happens when files change between).
        """
        started = await asyncio.gather(
            *(asyncio.to_thread(self._spawn) for _ in range(self._size)),
            return_exceptions=True,
        )
        failures = [s for s in started if isinstance(s, BaseException)]
        for worker in started:
            if isinstance(worker, _Worker):
                self._adopt(worker)
        if failures:
            await self.close()
            raise failures[0]

    async def prepare(self, job: PrepareJob) -> IntakeRecord:
        """The intake record a worker made of ``job``; raises ``PrepareWorkerLostError`` or
        ``GatewayError`` (with the worker's reason) when it made none."""
        worker = await self._free_slot()
        done: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        try:
            async with worker.sending:  # one writer per pipe, so messages never interleave
                # Queued before the write: the reply may come while a large one is written.
                worker.pending.append(done)
                if len(job.raw) < LARGE_JOB_BYTES:
                    worker.conn.send(job)
                else:
                    await asyncio.to_thread(worker.conn.send, job)
        except (OSError, ValueError) as exc:
            if done in worker.pending:
                worker.pending.remove(done)  # this caller gets the error instead
            self._lost(worker)
            raise PrepareWorkerLostError("a prepare worker's pipe broke") from exc
        reply = await done
        if reply.record is None:
            raise GatewayError(f"preparing in a worker failed: {reply.error}")
        return reply.record

    async def _free_slot(self) -> _Worker:
        while True:
            worker = await self._idle.get()
            if worker is None:
                self._idle.put_nowait(None)  # for the next waiter
                raise PrepareWorkerLostError("no prepare worker is running")
            if worker in self._workers:
                return worker
            # A slot of a worker that died meanwhile: take the next one.

    async def settled(self) -> None:
        """Wait until every worker being started anew has started (or failed to start)."""
        while self._respawns:
            await asyncio.gather(*self._respawns, return_exceptions=True)

    async def close(self) -> None:
        """Stop every worker; call after intake has drained (workers are idle then)."""
        self._closing = True
        for task in list(self._respawns):
            task.cancel()
        workers = list(self._workers)
        for worker in workers:
            self._forget(worker)
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        await asyncio.gather(*(asyncio.to_thread(_stop, w) for w in workers))

    # -- plumbing --

    def _spawn(self) -> _Worker:
        """Start one worker and wait for its first word (in a thread: this blocks)."""
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=run_worker,
            args=(self._settings, child_end, self._build),
            name="gateway-prepare",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        try:
            if not parent_end.poll(START_TIMEOUT_SECONDS):
                raise ConfigError(
                    f"a prepare worker did not start within {START_TIMEOUT_SECONDS:.0f} s"
                )
            status, detail = parent_end.recv()
        except (EOFError, OSError) as exc:
            _stop(worker)
            raise ConfigError("a prepare worker exited while starting") from exc
        except ConfigError:
            _stop(worker)
            raise
        if status != _READY:
            _stop(worker)
            raise ConfigError(f"a prepare worker could not start: {detail}")
        worker.frozen_objects = int(detail)
        return worker

    def _adopt(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        self._workers.add(worker)
        loop.add_reader(worker.conn.fileno(), self._on_readable, worker)
        for _ in range(JOBS_IN_FLIGHT):
            self._idle.put_nowait(worker)
        log.info(
            "prepare_worker_started",
            pid=worker.process.pid,
            frozen_objects=worker.frozen_objects,
        )

    def _on_readable(self, worker: _Worker) -> None:
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        if not worker.pending:
            log.error("prepare_worker_unexpected_reply", pid=worker.process.pid)
            return
        done = worker.pending.popleft()
        # The slot goes back here, not in prepare(): a caller cancelled while its job was out
        # would otherwise never give it back.
        self._idle.put_nowait(worker)
        if not done.done():
            done.set_result(reply)

    def _lost(self, worker: _Worker) -> None:
        if worker not in self._workers:
            return
        self._forget(worker)
        exit_code = worker.process.exitcode
        log.error("prepare_worker_lost", pid=worker.process.pid, exit_code=exit_code)
        while worker.pending:
            done = worker.pending.popleft()
            if not done.done():
                done.set_exception(PrepareWorkerLostError("a prepare worker died"))
        asyncio.get_running_loop().run_in_executor(None, _stop, worker)
        if not self._closing:
            task = asyncio.get_running_loop().create_task(self._respawn())
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)

    def _forget(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        with contextlib.suppress(OSError, ValueError):  # the pipe may be closed already
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())

    async def _respawn(self) -> None:
        try:
            worker = await asyncio.to_thread(self._spawn)
        except Exception:
            log.exception("prepare_worker_restart_failed")
            if not self._workers and len(self._respawns) <= 1:
                self._idle.put_nowait(None)
            return
        if self._closing:
            await asyncio.to_thread(_stop, worker)
            return
        self._adopt(worker)


def _stop(worker: _Worker) -> None:
    """Wait for a worker to exit (it was told to, or died), ending it if it does not."""
    worker.process.join(STOP_TIMEOUT_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(STOP_TIMEOUT_SECONDS)
    worker.conn.close()
