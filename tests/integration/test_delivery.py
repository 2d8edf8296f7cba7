"""delivery.tick(): folder and HTTP push, retry with backoff, dead, held/released, leases, lanes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import load_config
from gateway.core.model import State
from gateway.daemon.app import build_app
from gateway.daemon.delivery import Delivery
from gateway.daemon.outbox_writer import write_atomically
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example, variant, write_config


class Receiver:
    """A real HTTP endpoint on loopback that answers with scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.headers.append(dict(request.headers))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver_server() -> AsyncIterator[Callable[[list[int]], Any]]:
    servers: list[TestServer] = []

    async def start(statuses: list[int]) -> tuple[Receiver, str]:
        receiver = Receiver(statuses)
        app = web.Application()
        app.router.add_post("/inbox", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return receiver, str(server.make_url("/inbox"))

    yield start
    for server in servers:
        await server.close()


async def test_folder_delivery_writes_file_atomically(harness: Harness) -> None:
    """JW302 for Diemen (folder): outbox/diemen/<id>.xml with the exact bytes, no temp files."""
    data = await harness.submit("provider-a", example("JW302"))
    report = await harness.gateway.delivery.tick()
    assert report.delivered == 1
    folder = harness.folder / "outbox" / "diemen"
    assert [p.name for p in folder.iterdir()] == [f"{data['id']}.xml"]
    assert (folder / f"{data['id']}.xml").read_bytes() == example("JW302")
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.DELIVERED
    # A second tick has nothing to do: delivered exactly once.
    assert (await harness.gateway.delivery.tick()).delivered == 0


def test_outbox_writer_rewrites_same_name(tmp_path: Path) -> None:
    """Writing the same name twice (a retried delivery) leaves one complete file."""
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_atomically(folder, "a.xml", b"first")
        write_atomically(folder, "a.xml", b"second")
    finally:
        os.close(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["a.xml"]
    assert (tmp_path / "a.xml").read_bytes() == b"second"


async def test_http_push_retries_transient_then_delivers(
    make_harness: Callable[..., Any], receiver_server: Callable[..., Any]
) -> None:
    """503 first: queued with backoff (not retried before it is due); then 200: delivered."""
    receiver, url = await receiver_server([503])
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    data = await harness.submit("provider-a", example("JW302"))
    message_id = str(data["id"])

    first = await harness.gateway.delivery.tick()
    assert first.retried == 1
    msg = harness.store.get(message_id)
    assert msg is not None and msg.state is State.QUEUED and msg.attempts == 1
    assert msg.next_attempt_at is not None and msg.next_attempt_at > harness.clock.now()
    assert msg.next_attempt_at <= harness.clock.now() + dt.timedelta(seconds=60)
    assert "HTTP 503" in (msg.reason or "")

    await harness.gateway.delivery.tick()  # not due yet: the receiver sees nothing new
    assert len(receiver.bodies) == 1

    harness.clock.advance(minutes=2)
    second = await harness.gateway.delivery.tick()
    assert second.delivered == 1
    msg = harness.store.get(message_id)
    assert msg is not None and msg.state is State.DELIVERED
    assert receiver.bodies == [example("JW302"), example("JW302")]
    assert receiver.headers[-1]["X-Gateway-Message-Id"] == message_id
    assert harness.service.metrics.value("retries") == 1
    assert harness.service.metrics.value("delivered", "diemen") == 1


async def test_http_push_permanent_4xx_goes_dead(
    make_harness: Callable[..., Any], receiver_server: Callable[..., Any]
) -> None:
    """400 is permanent: dead at once with the reason, no retry."""
    receiver, url = await receiver_server([400])
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    data = await harness.submit("provider-a", example("JW302"))
    report = await harness.gateway.delivery.tick()
    assert report.dead == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.DEAD
    assert "HTTP 400" in (msg.reason or "")
    harness.clock.advance(hours=5)
    await harness.gateway.delivery.tick()
    assert len(receiver.bodies) == 1

    # An operator can send it again; this time the receiver accepts.
    retried = await harness.service.steering.retry(str(data["id"]), "operator:test")
    assert retried.state is State.QUEUED and retried.attempts == 0
    assert (await harness.gateway.delivery.tick()).delivered == 1


async def test_retries_exhausted_goes_dead(
    make_harness: Callable[..., Any], receiver_server: Callable[..., Any]
) -> None:
    """After max_attempts transient failures the message is dead with the last error."""
    _receiver, url = await receiver_server([503] * 10)
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    data = await harness.submit("provider-a", example("JW302"))
    for _ in range(5):
        await harness.gateway.delivery.tick()
        harness.clock.advance(minutes=15)
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.DEAD
    assert "gave up after 5 attempts" in (msg.reason or "")
    assert "HTTP 503" in (msg.reason or "")


async def test_connection_refused_is_transient(make_harness: Callable[..., Any]) -> None:
    """Nobody listening: a transient failure, retried later."""
    harness: Harness = await make_harness(
        {"diemen": {"channel": "http", "url": "http://127.0.0.1:9/inbox"}}
    )
    data = await harness.submit("provider-a", example("JW302"))
    report = await harness.gateway.delivery.tick()
    assert report.retried == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.QUEUED
    assert "connection error" in (msg.reason or "")


async def test_failing_party_does_not_block_others(
    make_harness: Callable[..., Any], receiver_server: Callable[..., Any]
) -> None:
    """Diemen's endpoint fails; provider B's folder delivery in the same tick still happens."""
    _receiver, url = await receiver_server([500, 500])
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    await harness.submit("provider-a", example("JW302"))
    to_b = await harness.submit("diemen", example("JW319"))
    report = await harness.gateway.delivery.tick()
    assert (report.retried, report.delivered) == (1, 1)
    msg = harness.store.get(str(to_b["id"]))
    assert msg is not None and msg.state is State.DELIVERED


async def test_not_ready_party_held_then_released_in_order(
    make_harness: Callable[..., Any],
) -> None:
    """Provider B not ready until 10 May: held; when the clock passes it, queued and delivered."""
    harness: Harness = await make_harness({"provider-b": {"not_ready_until": dt.date(2026, 5, 10)}})
    ids = [
        str((await harness.submit("diemen", variant(example("JW319"), n)))["id"]) for n in range(3)
    ]
    for message_id in ids:
        msg = harness.store.get(message_id)
        assert msg is not None and msg.state is State.HELD
        assert msg.reason == "party not ready until 2026-05-10"
    await harness.gateway.delivery.tick()
    assert not (harness.folder / "outbox" / "provider-b").exists()

    harness.clock.set(dt.datetime(2026, 5, 10, 0, 1, tzinfo=dt.UTC))
    report = await harness.gateway.delivery.tick()
    assert report.moved_by_readiness == 3 and report.delivered == 3
    released_at = [
        next(e for e in harness.store.history(i) if e.from_state is State.HELD) for i in ids
    ]
    assert [e.message_id for e in sorted(released_at, key=lambda e: (e.at, e.message_id))] == ids
    files = sorted(p.name for p in (harness.folder / "outbox" / "provider-b").iterdir())
    assert files == sorted(f"{i}.xml" for i in ids)


async def test_operator_hold_and_release_persist(harness: Harness) -> None:
    """hold PARTY holds waiting and new messages across restarts of the service; release frees."""
    first = await harness.submit("diemen", example("JW319"))
    moved = await harness.service.steering.hold_party("provider-b", "operator:test")
    assert moved == 1
    second = await harness.submit("diemen", variant(example("JW319"), 1))
    assert second["state"] == "held"
    assert (await harness.gateway.delivery.tick()).delivered == 0
    assert harness.store.party_holds() == {"provider-b": "operator hold"}
    assert [a["action"] for a in harness.store.audit_trail("provider-b")] == ["hold"]

    released = await harness.service.steering.release_party("provider-b", "operator:test")
    assert released == 2
    assert (await harness.gateway.delivery.tick()).delivered == 2
    for data in (first, second):
        msg = harness.store.get(str(data["id"]))
        assert msg is not None and msg.state is State.DELIVERED


async def test_hold_by_another_process_is_picked_up_on_tick(harness: Harness) -> None:
    """A hold written by the CLI (straight into the store) applies at the next tick."""
    data = await harness.submit("diemen", example("JW319"))
    harness.store.set_party_hold("provider-b", "operator hold", harness.clock.now(), "cli")
    report = await harness.gateway.delivery.tick()
    assert report.delivered == 0 and report.moved_by_readiness == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.HELD


async def test_expired_lease_returns_to_queue_and_counts_as_attempt(harness: Harness) -> None:
    """A worker died while sending: after the lease, the message is retried (attempt counted)."""
    data = await harness.submit("diemen", example("JW319"))
    now = harness.clock.now()
    claimed = harness.store.claim_due(now, now + dt.timedelta(seconds=120), 10, ["provider-b"])
    assert [m.id for m in claimed] == [data["id"]]
    harness.clock.advance(seconds=121)
    report = await harness.gateway.delivery.tick()
    assert report.recovered == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.QUEUED and msg.attempts == 1
    harness.clock.advance(minutes=5)
    assert (await harness.gateway.delivery.tick()).delivered == 1
    assert len(harness.store.query(MessageQuery(recipient="provider-b"))) == 1


# -- lanes: one slow or failing party never holds up another ------------------------------

# A safety net so a broken lane fails the test instead of hanging it; no test waits for it.
NEVER = 10.0


class HangingPeer:
    """An http recipient on loopback that holds every push until the test releases it."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received.append(request.headers["X-Gateway-Message-Id"])
        self.arrived.set()
        await self.release.wait()
        return web.Response(status=200, text="ok")


@pytest.fixture
async def hanging_peer() -> AsyncIterator[Callable[[], Any]]:
    peers: list[HangingPeer] = []
    servers: list[TestServer] = []

    async def start() -> tuple[HangingPeer, str]:
        peer = HangingPeer()
        app = web.Application()
        app.router.add_post("/inbox", peer.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        peers.append(peer)
        servers.append(server)
        return peer, str(server.make_url("/inbox"))

    yield start
    for peer in peers:
        peer.release.set()  # a held handler would otherwise keep the server from closing
    for server in servers:
        await server.close()


def _state(harness: Harness, message_id: object) -> tuple[State, int, str]:
    msg = harness.store.get(str(message_id))
    assert msg is not None
    return msg.state, msg.attempts, msg.reason or ""


def _claims(harness: Harness, message_id: object) -> int:
    return sum(1 for e in harness.store.history(str(message_id)) if e.to_state is State.SENDING)


async def test_hanging_push_does_not_hold_up_other_parties(
    make_harness: Callable[..., Any],
    receiver_server: Callable[..., Any],
    hanging_peer: Callable[..., Any],
) -> None:
    """Diemen's push hangs; provider A (http) and B (folder) are delivered by the next tick."""
    peer, slow_url = await hanging_peer()
    fast, fast_url = await receiver_server([])
    harness: Harness = await make_harness(
        {
            "diemen": {"channel": "http", "url": slow_url},
            "provider-a": {"channel": "http", "url": fast_url},
        }
    )
    delivery = harness.gateway.delivery
    delivery.pass_wait = 0  # the pass returns at once; lanes run on their own
    to_diemen = (await harness.submit("provider-a", example("JW302")))["id"]
    to_a = (await harness.submit("diemen", example("JW301")))["id"]
    to_b = (await harness.submit("diemen", example("JW319")))["id"]

    first = await delivery.tick()
    assert first.lanes_started == 3 and first.delivered == 0
    await asyncio.wait_for(peer.arrived.wait(), NEVER)
    await asyncio.wait_for(delivery.settle(["provider-a", "provider-b"]), NEVER)
    assert delivery.busy_parties == {"diemen"}

    second = await delivery.tick()
    assert second.delivered == 2 and second.lanes_busy == 1
    assert _state(harness, to_a)[0] is State.DELIVERED
    assert _state(harness, to_b)[0] is State.DELIVERED
    assert fast.headers[0]["X-Gateway-Message-Id"] == to_a
    assert (harness.folder / "outbox" / "provider-b" / f"{to_b}.xml").exists()
    assert _state(harness, to_diemen) == (State.SENDING, 0, "claimed for delivery")

    peer.release.set()
    await asyncio.wait_for(delivery.settle(["diemen"]), NEVER)
    assert _state(harness, to_diemen)[:2] == (State.DELIVERED, 0)
    assert peer.received == [to_diemen]
    assert (await delivery.tick()).delivered == 1


async def test_busy_lane_keeps_its_messages_even_past_the_lease(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """While a push hangs, later passes neither claim nor recover its party's messages."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    delivery = harness.gateway.delivery
    delivery.pass_wait = 0
    first = (await harness.submit("provider-a", example("JW302")))["id"]
    second = (await harness.submit("provider-a", variant(example("JW302"), 1)))["id"]

    await delivery.tick()
    await asyncio.wait_for(peer.arrived.wait(), NEVER)
    # One claim covered both (a 120 s lease fits three 30 s pushes); the lane holds them.
    assert _state(harness, second) == (State.SENDING, 0, "claimed for delivery")
    for _ in range(3):
        report = await delivery.tick()
        assert report.lanes_busy >= 1 and "diemen" in delivery.busy_parties
    harness.clock.advance(minutes=5)  # both leases have run out while the push hangs
    late = await delivery.tick()
    assert late.recovered == 0 and "diemen" in delivery.busy_parties
    assert [_claims(harness, i) for i in (first, second)] == [1, 1]
    assert peer.received == [first]

    peer.release.set()
    await asyncio.wait_for(delivery.settle(["diemen"]), NEVER)
    # The attempt in flight is recorded; the second is not started on an expired lease.
    assert _state(harness, first)[:2] == (State.DELIVERED, 0)
    # Given back untried: no attempt counted, so no backoff and no step toward dead.
    assert _state(harness, second) == (
        State.QUEUED,
        0,
        "returned unattempted: its lease ran short",
    )
    report = await delivery.tick()
    assert (report.delivered, report.returned, report.recovered) == (1, 1, 0)
    await asyncio.wait_for(delivery.settle(["diemen"]), NEVER)
    assert _state(harness, second)[0] is State.DELIVERED
    assert peer.received == [first, second]


async def test_shutdown_cancels_hanging_lane_and_message_is_delivered_after_restart(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """close() cuts off a hanging push; after restart the lease expires and it is redelivered."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    delivery = harness.gateway.delivery
    delivery.pass_wait = 0
    message_id = (await harness.submit("provider-a", example("JW302")))["id"]
    await delivery.tick()
    await asyncio.wait_for(peer.arrived.wait(), NEVER)

    await asyncio.wait_for(delivery.close(grace=0), NEVER)
    assert not delivery.busy_parties
    assert _state(harness, message_id)[:2] == (State.SENDING, 0)  # not lost, still leased

    restarted = Delivery(
        harness.service,
        outbox=harness.folder / "outbox",
        policy=delivery.policy,
        rng=random.Random(3),
        pass_wait=0,
    )
    try:
        assert (await restarted.tick()).recovered == 0  # the lease still runs
        await asyncio.wait_for(restarted.settle(), NEVER)
        assert _state(harness, message_id)[0] is State.SENDING
        harness.clock.advance(seconds=121)
        peer.release.set()  # the peer answers at once from now on
        assert (await restarted.tick()).recovered == 1
        state, attempts, reason = _state(harness, message_id)
        assert (state, attempts) == (State.QUEUED, 1)
        assert reason.startswith("transient failure: lease expired")
        harness.clock.advance(minutes=5)
        await restarted.tick()
        await asyncio.wait_for(restarted.settle(), NEVER)
        assert _state(harness, message_id)[:2] == (State.DELIVERED, 1)
        assert peer.received == [message_id, message_id]  # the cut-off push was repeated
    finally:
        await restarted.close()


async def test_shutdown_lets_attempt_finish_and_gives_back_the_rest(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """close() waits for the push in flight and returns claimed, unattempted messages."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    delivery = harness.gateway.delivery
    delivery.pass_wait = 0
    first = (await harness.submit("provider-a", example("JW302")))["id"]
    second = (await harness.submit("provider-a", variant(example("JW302"), 1)))["id"]
    await delivery.tick()
    await asyncio.wait_for(peer.arrived.wait(), NEVER)

    closing = asyncio.create_task(delivery.close(grace=NEVER))
    await asyncio.sleep(0)  # let close() begin: lanes start no new attempt from here
    assert not closing.done()
    peer.release.set()
    await asyncio.wait_for(closing, NEVER)
    assert _state(harness, first)[:2] == (State.DELIVERED, 0)
    assert _state(harness, second) == (
        State.QUEUED,
        0,
        "returned unattempted: the gateway is stopping",
    )
    assert peer.received == [first]
    await delivery.tick()  # a restarted pass delivers the rest
    await asyncio.wait_for(delivery.settle(), NEVER)
    assert _state(harness, second)[0] is State.DELIVERED


async def test_lanes_waiting_for_a_slot_claim_nothing(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """With one lane slot taken by a hanging push, provider B waits queued, not leased."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    narrow = Delivery(
        harness.service,
        outbox=harness.folder / "outbox",
        policy=harness.gateway.delivery.policy,
        rng=random.Random(5),
        max_lanes=1,
        pass_wait=0,
    )
    try:
        to_diemen = (await harness.submit("provider-a", example("JW302")))["id"]
        to_b = (await harness.submit("diemen", example("JW319")))["id"]
        await narrow.tick()
        await asyncio.wait_for(peer.arrived.wait(), NEVER)
        assert narrow.busy_parties == {"diemen", "provider-b"}
        assert _state(harness, to_b)[:2] == (State.QUEUED, 0)
        assert (await narrow.tick()).lanes_busy == 2

        peer.release.set()
        await asyncio.wait_for(narrow.settle(), NEVER)
        assert _state(harness, to_diemen)[:2] == (State.DELIVERED, 0)
        assert _state(harness, to_b)[:2] == (State.DELIVERED, 0)
    finally:
        await narrow.close()


async def test_http_lane_delivers_released_messages_in_order_across_claims(
    make_harness: Callable[..., Any], receiver_server: Callable[..., Any]
) -> None:
    """Five held messages for an http party are pushed in arrival order (claims of three)."""
    receiver, url = await receiver_server([])
    harness: Harness = await make_harness({"provider-b": {"channel": "http", "url": url}})
    await harness.service.steering.hold_party("provider-b", "operator:test")
    ids = [
        str((await harness.submit("diemen", variant(example("JW319"), n)))["id"]) for n in range(5)
    ]
    await harness.service.steering.release_party("provider-b", "operator:test")
    await harness.gateway.delivery.tick()
    await asyncio.wait_for(harness.gateway.delivery.settle(), NEVER)
    assert [h["X-Gateway-Message-Id"] for h in receiver.headers] == sorted(ids) == ids
    claimed_at = [
        next(e.at for e in harness.store.history(i) if e.to_state is State.SENDING) for i in ids
    ]
    assert claimed_at == sorted(claimed_at)
    for message_id in ids:
        assert _state(harness, message_id)[:2] == (State.DELIVERED, 0)


async def test_push_timeout_is_cut_to_fit_the_lease(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """A hanging push gives up with what is left of the lease minus the recording margin."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness(
        {"diemen": {"channel": "http", "url": url}},
        extra="[delivery]\nlease_seconds = 0.8\nhttp_timeout_seconds = 0.6",
    )
    message_id = (await harness.submit("provider-a", example("JW302")))["id"]
    await harness.gateway.delivery.tick()
    await asyncio.wait_for(harness.gateway.delivery.settle(), NEVER)
    state, attempts, reason = _state(harness, message_id)
    assert (state, attempts) == (State.QUEUED, 1)
    assert "timeout pushing to" in reason and "(0.6 s)" in reason
    assert peer.received == [message_id]


def test_lanes_and_pass_wait_are_configured_from_delivery_settings(tmp_path: Path) -> None:
    """``[delivery] max_lanes`` and ``pass_wait_seconds`` reach the daemon's Delivery."""
    config = write_config(tmp_path, extra="[delivery]\nmax_lanes = 3\npass_wait_seconds = 0.25")
    gateway = build_app(load_config(config, {}))
    try:
        assert (gateway.delivery.max_lanes, gateway.delivery.pass_wait) == (3, 0.25)
        assert gateway.delivery.plan.claim_size(30) == 3  # the default 120 s lease
    finally:
        gateway.store.close()


async def test_a_lane_whose_lease_was_taken_over_cannot_record_its_late_push(
    make_harness: Callable[..., Any], hanging_peer: Callable[..., Any]
) -> None:
    """Two deliveries (as two processes): A's push outlives its lease, B recovers and claims
    the message again; when both pushes return, only B, the owner of the claim, records."""
    peer, url = await hanging_peer()
    harness: Harness = await make_harness({"diemen": {"channel": "http", "url": url}})
    first = harness.gateway.delivery
    first.pass_wait = 0
    second = Delivery(
        harness.service,
        outbox=harness.folder / "outbox",
        policy=first.policy,
        rng=random.Random(11),
        pass_wait=0,
    )
    try:
        message_id = (await harness.submit("provider-a", example("JW302")))["id"]
        await first.tick()
        await asyncio.wait_for(peer.arrived.wait(), NEVER)
        peer.arrived.clear()

        harness.clock.advance(seconds=121)  # A's lease has run out, its push still hangs
        assert (await second.tick()).recovered == 1
        harness.clock.advance(minutes=11)  # past the retry backoff (cap 600 s)
        await second.tick()
        await asyncio.wait_for(peer.arrived.wait(), NEVER)
        assert peer.received == [message_id, message_id]
        assert _state(harness, message_id) == (State.SENDING, 1, "claimed for delivery")

        peer.release.set()
        await asyncio.wait_for(first.settle(), NEVER)
        await asyncio.wait_for(second.settle(), NEVER)
        late, owner = await first.tick(), await second.tick()
        assert (late.delivered, late.errors) == (0, 0)
        assert owner.delivered == 1
        assert _state(harness, message_id)[:2] == (State.DELIVERED, 1)
        history = harness.store.history(str(message_id))
        assert [e.to_state for e in history].count(State.DELIVERED) == 1
    finally:
        await second.close()
