"""The delivery pass and the per-party delivery lanes.

``tick()`` is what the scheduler calls every few seconds; tests call it directly with a
``FakeClock``. A pass returns expired leases to the queue, holds or releases messages per
readiness, and starts a *lane* for every ready push party that has none running. A lane claims
its party's due messages oldest first and delivers them one after another, so a party's
messages go out in order (held messages are released in arrival order too). Lanes run side by
side, at most ``max_lanes`` at once; the pass waits at most ``pass_wait`` seconds for the lanes
it started and then returns, leaving slow lanes running (``None`` waits until they finish:
tests use it to see a pass's outcome in its own report). What a lane does after its pass
returned is reported by a later pass.

One slow or failing party therefore holds up nobody but itself: while its lane is busy the
following passes skip the party, so its messages are not claimed again and no attempts are
burnt, and every other party is served as usual.

Leases (:class:`gateway.core.retry.LeasePlan`): a lane claims a chunk that its lease can
cover (``lease // http_timeout`` pushes, or up to ``batch_size`` file writes) and never starts
an attempt that could outlive the lease: a push's timeout is cut to what is left of the lease
minus a margin for recording the result; settings whose lease cannot cover one full attempt
are refused. Another process can only take over a message once nobody can still be delivering
it. Within this process, lease recovery skips the messages its own lanes hold. Should a late
outcome arrive anyway (a folder write has no timeout), the store refuses it: a move out of
``sending`` compares the claim (the lease) and not only the state, so it cannot overwrite a
newer claim of another worker.

Shutdown (:meth:`Delivery.close`): lanes start no new attempt and give back what they claimed
but did not try, without counting an attempt; the attempt in flight may finish within a grace
period, after which its lane is cancelled and the message stays ``sending`` until its lease
expires and it returns to the queue (after a restart too). Nothing is lost; a folder delivery
repeated this way rewrites the same file name, so a recipient never gets two files.

Channels: ``folder`` writes ``outbox/<party>/<id>.xml`` atomically (a retry rewrites the same
name; the party folder must be a folder and not a link, else the attempt fails and is retried:
``gateway.daemon.nofollow``; temporary files a crash left there are swept by
:meth:`Delivery.sweep_temp_files`); ``http`` POSTs the XML (2xx delivered; connection errors,
timeouts, 429 and 5xx retry with backoff; any other status is permanent and the message goes
to ``dead``); ``ggk`` sends a StUF-GGk envelope to the GGk (:mod:`gateway.daemon.chain_client`:
a Bv03 delivers, a Fo03 or transport error retries); ``mailbox`` messages are never claimed
here: they wait as ``queued`` until the party acknowledges them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import aiohttp

from gateway.core.errors import (
    IllegalTransition,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.core.model import Message, State
from gateway.core.pipeline import placement
from gateway.core.retry import FOLDER_WRITE_SECONDS, GiveUp, LeasePlan, RetryPolicy
from gateway.core.route import Channel, Party, outbox_name
from gateway.daemon.chain_client import ChainSender
from gateway.daemon.nofollow import RefusedPathError, open_folder, open_root
from gateway.daemon.outbox_writer import sweep_temp_files, write_atomically
from gateway.logs import get_logger
from gateway.service.gateway_service import GatewayService

log = get_logger("gateway.delivery")

ACTOR = "delivery"
PUSH_CHANNELS = frozenset({Channel.FOLDER, Channel.HTTP, Channel.GGK})

MAX_LANES = 16
"""Parties delivered at the same time; more wait for a free slot without claiming anything."""
PASS_WAIT_SECONDS = 1.0
"""How long a pass waits for the lanes it started; keep it below the pass interval."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long :meth:`Delivery.close` lets attempts in flight finish before cancelling them."""


