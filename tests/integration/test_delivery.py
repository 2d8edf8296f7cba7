"""delivery.tick(): folder and HTTP push, retry with backoff, dead, held/released, leases."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.core.model import State
from gateway.outbox_writer import write_atomically
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example, variant


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
    write_atomically(tmp_path, "a.xml", b"first")
    write_atomically(tmp_path, "a.xml", b"second")
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
    retried = await harness.service.retry(str(data["id"]), "operator:test")
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
    moved = await harness.service.hold_party("provider-b", "operator:test")
    assert moved == 1
    second = await harness.submit("diemen", variant(example("JW319"), 1))
    assert second["state"] == "held"
    assert (await harness.gateway.delivery.tick()).delivered == 0
    assert harness.store.party_holds() == {"provider-b": "operator hold"}
    assert [a["action"] for a in harness.store.audit_trail("provider-b")] == ["hold"]

    released = await harness.service.release_party("provider-b", "operator:test")
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
