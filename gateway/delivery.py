"""The delivery pass: recover expired leases, hold or release per readiness, deliver due messages.

``tick()`` is what the scheduler calls every few seconds; tests call it directly with a
``FakeClock``. Parties are delivered concurrently and independently: each party's messages are
claimed with their own limit, and any failure stays with its own message, so one failing party
or message never blocks the others.

Channels: ``folder`` writes ``outbox/<party>/<id>.xml`` atomically (a retry rewrites the same
name); ``http`` POSTs the XML (2xx delivered; connection errors, timeouts, 429 and 5xx retry
with backoff; any other status is permanent and the message goes to ``dead``); ``mailbox``
messages are never claimed here: they wait as ``queued`` until the party acknowledges them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from gateway.core.errors import (
    IllegalTransition,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.core.model import Message, State
from gateway.core.pipeline import placement
from gateway.core.retry import GiveUp, RetryPolicy
from gateway.core.route import Channel, Party, outbox_name
from gateway.logs import get_logger
from gateway.outbox_writer import write_atomically
from gateway.service import GatewayService

log = get_logger("gateway.delivery")

ACTOR = "delivery"
PUSH_CHANNELS = frozenset({Channel.FOLDER, Channel.HTTP})


@dataclass
class TickReport:
    """What one pass did, for logs and tests."""

    recovered: int = 0
    moved_by_readiness: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    errors: int = 0


class Delivery:
    """Delivers queued messages for push parties; owns the HTTP client session."""

    def __init__(
        self,
        service: GatewayService,
        *,
        outbox: Path,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        batch_size: int = 50,
        lease: dt.timedelta = dt.timedelta(seconds=120),
        http_timeout: float = 30.0,
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.policy = policy
        self.rng = rng or random.SystemRandom()
        self.batch_size = batch_size
        self.lease = lease
        self.http_timeout = http_timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP client session (if one was opened)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.http_timeout)
            )
        return self._session

    async def tick(self) -> TickReport:
        """One delivery pass."""
        report = TickReport()
        service = self.service
        await service.refresh_holds()
        await self._recover_leases(report)
        for party in service.registry:
            try:
                report.moved_by_readiness += await service.rebalance(party)
            except Exception:
                report.errors += 1
                log.exception("readiness_pass_failed", party=party.id)
        today = service.today()
        ready = [
            party
            for party in service.registry
            if party.channel in PUSH_CHANNELS
            and placement(party, today, service.holds)[0] is State.QUEUED
        ]
        results = await asyncio.gather(
            *(self._deliver_party(party, report) for party in ready), return_exceptions=True
        )
        for party, result in zip(ready, results, strict=True):
            if isinstance(result, BaseException):
                report.errors += 1
                log.error("party_delivery_failed", party=party.id, error=repr(result))
        if report.delivered or report.retried or report.dead or report.recovered:
            log.info("delivery_tick", **vars(report))
        return report

    async def _recover_leases(self, report: TickReport) -> None:
        now = self.service.clock.now()
        expired = await asyncio.to_thread(self.service.store.expired_leases, now)
        for msg in expired:
            try:
                await self._failed(msg, "lease expired before delivery finished", report)
                report.recovered += 1
            except IllegalTransition:
                continue
            except Exception:
                report.errors += 1
                log.exception("lease_recovery_failed", message_id=msg.id, party=msg.recipient)

    async def _deliver_party(self, party: Party, report: TickReport) -> None:
        now = self.service.clock.now()
        claimed = await asyncio.to_thread(
            self.service.store.claim_due, now, now + self.lease, self.batch_size, [party.id]
        )
        for msg in claimed:
            try:
                await self._deliver_one(party, msg, report)
            except IllegalTransition:
                continue  # the lease ran out and another worker took over
            except Exception:
                # The message stays ``sending``; its lease expires and it is retried.
                report.errors += 1
                log.exception("delivery_crashed", message_id=msg.id, party=party.id)

    async def _deliver_one(self, party: Party, msg: Message, report: TickReport) -> None:
        raw = await asyncio.to_thread(self.service.store.payload, msg.id)
        if raw is None:
            await self._dead(msg, "content purged before delivery", report)
            return
        try:
            where = await self._send(party, msg, raw)
        except TransientDeliveryError as exc:
            await self._failed(msg, str(exc), report)
            return
        except PermanentDeliveryError as exc:
            await self._dead(msg, f"permanent delivery failure: {exc}", report)
            return
        await self.service.move(msg, State.DELIVERED, where, ACTOR)
        self.service.metrics.inc("delivered", party.id)
        report.delivered += 1

    async def _send(self, party: Party, msg: Message, raw: bytes) -> str:
        if party.channel is Channel.FOLDER:
            folder = self.outbox / party.id
            try:
                path = await asyncio.to_thread(write_atomically, folder, outbox_name(msg.id), raw)
            except OSError as exc:
                raise TransientDeliveryError(f"writing to {folder} failed: {exc}") from exc
            return f"written to outbox/{party.id}/{path.name}"
        if party.channel is Channel.HTTP and party.url:
            return await self._push(party.url, msg, raw)
        raise PermanentDeliveryError(f"party {party.id} has no push channel")

    async def _push(self, url: str, msg: Message, raw: bytes) -> str:
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "X-Gateway-Message-Id": msg.id,
        }
        if msg.message_type:
            headers["X-Gateway-Message-Type"] = msg.message_type
        try:
            async with self._http().post(url, data=raw, headers=headers) as response:
                status = response.status
                await response.read()
        except TimeoutError as exc:
            raise TransientDeliveryError(f"timeout pushing to {url}") from exc
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(f"connection error pushing to {url}: {exc}") from exc
        if 200 <= status < 300:
            return f"pushed to {url}: HTTP {status}"
        if status == 429 or status >= 500:
            raise TransientDeliveryError(f"{url} answered HTTP {status}")
        raise PermanentDeliveryError(f"{url} answered HTTP {status}")

    async def _since(self, msg: Message) -> dt.datetime:
        """When the message last became deliverable: the age limit counts from there.

        Counting from receipt would kill a message held for weeks on its first failure.
        """
        history = await asyncio.to_thread(self.service.store.history, msg.id)
        since = msg.received_at
        for event in history:
            if event.to_state is State.QUEUED and event.from_state is not State.SENDING:
                since = event.at
        return since

    async def _failed(self, msg: Message, error: str, report: TickReport) -> None:
        now = self.service.clock.now()
        decision = self.policy.decide(
            msg.attempts + 1, await self._since(msg), now, self.rng, error
        )
        if isinstance(decision, GiveUp):
            await self._dead(msg, decision.reason, report)
            return
        await self.service.move(
            msg,
            State.QUEUED,
            f"transient failure: {error}; next attempt {decision.when.isoformat()}",
            ACTOR,
            next_attempt_at=decision.when,
        )
        self.service.metrics.inc("retries", msg.recipient)
        report.retried += 1

    async def _dead(self, msg: Message, reason: str, report: TickReport) -> None:
        await self.service.move(msg, State.DEAD, reason, ACTOR)
        self.service.metrics.inc("dead", msg.recipient)
        report.dead += 1
        log.warning("message_dead", message_id=msg.id, party=msg.recipient, reason=reason)