@dataclass
class TickReport:
    """What one pass did, and what lanes finished since the previous pass, for logs and tests."""

    recovered: int = 0
    moved_by_readiness: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    returned: int = 0
    errors: int = 0
    lanes_started: int = 0
    lanes_busy: int = 0

    def add(self, other: TickReport) -> None:
        """Add ``other``'s counts to these."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def eventful(self) -> bool:
        """True when a message changed state (worth a log line)."""
        return any(
            (self.recovered, self.delivered, self.retried, self.dead, self.returned, self.errors)
        )


class Delivery:
    """Delivers queued messages for push parties in per-party lanes; owns the HTTP session."""

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
        max_lanes: int = MAX_LANES,
        pass_wait: float | None = PASS_WAIT_SECONDS,
        owns_folders: Callable[[], Awaitable[bool]] | None = None,
        chain: ChainSender | None = None,
    ) -> None:
        if max_lanes < 1:
            raise ValueError("max_lanes must be at least 1")
        if pass_wait is not None and pass_wait < 0:
            raise ValueError("pass_wait must not be negative")
        # Refuses a lease that cannot cover one attempt and the recording of its outcome.
        self.plan = LeasePlan(lease.total_seconds(), http_timeout, batch_size)
        self.service = service
        self.outbox = outbox
        self.policy = policy
        self.rng = rng or random.SystemRandom()
        self.batch_size = batch_size
        self.lease = lease
        self.http_timeout = http_timeout
        self.max_lanes = max_lanes
        self.pass_wait = pass_wait
        # Folder parties are written to by the folder owner only (gateway.daemon.cluster).
        self.owns_folders = owns_folders
        self.chain = chain  # the ggk channel, when [chain] ggk_url is set
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(max_lanes)
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._owned: set[str] = set()  # ids claimed by this process's running lanes
        self._outcomes = TickReport()  # lane results not yet reported by a pass
        self._stopping = False

    # -- lanes in flight and shutdown -----------------------------------------------------

    @property
    def busy_parties(self) -> frozenset[str]:
        """Parties whose lane is running or waiting for a free slot."""
        return frozenset(party for party, lane in self._lanes.items() if not lane.done())

    async def settle(self, parties: Iterable[str] | None = None) -> None:
        """Wait until the lanes of ``parties`` (default: all) have finished."""
        wanted = None if parties is None else set(parties)
        lanes = [
            lane
            for party, lane in self._lanes.items()
            if (wanted is None or party in wanted) and not lane.done()
        ]
        if lanes:
            await asyncio.wait(lanes)

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop the lanes, then close the HTTP client session.

        Lanes start no new attempt and give back what they claimed but did not try. An
        attempt in flight may finish within ``grace`` seconds; after that its lane is
        cancelled and the message stays ``sending`` until its lease expires, when lease
        recovery (here or after a restart) returns it to the queue.
        """
        self._stopping = True
        try:
            running = {lane: party for party, lane in self._lanes.items() if not lane.done()}
            if running:
                _, pending = await asyncio.wait(list(running), timeout=max(grace, 0.0))
                for lane in pending:
                    lane.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                if pending:
                    log.warning(
                        "delivery_lanes_cancelled",
                        parties=sorted(running[lane] for lane in pending),
                        grace_seconds=grace,
                    )
        finally:
            self._stopping = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.http_timeout)
            )
        return self._session

    # -- the pass -------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """One delivery pass: recover, hold or release, start lanes, report.

        Starts a lane for each ready push party that has none running, and waits at most
        ``pass_wait`` seconds for the lanes it started. The report counts this pass's
        recoveries and readiness moves plus every lane outcome since the previous pass.
        """
        report = TickReport()
        service = self.service
        await service.refresh_holds()
        await self._recover_leases(report)
        for party in service.registry:
            try:
                report.moved_by_readiness += await service.steering.rebalance(party)
            except Exception:
                report.errors += 1
                log.exception("readiness_pass_failed", party=party.id)
        today = service.today()
        folders = self.owns_folders is None or await self.owns_folders()
        started: list[asyncio.Task[None]] = []
        for party in service.registry:
            if party.channel not in PUSH_CHANNELS:
                continue
            if party.channel is Channel.FOLDER and not folders:
                continue
            if placement(party, today, service.holds)[0] is not State.QUEUED:
                continue
            running = self._lanes.get(party.id)
            if running is not None and not running.done():
                report.lanes_busy += 1  # its messages stay with the lane, not claimed again
            elif not self._stopping:
                started.append(self._start_lane(party))
        report.lanes_started = len(started)
        if started and (self.pass_wait is None or self.pass_wait > 0):
            await asyncio.wait(started, timeout=self.pass_wait)
        report.add(self._take_outcomes())
        if report.eventful:
            log.info("delivery_tick", **vars(report))
        return report

    def _take_outcomes(self) -> TickReport:
        outcomes, self._outcomes = self._outcomes, TickReport()
        return outcomes

    async def _recover_leases(self, report: TickReport) -> None:
        now = self.service.clock.now()
        expired = await asyncio.to_thread(self.service.store.expired_leases, now)
        for msg in expired:
            if msg.id in self._owned:
                # Our own lane is still on it and will record the outcome itself.
                continue
            try:
                await self._failed(msg, "lease expired before delivery finished")
                report.recovered += 1
            except IllegalTransition:
                continue
            except Exception:
                report.errors += 1
                log.exception("lease_recovery_failed", message_id=msg.id, party=msg.recipient)

    # -- lanes ----------------------------------------------------------------------------

    def _start_lane(self, party: Party) -> asyncio.Task[None]:
        lane = asyncio.create_task(self._lane(party), name=f"delivery-lane-{party.id}")
        self._lanes[party.id] = lane
        lane.add_done_callback(lambda done: self._lane_done(party.id, done))
        return lane

    def _lane_done(self, party_id: str, lane: asyncio.Task[None]) -> None:
        if self._lanes.get(party_id) is lane:
            del self._lanes[party_id]
        if lane.cancelled():
            return
        error = lane.exception()  # retrieved here, so asyncio never reports it as lost
        if error is not None:
            self._outcomes.errors += 1
            log.error("delivery_lane_failed", party=party_id, error=repr(error))

    async def _lane(self, party: Party) -> None:
        """One turn of a party's lane: up to ``batch_size`` messages, in claim-sized chunks.

        A turn ends after about one lease of time, so a slow party gives its slot back and
        queues behind the others for the next one.
        """
        async with self._slots:
            clock = self.service.clock
            turn_ends = clock.now() + self.lease
            left = self.batch_size
            while left > 0 and not self._stopping:
                wanted = min(left, self._chunk_size(party))
                try:
                    claimed = await self._claim(party, wanted)
                except Exception:
                    self._outcomes.errors += 1
                    log.exception("claim_failed", party=party.id)
                    return
                left -= len(claimed)
                await self._deliver_chunk(party, claimed)
                if len(claimed) < wanted or clock.now() >= turn_ends:
                    return

    def _chunk_size(self, party: Party) -> int:
        """How many messages one lease can cover for this party's channel."""
        per_attempt = FOLDER_WRITE_SECONDS if party.channel is Channel.FOLDER else self.http_timeout
        return self.plan.claim_size(per_attempt)

    async def _claim(self, party: Party, limit: int) -> list[Message]:
        now = self.service.clock.now()
        return await asyncio.to_thread(
            self.service.store.claim_due, now, now + self.lease, limit, [party.id]
        )

    def _budget(self, msg: Message) -> float | None:
        """Seconds an attempt may take and still be recorded before the lease runs out."""
        assert msg.lease_until is not None  # claimed messages carry a lease
        left = (msg.lease_until - self.service.clock.now()).total_seconds()
        return self.plan.attempt_budget(left)

    async def _deliver_chunk(self, party: Party, claimed: Sequence[Message]) -> None:
        ids = {msg.id for msg in claimed}
        self._owned |= ids
        try:
            for index, msg in enumerate(claimed):
                budget = self._budget(msg)
                if self._stopping or budget is None:
                    why = "the gateway is stopping" if self._stopping else "its lease ran short"
                    await self._give_back(claimed[index:], f"returned unattempted: {why}")
                    return
                try:
                    await self._deliver_one(party, msg, budget)
                except IllegalTransition:
                    continue  # the lease ran out and another worker took over
                except Exception:
                    # The message stays ``sending``; its lease expires and it is retried.
                    self._outcomes.errors += 1
                    log.exception("delivery_crashed", message_id=msg.id, party=party.id)
        finally:
            self._owned -= ids

    async def _give_back(self, unattempted: Sequence[Message], reason: str) -> None:
        """Return claimed messages to the queue; no attempt was made, so none is counted."""
        for msg in unattempted:
            try:
                await self.service.move(msg, State.QUEUED, reason, ACTOR, attempted=False)
                self._outcomes.returned += 1
            except Exception:
                # Left ``sending``: lease recovery returns it once the lease has expired.
                log.exception("give_back_failed", message_id=msg.id, party=msg.recipient)

    async def _deliver_one(self, party: Party, msg: Message, budget: float) -> None:
        # The translated bytes when the message was translated for this party (raw stays).
        raw = await asyncio.to_thread(self.service.store.delivery_payload, msg.id)
        if raw is None:
            await self._dead(msg, "content purged before delivery")
            return
        try:
            where = await self._send(party, msg, raw, budget)
        except TransientDeliveryError as exc:
            await self._failed(msg, str(exc))
            return
        except PermanentDeliveryError as exc:
            await self._dead(msg, f"permanent delivery failure: {exc}")
            return
        await self.service.move(msg, State.DELIVERED, where, ACTOR)
        self.service.metrics.delivered(party.id, await self._since(msg), self.service.clock.now())
        self._outcomes.delivered += 1

    async def _send(self, party: Party, msg: Message, raw: bytes, budget: float) -> str:
        if party.channel is Channel.FOLDER:
            name = outbox_name(msg.id)
            try:
                await asyncio.to_thread(self._write_to_folder, party, name, raw)
            except RefusedPathError as exc:
                log.warning("outbox_folder_refused", party=party.id, reason=str(exc))
                raise TransientDeliveryError(f"outbox/{exc}; nothing written") from exc
            except OSError as exc:
                raise TransientDeliveryError(f"writing to outbox/{party.id} failed: {exc}") from exc
            return f"written to outbox/{party.id}/{name}"
        if party.channel is Channel.HTTP and party.url:
            return await self._push(party.url, msg, raw, min(self.http_timeout, budget))
        if party.channel is Channel.GGK and self.chain is not None:
            return await self.chain.send(self._http(), msg, raw, min(self.http_timeout, budget))
        raise PermanentDeliveryError(f"party {party.id} has no push channel")

    def _write_to_folder(self, party: Party, name: str, raw: bytes) -> None:
        """Write into ``outbox/<party>/``, which must be a folder and not a link."""
        root = open_root(self.outbox)
        try:
            folder = open_folder(root, party.id, create=True)
            try:
                write_atomically(folder, name, raw)
            finally:
                os.close(folder)
        finally:
            os.close(root)

    async def sweep_temp_files(self) -> list[str]:
        """Remove temporary files a crashed folder write left in ``outbox/<party>/``.

        Housekeeping runs this (first at start-up). Only files older than the lease go: no
        write of a message claimed under a lease, in this process or another, still runs
        then. Ages are wall-clock seconds because file times are.
        """
        parties = [party.id for party in self.service.registry if party.channel is Channel.FOLDER]
        removed = await asyncio.to_thread(
            self._sweep, parties, self.lease.total_seconds(), time.time()
        )
        if removed:
            log.info("outbox_temp_files_swept", files=removed)
        return removed

    def _sweep(self, parties: Sequence[str], older_than: float, now: float) -> list[str]:
        removed: list[str] = []
        if not self.outbox.is_dir():
            return removed
        root = open_root(self.outbox)
        try:
            for party_id in parties:
                try:
                    folder = open_folder(root, party_id, create=False)
                except (FileNotFoundError, RefusedPathError):
                    continue  # nothing written there, or refused when writing
                try:
                    found = sweep_temp_files(folder, older_than=older_than, now=now)
                finally:
                    os.close(folder)
                removed += [f"{party_id}/{name}" for name in found]
        finally:
            os.close(root)
        return removed

    async def _push(self, url: str, msg: Message, raw: bytes, timeout: float) -> str:
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "X-Gateway-Message-Id": msg.id,
        }
        if msg.message_type:
            headers["X-Gateway-Message-Type"] = msg.message_type
        try:
            async with self._http().post(
                url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                status = response.status
                await response.read()
        except TimeoutError as exc:
            raise TransientDeliveryError(f"timeout pushing to {url} ({timeout:.1f} s)") from exc
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

    async def _failed(self, msg: Message, error: str) -> None:
        now = self.service.clock.now()
        decision = self.policy.decide(
            msg.attempts + 1, await self._since(msg), now, self.rng, error
        )
        if isinstance(decision, GiveUp):
            await self._dead(msg, decision.reason)
            return
        await self.service.move(
            msg,
            State.QUEUED,
            f"transient failure: {error}; next attempt {decision.when.isoformat()}",
            ACTOR,
            next_attempt_at=decision.when,
        )
        self.service.metrics.inc("retries", msg.recipient)
        self._outcomes.retried += 1

    async def _dead(self, msg: Message, reason: str) -> None:
        await self.service.move(msg, State.DEAD, reason, ACTOR)
        self.service.metrics.inc("dead", msg.recipient)
        self._outcomes.dead += 1
        log.warning("message_dead", message_id=msg.id, party=msg.recipient, reason=reason)
