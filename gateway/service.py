"""The gateway's use cases, shared by the HTTP server, the inbox watcher, delivery and the CLI.

Intake processes a message before its first commit and then stores everything at once: it
validates (in a worker thread, so large files do not stall the event loop), decides with the
pure :mod:`gateway.core.pipeline`, builds the retour when the gateway answers for the
recipient, and makes the ``received`` → ``queued``/``held``/``rejected`` move with
``core.lifecycle.advance``. One :meth:`Store.save_intake` transaction then writes the raw
bytes, the final state, the events, the findings and the retour together, batched with the
submissions of other requests (:class:`GroupCommit`). Once :meth:`GatewayService.submit`
returns, the message survives a crash; a crash before the commit means no acknowledgement
was given. When processing fails the message is stored as ``received`` and housekeeping
processes it again. Later moves go through ``advance`` and ``Store.apply_transition``;
nothing else changes a message's state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.clock import Clock, FixedClock
from gateway.core.catalogue import MESSAGE_KINDS, Role
from gateway.core.correlate import Correlation, correlation_of
from gateway.core.dossier import History, RegisterUpdate
from gateway.core.errors import GatewayError, IllegalTransition
from gateway.core.ledger import LedgerEntry, LedgerKey, TranslationLedger
from gateway.core.lifecycle import advance, return_unattempted, waits_for_mapping_decision
from gateway.core.lists import ExternalLists
from gateway.core.model import Direction, Event, Message, State
from gateway.core.pipeline import (
    MESSAGE_HOLD,
    OPERATOR_HOLD,
    Decision,
    decide,
    gateway_answers,
    needs_dossier,
    placement,
    register_update,
    with_dossier_findings,
)
from gateway.core.privacy import client_key
from gateway.core.report import ValidationReport
from gateway.core.retour import RetourError, RetourIdentity, build_retour_for_report
from gateway.core.route import Channel, Party, PartyRegistry
from gateway.core.rules import RuleContext
from gateway.core.rules.provider import warnings_only
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.logs import about_message, get_logger
from gateway.metrics import Metrics
from gateway.prepare_workers import PrepareJob, PreparePool
from gateway.store.base import (
    BatchResult,
    IntakeRecord,
    MessageQuery,
    Move,
    Saved,
    Store,
    TranslationRecord,
)
from gateway.translator import (
    NEEDS_MAPPING_DECISION,
    Decided,
    StoreLedger,
    Translator,
    answer_report,
    hold_reason,
    waits_for_decision,
)
from gateway.volume import IntakeVolume, VolumeLimits

log = get_logger("gateway.service")

# A message stored ``received`` (its prepare worker died, or processing failed) is taken up by
# the reprocessing pass once it is this old (so a step that just failed is not retried in a
# tight loop); with STUCK_SCAN_SECONDS between passes it waits at most their sum, under the
# minute the operator guide promises.
STUCK_AFTER = dt.timedelta(seconds=30)
STUCK_SCAN_SECONDS = 20.0

T = TypeVar("T")

_BERICHTCODE = re.compile(rb"<(?:[\w.-]+:)?BerichtCode>\s*(\d{3})\s*<")
_IDENTIFICATIE = re.compile(
    rb"<(?:[\w.-]+:)?BerichtIdentificatie>\s*<(?:[\w.-]+:)?Identificatie>\s*([^<\s]{1,40})\s*<"
)
_BSN = re.compile(rb"<(?:[\w.-]+:)?Bsn>\s*(\d{9})\s*<")
_ONTVANGER = re.compile(rb"<(?:[\w.-]+:)?Ontvanger>\s*([^<\s]{1,20})\s*<")
_TYPE_BY_CODE = {kind.berichtcode: kind.name for kind in MESSAGE_KINDS.values()}
_SNIFF_BYTES = 4096
_PAGE = 500

HistoryFactory = Callable[[Collection[str], Collection[str]], History]
"""Builds the dossier history for one message from (its plain BSNs, message ids to leave out)."""

GROUP_COMMIT_MAX_BATCH = 64
"""Most intake records committed in one transaction (bounds the time one commit holds the
write lock and the work repeated when a batch fails and is retried record by record)."""


class IntakeClosedError(GatewayError):
    """The gateway is shutting down and accepts no new messages."""


class MessageTooLargeError(GatewayError):
    """The message is larger than the configured limit."""


class NotFoundError(GatewayError):
    """No such message, or not one the asking party may see."""


class OperatorRefusedError(GatewayError):
    """The operator action does not apply to the message in its current state."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a submission: the stored message and whether this call created it."""

    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a party (or operator) may see of a message."""

    message: Message
    history: list[Event]
    findings: list[dict[str, Any]]


def sniff_header(raw: bytes) -> tuple[str | None, str | None]:
    """Message type and BerichtIdentificatie from the first bytes, without parsing.

    Only for the intake record (listings, idempotency); validation reads the real header.
    """
    head = raw[:_SNIFF_BYTES]
    code = _BERICHTCODE.search(head)
    ident = _IDENTIFICATIE.search(head)
    message_type = _TYPE_BY_CODE.get(code.group(1).decode()) if code else None
    bericht_id = ident.group(1).decode("utf-8", "replace") if ident else None
    return message_type, bericht_id


def sniff_bsns(raw: bytes) -> list[str]:
    """The distinct BSNs a message names, sorted; read without parsing (a JW323 may name
    many clients)."""
    return sorted({match.group(1).decode() for match in _BSN.finditer(raw)})


def client_keys(raw: bytes) -> list[str]:
    """The client keys of the BSNs in a message, sorted (the order locks are taken in)."""
    return sorted({client_key(bsn) for bsn in sniff_bsns(raw)})


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


class MessageLedger:
    """The store's translation ledger as one message's translation reads it: a question asked
    again is answered from memory (translation asks for a product's pair up to three times, and
    each answer from the store is a query).

    Serves one message's check only, under that message's client locks, like the dossier
    history; a pair recorded through it is forgotten, so the next read asks the store again.
    """

    def __init__(self, ledger: TranslationLedger) -> None:
        self._ledger = ledger
        self._entries: dict[LedgerKey, LedgerEntry | None] = {}
        self._requests: dict[tuple[str, str], tuple[LedgerEntry, ...]] = {}

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for ``key``, or None."""
        if key in self._entries:
            return self._entries[key]
        found = self._entries[key] = self._ledger.get(key)
        return found

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request entry of a ReferentieAanbieder."""
        asked = (gemeente, referentie)
        found = self._requests.get(asked)
        if found is None:
            found = self._requests[asked] = self._ledger.requests(gemeente, referentie)
        return found

    def record(self, entry: LedgerEntry) -> None:
        """Store a pair in the underlying ledger (see :class:`TranslationLedger`)."""
        self._entries.pop(entry.key, None)
        self._requests.clear()
        self._ledger.record(entry)


def retour_identificatie(original_id: str) -> str:
    """A stable 12-character IdentificatieRetour, so re-processing builds the same retour."""
    return hashlib.sha256(original_id.encode()).hexdigest()[:12].upper()


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


class GatewayService:
    """Receive, process, show and operate on messages."""

    def __init__(
        self,
        *,
        store: Store,
        registry: PartyRegistry,
        schemas: SchemaSet,
        clock: Clock,
        max_message_bytes: int,
        lease: dt.timedelta = dt.timedelta(seconds=120),
        metrics: Metrics | None = None,
        translator: Translator | None = None,
        history: HistoryFactory | None = None,
        lists: ExternalLists | None = None,
        volume: VolumeLimits | None = None,
        free_disk: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.history = history
        self.lists = lists
        self._client_locks = ClientLocks()
        self.translator = translator
        self._ledger = StoreLedger(store)
        self.registry = registry
        self.schemas = schemas
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.accepting = True
        self._holds: dict[str, str] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.commits = GroupCommit(self._write_batch)
        self.volume = IntakeVolume(volume or VolumeLimits(), self._received_bytes, free_disk)
        # Set by the composition root when [server] prepare_workers asks for worker processes.
        self.prepare_pool: PreparePool | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _write_batch(self, records: Sequence[IntakeRecord], moves: Sequence[Move]) -> BatchResult:
        # Looked up at each commit, so a store method replaced at run time (tests) is used.
        return self.store.write_batch(records, moves)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous store call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def move(
        self,
        msg: Message,
        to: State,
        reason: str,
        actor: str,
        *,
        attempted: bool = True,
        **changes: object,
    ) -> Message:
        """Move a message through the lifecycle and record it (compare-and-set in the store).

        ``attempted=False`` returns an unattempted claim without counting an attempt.
        """
        now = self.clock.now()
        if attempted:
            moved, event = advance(msg, to, reason, actor, now, **changes)
        elif to is State.QUEUED and not changes:
            moved, event = return_unattempted(msg, reason, actor, now)
        else:
            raise ValueError("only a claim returned to queued, unchanged, can be unattempted")
        # Out of ``sending`` only while the row still carries this claim (see Move.lease).
        claim = msg.lease_until if msg.state is State.SENDING else None
        await self.commits.move(Move(moved, event, msg.state, claim))
        log.info(
            "message_moved",
            message_id=msg.id,
            party=moved.recipient or moved.sender,
            from_state=msg.state.value,
            state=to.value,
            reason=reason,
            actor=actor,
        )
        return moved

    def today(self) -> dt.date:
        """The gateway's date (UTC) for readiness and rule checks."""
        return self.clock.now().date()

    @property
    def holds(self) -> dict[str, str]:
        """Parties on operator hold, as last read from the store."""
        return dict(self._holds)

    async def refresh_holds(self) -> dict[str, str]:
        """Re-read operator holds (another process, e.g. the CLI, may have changed them)."""
        self._holds = await self._db(self.store.party_holds)
        return self.holds

    async def _received_bytes(self, party: str, since: dt.datetime) -> int:
        return await self._db(self.store.received_bytes, party, since)

    async def healthy(self) -> bool:
        """True when the store answers (any driver error counts as unhealthy)."""
        try:
            return await self._db(self.store.healthy)
        except Exception:
            return False

    async def render_metrics(self) -> bytes:
        """Prometheus text (:mod:`gateway.metrics`); the store figures are read now."""
        return await asyncio.to_thread(self.metrics.render)

    def stop_intake(self) -> None:
        """Refuse new submissions from now on (shutdown)."""
        self.accepting = False

    async def drain(self) -> None:
        """Wait until every submission already accepted has been stored and processed."""
        await self._idle.wait()
        await self.commits.flush()

    # -- intake -----------------------------------------------------------------------------

    async def submit(self, party: Party, raw: bytes, actor: str) -> Receipt:
        """Store ``raw`` durably as sent by ``party``, then process it once.

        Raises ``IntakeClosedError``, ``MessageTooLargeError``, ``QuotaExceededError`` (the
        party's window allowance is used up), ``StorageFullError`` (the disk is at its floor)
        or ``StoreError``; then nothing was stored. Re-submitting the same bytes returns the
        stored message without processing it again.
        """
        if not self.accepting:
            raise IntakeClosedError()
        if len(raw) > self.max_message_bytes:
            raise MessageTooLargeError(
                f"message is {len(raw)} bytes; the limit is {self.max_message_bytes}"
            )
        self._in_flight += 1
        self._idle.clear()
        receipt: Receipt | None = None
        try:
            reservation = await self.volume.reserve(party.id, len(raw), self.clock.now())
            try:
                receipt = await self._submit(party, raw, actor)
            finally:
                self.volume.settle(reservation, stored=receipt is not None and receipt.created)
            return receipt
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _submit(self, party: Party, raw: bytes, actor: str) -> Receipt:
        now = self.clock.now()
        message_type, bericht_id = sniff_header(raw)
        received = Message(
            id=self.store.new_message_id(now),
            state=State.RECEIVED,
            sender=party.id,
            recipient=None,
            message_type=message_type,
            bericht_id=bericht_id,
            content_hash=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            received_at=now,
            updated_at=now,
        )
        # Two messages about one client must not both pass a uniqueness rule: each sees the
        # other's register entries only once committed, so the lock spans check and commit.
        clients = self._checked_clients(raw, message_type)
        if clients:
            async with self._client_locks.hold(clients):
                record, saved = await self._prepare_and_save(received, raw, party, actor)
        else:
            record, saved = await self._prepare_and_save(received, raw, party, actor)
        msg = saved.message
        self.metrics.inc("received", party.id)
        if not saved.created:
            log.info(
                "message_resubmitted", message_id=msg.id, party=party.id, state=msg.state.value
            )
            return Receipt(msg, created=False)
        if msg.state is State.REJECTED:
            self.metrics.inc("rejected", party.id)
        log.info(
            "message_received",
            message_id=msg.id,
            party=party.id,
            actor=actor,
            size=msg.size,
            message_type=msg.message_type,
            state=msg.state.value,
            recipient=msg.recipient,
            reason=msg.reason,
            retour=record.retour.message.id if record.retour is not None else None,
        )
        return Receipt(msg, created=True)

    async def _prepare_and_save(
        self, received: Message, raw: bytes, party: Party, actor: str
    ) -> tuple[IntakeRecord, Saved]:
        with about_message(received.id):
            try:
                record = await self._prepare_somewhere(received, raw, party, actor)
            except Exception:
                # Stored as received all the same: housekeeping processes it again later, and
                # the sender's acknowledgement stands because nothing acknowledged may be lost.
                log.exception("processing_failed", message_id=received.id, party=party.id)
                record = IntakeRecord(received, raw, actor)
            return record, await self.commits.save(record)

    async def _prepare_somewhere(
        self, received: Message, raw: bytes, party: Party, actor: str
    ) -> IntakeRecord:
        """:meth:`_prepare` in a prepare worker process when the pool has one, else in a
        thread of this process."""
        pool = self.prepare_pool
        if pool is None or not pool.available:
            return await asyncio.to_thread(self._prepare, received, raw, party, actor)
        job = PrepareJob(received, raw, party.id, actor, self.clock.now(), dict(self._holds))
        return await pool.prepare(job)

    def prepare_as_of(self, job: PrepareJob, sender: Party) -> IntakeRecord:
        """:meth:`_prepare` in a prepare worker process: as of the parent's moment and with
        the parent's operator holds, both carried by ``job``, so it decides as the parent
        would have."""
        self.clock = FixedClock(job.now)
        self._holds = job.holds  # the job's own copy, unpickled in this process
        return self._prepare(job.received, job.raw, sender, job.actor)

    def _checked_clients(self, raw: bytes, message_type: str | None) -> list[str]:
        """The client keys to lock while ``raw`` is checked and committed: only a message the
        gateway answers for runs the uniqueness rules, so only its clients are serialised (a
        header that cannot be sniffed is locked all the same, to be safe)."""
        found = _ONTVANGER.search(raw, 0, _SNIFF_BYTES)
        if found is None or message_type is None:
            return client_keys(raw)
        recipient = self.registry.by_identity(found.group(1).decode())
        if recipient is None or not gateway_answers(message_type, recipient):
            return []
        return client_keys(raw)

    def _prepare(
        self,
        received: Message,
        raw: bytes,
        sender: Party,
        actor: str,
        replay_of: str | None = None,
        *,
        decided: Decided | None = None,
    ) -> IntakeRecord:
        """Validate, decide and answer a message not stored yet (in a worker thread).

        Also a stored message again: one left ``received`` (housekeeping), or one held for a
        mapping decision once the operator ``decided`` (translated with the decided pairs, the
        move made by the operator). Runs in one thread hop from start to end: the parts are
        synchronous and pure but for the clock and the register reads, and the operator holds
        are only read.
        """
        today = self.today()
        context = RuleContext(today=today)
        report = validate(raw, self.schemas, context, max_bytes=self.max_message_bytes)
        original = report
        ledger = decided.ledger if decided is not None else MessageLedger(self._ledger)
        report, translation = self._translate(report, sender, today, context, ledger, raw=raw)
        decision = decide(report, sender, self.registry, today, self._holds)
        # A message waiting for a mapping decision is held here, before the dossier rules:
        # they would read the sender's codes.
        decision, translation = _with_translation(decision, translation)
        if needs_dossier(report, decision):
            # After translation: the B and E rules read the recipient's (gemeente's) codes.
            rules_context = self._rule_context(today, raw, replay_of, received.id)
            context = self._for_recipient(rules_context, decision)
            report = with_dossier_findings(report, context)
            decision = decide(report, sender, self.registry, today, self._holds)
            decision, translation = _with_translation(decision, translation)
        if warnings_only(report) and not decision.rejected:
            # Delivered all the same; the rule codes only (a finding never names a BSN).
            log.warning(
                "delivered_with_provider_findings",
                message_id=received.id,
                party=sender.id,
                message_type=report.message_type,
                rules=sorted(set(report.rule_codes)),
            )
        retour = None
        if decision.answer_for is not None:
            answered = answer_report(report, original, translation)
            retour = self._retour_record(received, answered, decision, sender, today)
        changes: dict[str, object] = {}
        if report.message_type:
            changes["message_type"] = report.message_type
        if not decision.rejected and decision.recipient is not None:
            changes["recipient"] = decision.recipient.id
        reason, mover = decision.reason, "pipeline"
        if decided is not None:
            reason, mover = f"mapping decided ({decided.reason}): {reason}", decided.actor
            goes_on = not decision.rejected and not _waits_for_mapping(decision)
            if translation is not None and goes_on:
                # Like its own pairs (_with_translation), the decided ones are recorded only
                # for a message that goes on.
                known = {entry.key for entry in decided.entries}
                own = tuple(e for e in translation.entries if e.key not in known)
                translation = dataclasses.replace(translation, entries=decided.entries + own)
        moved, event = advance(received, decision.state, reason, mover, self.clock.now(), **changes)
        findings = tuple(f.as_dict() for f in report.findings)
        # A message held for a mapping decision registers nothing yet: its entries would carry
        # the sender's codes and go unjudged; they are written once the operator decides.
        register = (
            None if _waits_for_mapping(decision) else _register_update(report, original, decision)
        )
        return IntakeRecord(
            moved,
            raw,
            actor,
            (event,),
            findings,
            retour,
            _correlation(report, decision),
            translation,
            register,
        )

    def _rule_context(
        self, today: dt.date, raw: bytes, replay_of: str | None, own_id: str | None = None
    ) -> RuleContext:
        """What the rules may consult: today, the dossier register, the external lists.

        The register is read for this message's clients without the message's own entries (a
        message processed again after a crash or a mapping decision); a replay does not see its
        original's entries either, so it does not collide with itself (TR056, TR314, TR332...).
        """
        history = None
        if self.history is not None:
            excluded = tuple(i for i in (replay_of, own_id) if i is not None)
            history = self.history(sniff_bsns(raw), excluded)
        return RuleContext(today=today, history=history, lists=self.lists)

    def _for_recipient(self, context: RuleContext, decision: Decision) -> RuleContext:
        """TR381 (S329) checks the code list of the recipient's generation when it declares
        one: after translation the message carries the recipient's codes, which need not be
        on the national list."""
        recipient = decision.recipient
        if self.translator is None or recipient is None:
            return context
        generation = recipient.generation_on(context.today or self.today())
        if generation is None:
            return context
        return self.translator.receiver_context(context, generation)

    def _translate(
        self,
        report: ValidationReport,
        sender: Party,
        today: dt.date,
        context: RuleContext,
        ledger: TranslationLedger,
        *,
        raw: bytes,
    ) -> tuple[ValidationReport, TranslationRecord | None]:
        """Rewrite product codes into the recipient's generation, before the B and E rules."""
        if self.translator is None:
            return report, None
        return self.translator.apply(
            report,
            sender,
            self.registry,
            raw=raw,
            today=today,
            context=context,
            schemas=self.schemas,
            ledger=ledger,
            max_bytes=self.max_message_bytes,
        )

    def _retour_record(
        self,
        msg: Message,
        report: ValidationReport,
        decision: Decision,
        sender: Party,
        today: dt.date,
    ) -> IntakeRecord | None:
        """The retour the gateway sends back on the recipient's behalf, placed for the sender."""
        answering = decision.answer_for
        assert answering is not None
        identity = RetourIdentity(identificatie=retour_identificatie(msg.id), dagtekening=today)
        try:
            retour = build_retour_for_report(report, identity, self.schemas)
        except RetourError as exc:
            log.error("retour_failed", message_id=msg.id, party=sender.id, error=str(exc))
            return None
        now = self.clock.now()
        message_type, _ = sniff_header(retour)
        made = Message(
            id=self.store.new_message_id(now),
            state=State.RECEIVED,
            sender=answering.id,
            recipient=sender.id,
            message_type=message_type,
            bericht_id=identity.identificatie,
            content_hash=hashlib.sha256(retour).hexdigest(),
            size=len(retour),
            received_at=now,
            updated_at=now,
            direction=Direction.GENERATED,
            in_reply_to=msg.id,
        )
        state, reason = placement(sender, today, self._holds)
        placed, event = advance(
            made,
            state,
            f"retour {reason}" if state is State.QUEUED else reason,
            "pipeline",
            now,
            recipient=sender.id,
        )
        actor = f"gateway for {answering.id} by {answering.answered_by}"
        return IntakeRecord(placed, retour, actor, (event,))

    async def process(self, msg: Message, raw: bytes, sender: Party) -> Message:
        """Validate, decide, answer and move one stored ``received`` message (housekeeping).

        The same preparation as intake; only the writing differs, because the message row
        exists already: findings, the generated retour and the move are recorded in turn, each
        of them idempotent, so a crash in between is repaired by the next housekeeping pass.
        """
        async with self._client_locks.hold(client_keys(raw)):
            return await self._process_locked(msg, raw, sender)

    async def process_decided(self, message_id: str, decided: Decided) -> Message:
        """Process a message held for a mapping decision once the operator has decided.

        The same preparation as intake, translated with the decided pairs: the B and E rules
        run when the recipient is answered for, the retour goes back to the sender, and the
        register, the correlation, the findings and the translation (with the decided pairs
        in the ledger) are recorded; the message moves to ``queued``, ``held`` (recipient
        not ready) or ``rejected``. Under the client lock, as intake; ``OperatorRefusedError``
        when the message no longer waits for a decision.
        """
        msg, raw, sender = await self._decidable(message_id)
        async with self._client_locks.hold(client_keys(raw)):
            # Read again under the lock: an operator may have cancelled it meanwhile.
            msg, raw, sender = await self._decidable(message_id)
            return await self._process_locked(msg, raw, sender, decided)

    async def preview_decided(self, message_id: str, decided: Decided) -> IntakeRecord:
        """What :meth:`process_decided` would record, without writing anything (a dry run)."""
        msg, raw, sender = await self._decidable(message_id)
        replay_of = await self._db(self.store.replay_of, msg.id)
        return await asyncio.to_thread(
            self._prepare, msg, raw, sender, decided.actor, replay_of, decided=decided
        )

    async def _decidable(self, message_id: str) -> tuple[Message, bytes, Party]:
        msg = await self._db(self.store.get, message_id)
        if msg is None or not waits_for_mapping_decision(msg):
            raise OperatorRefusedError(f"message {message_id} does not wait for a mapping decision")
        raw = await self._db(self.store.payload, message_id)
        sender = self.registry.get(msg.sender)
        if raw is None or sender is None:
            raise OperatorRefusedError(
                f"message {message_id}: sender no longer configured or content purged"
            )
        return msg, raw, sender

    async def _process_locked(
        self, msg: Message, raw: bytes, sender: Party, decided: Decided | None = None
    ) -> Message:
        replay_of = await self._db(self.store.replay_of, msg.id)
        actor = "pipeline" if decided is None else decided.actor
        record = await asyncio.to_thread(
            self._prepare, msg, raw, sender, actor, replay_of, decided=decided
        )
        if record.findings or decided is not None:
            # Replacing what intake found: a decided message is judged on the translation.
            await self._db(self.store.record_findings, msg.id, list(record.findings))
        if record.retour is not None:
            await self.commits.save(record.retour)
        if record.translation is not None:
            await self._db(self.store.save_translation, msg.id, record.translation)
        if record.register is not None:
            # Before the move: once the message leaves "received" nobody writes them again.
            await self._db(self.store.record_register, msg.id, record.register, replay_of)
        (event,) = record.moves
        await self.commits.move(Move(record.message, event, msg.state))
        log.info(
            "message_moved",
            message_id=msg.id,
            party=record.message.recipient or record.message.sender,
            from_state=msg.state.value,
            state=record.message.state.value,
            reason=record.message.reason,
            actor=event.actor,
        )
        if record.message.state is State.REJECTED:
            self.metrics.inc("rejected", sender.id)
        if record.correlation is not None:
            await self._db(self.store.record_correlation, msg.id, record.correlation)
        return record.message

    async def _place(self, msg: Message, recipient: Party, what: str) -> Message:
        state, reason = placement(recipient, self.today(), self._holds)
        return await self.move(
            msg,
            state,
            f"{what} {reason}" if state is State.QUEUED else reason,
            "pipeline",
            recipient=recipient.id,
        )

    async def process_stuck(self, older_than: dt.timedelta = STUCK_AFTER) -> int:
        """Process messages left in ``received`` by a crash or a failed processing step."""
        cutoff = self.clock.now() - older_than
        stuck = await self._db(self.store.query, MessageQuery(state=State.RECEIVED, limit=_PAGE))
        done = 0
        for msg in stuck:
            if msg.received_at > cutoff:
                continue
            try:
                await self._process_again(msg)
                done += 1
            except IllegalTransition:
                continue  # another worker got there first
            except Exception:
                log.exception("reprocessing_failed", message_id=msg.id, party=msg.sender)
        return done

    async def _process_again(self, msg: Message) -> None:
        if msg.direction is Direction.GENERATED:
            recipient = self.registry.get(msg.recipient or "")
            if recipient is None:
                await self.move(msg, State.REJECTED, "recipient no longer configured", "pipeline")
            else:
                await self._place(msg, recipient, "retour")
            return
        sender = self.registry.get(msg.sender)
        raw = await self._db(self.store.payload, msg.id)
        if sender is None or raw is None:
            await self.move(
                msg, State.REJECTED, "sender no longer configured or payload gone", "pipeline"
            )
            return
        await self.process(msg, raw, sender)

    # -- what parties may see ---------------------------------------------------------------

    async def view(self, party: Party | None, message_id: str) -> MessageView:
        """A message with its history; ``party=None`` is the operator, who sees everything.

        A party sees only messages it sent or that are addressed to it; anything else is
        ``NotFoundError``, so ids of other parties' traffic reveal nothing.
        """
        msg = await self._db(self.store.get, message_id)
        if msg is None or (party is not None and party.id not in (msg.sender, msg.recipient)):
            raise NotFoundError(f"no message {message_id}")
        history = await self._db(self.store.history, message_id)
        findings = await self._db(self.store.findings, message_id)
        if party is not None and party.id != msg.sender:
            findings = []  # a recipient has no business with the sender's validation findings
        return MessageView(msg, history, findings)

    def _check_mailbox(self, party: Party) -> None:
        if party.channel is not Channel.MAILBOX:
            raise OperatorRefusedError(
                f"party {party.id} receives by {party.channel.value}, not by mailbox"
            )

    async def mailbox(self, party: Party, after: str | None, limit: int) -> list[Message]:
        """Messages waiting for ``party`` to fetch, oldest first, after the cursor."""
        self._check_mailbox(party)
        return await self._db(
            self.store.query,
            MessageQuery(recipient=party.id, state=State.QUEUED, after_id=after, limit=limit),
        )

    async def _mailbox_message(self, party: Party, message_id: str) -> Message:
        self._check_mailbox(party)
        msg = await self._db(self.store.get, message_id)
        visible = (State.QUEUED, State.SENDING, State.DELIVERED)
        if msg is None or msg.recipient != party.id or msg.state not in visible:
            raise NotFoundError(f"no message {message_id} in the mailbox of {party.id}")
        return msg

    async def mailbox_payload(self, party: Party, message_id: str) -> bytes:
        """The XML of a message in ``party``'s mailbox."""
        await self._mailbox_message(party, message_id)
        # The translated bytes when the message was translated for this party.
        raw = await self._db(self.store.delivery_payload, message_id)
        if raw is None:
            raise NotFoundError(f"the content of message {message_id} has been purged")
        return raw

    async def ack(self, party: Party, message_id: str) -> Message:
        """``party`` confirms it has the message: it becomes ``delivered`` (idempotent)."""
        msg = await self._mailbox_message(party, message_id)
        actor = f"party:{party.id}"
        # A queued message's last move made it deliverable; the delivery latency counts from it.
        queued_at = msg.updated_at
        try:
            if msg.state is State.QUEUED:
                msg = await self.move(
                    msg,
                    State.SENDING,
                    "fetched from mailbox",
                    actor,
                    lease_until=self.clock.now() + self.lease,
                )
            if msg.state is State.SENDING:
                msg = await self.move(msg, State.DELIVERED, "acknowledged by recipient", actor)
                self.metrics.delivered(party.id, queued_at, self.clock.now())
        except IllegalTransition:
            # A concurrent ack won; report the state it left.
            current = await self._db(self.store.get, message_id)
            assert current is not None
            return current
        return msg

    # -- operator actions ---------------------------------------------------------------------

    async def retry(self, message_id: str, actor: str) -> Message:
        """Send a ``dead`` message again, or release a ``held`` one now."""
        msg = await self._db(self.store.get, message_id)
        if msg is None:
            raise NotFoundError(f"no message {message_id}")
        if msg.state not in (State.DEAD, State.HELD):
            raise OperatorRefusedError(
                f"message {message_id} is {msg.state.value}; only dead or held messages "
                "can be retried"
            )
        if waits_for_decision(msg):
            raise OperatorRefusedError(
                f"message {message_id} waits for a mapping decision; use 'gateway mappings decide'"
            )
        moved = await self.move(msg, State.QUEUED, "retried by operator", actor)
        await self._db(
            self.store.record_audit,
            self.clock.now(),
            actor,
            "retry",
            message_id,
            f"from {msg.state.value}",
        )
        return moved

    async def hold_party(self, party_id: str, actor: str, reason: str = OPERATOR_HOLD) -> int:
        """Hold all deliveries to a party until released; returns messages moved to held."""
        party = self._party(party_id)
        now = self.clock.now()
        await self._db(self.store.set_party_hold, party.id, reason, now, actor)
        await self._db(self.store.record_audit, now, actor, "hold", party.id, reason)
        self._holds[party.id] = reason
        return await self.rebalance(party, actor)

    async def release_party(self, party_id: str, actor: str) -> int:
        """Lift an operator hold; returns messages moved back to the queue, in order."""
        party = self._party(party_id)
        now = self.clock.now()
        await self._db(self.store.set_party_hold, party.id, None, now, actor)
        await self._db(self.store.record_audit, now, actor, "release", party.id, None)
        self._holds.pop(party.id, None)
        return await self.rebalance(party, actor)

    def _party(self, party_id: str) -> Party:
        party = self.registry.get(party_id)
        if party is None:
            known = ", ".join(p.id for p in self.registry)
            raise NotFoundError(f"no party {party_id!r} (configured: {known})")
        return party

    async def rebalance(self, party: Party, actor: str = "scheduler") -> int:
        """Make a party's waiting messages match its readiness: hold or release, in order."""
        state, reason = placement(party, self.today(), self._holds)
        source = State.HELD if state is State.QUEUED else State.QUEUED
        moved = 0
        after: str | None = None
        while True:
            page = await self._db(
                self.store.query,
                MessageQuery(recipient=party.id, state=source, after_id=after, limit=_PAGE),
            )
            for msg in page:
                if state is State.QUEUED and (msg.reason or "").startswith(MESSAGE_HOLD):
                    continue  # an operator held this one message; only they release it
                if state is State.QUEUED and waits_for_decision(msg):
                    continue  # only an operator's mapping decision releases it
                try:
                    await self.move(
                        msg,
                        state,
                        "released: " + reason if state is State.QUEUED else reason,
                        actor,
                    )
                    moved += 1
                except IllegalTransition:
                    continue
            if len(page) < _PAGE:
                return moved
            after = page[-1].id


