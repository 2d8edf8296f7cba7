"""Intake: store a message durably as its sender sent it, prepared once.

One :meth:`Store.save_intake` transaction writes the raw bytes, the final state, the events,
the findings and the retour together, batched with the submissions of other requests
(:class:`~gateway.service.group_commit.GroupCommit`). Once :meth:`Intake.submit` returns, the
message survives a crash; a crash before the commit means no acknowledgement was given. When
preparation fails the message is stored as ``received`` and
:mod:`gateway.service.reprocessing` takes it up again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.core.errors import IdentificatieReused
from gateway.core.model import Message, State
from gateway.core.pipeline import gateway_answers
from gateway.core.route import Party
from gateway.logs import about_message, get_logger
from gateway.service.errors import IntakeClosedError, MessageTooLargeError
from gateway.service.preparation import Preparation, PrepareJob
from gateway.service.shared import SharedState
from gateway.service.sniffing import client_keys, recipient_identity, sniff_header
from gateway.service.volume import IntakeVolume, VolumeLimits
from gateway.store.base import IntakeRecord, Saved

log = get_logger("gateway.service")


class PrepareProcesses(Protocol):
    """Prepare worker processes (``gateway.daemon.prepare_workers.PreparePool``)."""

    @property
    def available(self) -> bool: ...
    async def prepare(self, job: PrepareJob) -> IntakeRecord: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a submission: the stored message and whether this call created it."""

    message: Message
    created: bool


class Intake:
    """Receives messages from parties, over HTTP and through ``inbox/``."""

    def __init__(
        self,
        shared: SharedState,
        preparation: Preparation,
        volume: VolumeLimits | None = None,
        free_disk: Callable[[], int] | None = None,
    ) -> None:
        self.shared = shared
        self.preparation = preparation
        self.accepting = True
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.volume = IntakeVolume(volume or VolumeLimits(), self._received_bytes, free_disk)
        # Set by the composition root when [server] prepare_workers asks for worker processes.
        self.prepare_pool: PrepareProcesses | None = None

    def stop(self) -> None:
        """Refuse new submissions from now on (shutdown)."""
        self.accepting = False

    async def drain(self) -> None:
        """Wait until every submission already accepted has been stored and processed."""
        await self._idle.wait()
        await self.shared.commits.flush()

    async def submit(self, party: Party, raw: bytes, actor: str) -> Receipt:
        """Store ``raw`` durably as sent by ``party``, then process it once.

        Raises ``IntakeClosedError``, ``MessageTooLargeError``, ``QuotaExceededError`` (the
        party's window allowance is used up), ``StorageFullError`` (the disk is at its floor)
        or ``StoreError``; then nothing was stored. Re-submitting the same bytes returns the
        stored message without processing it again.
        """
        if not self.accepting:
            raise IntakeClosedError()
        if len(raw) > self.shared.max_message_bytes:
            raise MessageTooLargeError(
                f"message is {len(raw)} bytes; the limit is {self.shared.max_message_bytes}"
            )
        self._in_flight += 1
        self._idle.clear()
        receipt: Receipt | None = None
        try:
            reservation = await self.volume.reserve(party.id, len(raw), self.shared.clock.now())
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
        now = self.shared.clock.now()
        message_type, bericht_id = sniff_header(raw)
        received = Message(
            id=self.shared.store.new_message_id(now),
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
            async with self.shared.client_locks.hold(clients):
                record, saved = await self._prepare_and_save(received, raw, party, actor)
        else:
            record, saved = await self._prepare_and_save(received, raw, party, actor)
        msg = saved.message
        if saved.identificatie_taken:
            raise IdentificatieReused(msg.id, msg.message_type, msg.bericht_id)
        self.shared.metrics.inc("received", party.id)
        if not saved.created:
            log.info(
                "message_resubmitted", message_id=msg.id, party=party.id, state=msg.state.value
            )
            return Receipt(msg, created=False)
        if msg.state is State.REJECTED:
            self.shared.metrics.inc("rejected", party.id)
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
            return record, await self.shared.commits.save(record)

    async def _prepare_somewhere(
        self, received: Message, raw: bytes, party: Party, actor: str
    ) -> IntakeRecord:
        """:meth:`Preparation.prepare` in a prepare worker process when the pool has one, else in a
        thread of this process."""
        pool = self.prepare_pool
        if pool is None or not pool.available:
            return await asyncio.to_thread(self.preparation.prepare, received, raw, party, actor)
        job = PrepareJob(received, raw, party.id, actor, self.shared.clock.now(), self.shared.holds)
        return await pool.prepare(job)

    def _checked_clients(self, raw: bytes, message_type: str | None) -> list[str]:
        """The client keys to lock while ``raw`` is checked and committed: only a message the
        gateway answers for runs the uniqueness rules, so only its clients are serialised (a
        header that cannot be sniffed is locked all the same, to be safe)."""
        identity = recipient_identity(raw)
        if identity is None or message_type is None:
            return client_keys(raw)
        recipient = self.shared.registry.by_identity(identity)
        if recipient is None or not gateway_answers(message_type, recipient):
            return []
        return client_keys(raw)

    async def _received_bytes(self, party: str, since: dt.datetime) -> int:
        return await self.shared.db(self.shared.store.received_bytes, party, since)