def _with_translation(
    decision: Decision, translation: TranslationRecord | None
) -> tuple[Decision, TranslationRecord | None]:
    """Hold an accepted message that waits for a mapping decision; a message that does not
    go on records no ledger pairs."""
    if translation is None:
        return decision, None
    if decision.rejected:
        return decision, dataclasses.replace(translation, entries=())
    if translation.needs_decision:
        held = Decision(
            State.HELD, hold_reason(translation.undecided), recipient=decision.recipient
        )
        return held, dataclasses.replace(translation, entries=())
    return decision, translation


def _waits_for_mapping(decision: Decision) -> bool:
    return decision.state is State.HELD and decision.reason.startswith(NEEDS_MAPPING_DECISION)


def _register_update(
    report: ValidationReport, original: ValidationReport, decision: Decision
) -> RegisterUpdate | None:
    """The register entries of a decided message, in the gemeente's code generation.

    A message to a gemeente was translated into its codes (``report``); a message from a
    gemeente is read as the gemeente wrote it (``original``).
    """
    kind = MESSAGE_KINDS.get(report.message_type or "")
    from_gemeente = kind is not None and kind.sender is Role.GEMEENTE and not kind.is_retour
    chosen = original if from_gemeente and original.document is not None else report
    return register_update(chosen, decision)


def _correlation(report: ValidationReport, decision: Decision) -> Correlation | None:
    """The exchange an accepted message opens or answers; a rejected one takes part in none."""
    if decision.rejected or report.document is None:
        return None
    return correlation_of(report.document)


def message_summary(msg: Message) -> dict[str, Any]:
    """The JSON shape of a message's metadata (never its content)."""
    data = dataclasses.asdict(msg)
    for key, value in data.items():
        if isinstance(value, dt.datetime):
            data[key] = value.isoformat()
        elif isinstance(value, State | Direction):
            data[key] = value.value
    return data


def event_summary(event: Event) -> dict[str, Any]:
    """The JSON shape of one state move."""
    return {
        "at": event.at.isoformat(),
        "from": event.from_state.value if event.from_state else None,
        "to": event.to_state.value,
        "reason": event.reason,
        "actor": event.actor,
    }
