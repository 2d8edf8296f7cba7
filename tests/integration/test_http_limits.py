"""Bounds on connections and volume, against a real server on 127.0.0.1 (real sockets).

Timeouts are real network waits, kept to fractions of a second; the per-party quota runs on
the harness's fake clock, and the disk floor on an injected free-space reading.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.daemon.app import Gateway, build_app, http_limits
from gateway.daemon.server import BODIES, create_app, listen
from gateway.service.volume import QuotaExceededError
from gateway.store.base import MessageQuery
from tests.integration.conftest import (
    METRICS_TOKEN,
    START,
    Harness,
    example,
    read_response,
    token,
    trickle_body,
    variant,
    write_config,
)

HOST = "127.0.0.1"


@dataclass
class Live:
    """A gateway served the way ``gateway run`` serves it, on a free loopback port."""

    gateway: Gateway
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(HOST, self.port)


MakeLive = Callable[..., "asyncio.Future[Live]"]


@pytest.fixture
async def make_live(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await make_live(server=..., extra=...)``: config lines for ``[server]`` and more."""
    stops: list[Callable[[], object]] = []

    async def factory(server: str = "", extra: str = "") -> Live:
        settings = load_config(write_config(tmp_path, extra=extra, server=server), {})
        gateway = build_app(settings, clock=FakeClock(START), rng=random.Random(7))
        gateway.store.migrate()
        runner = web.AppRunner(gateway.web_app, **http_limits(settings).runner_options())
        await runner.setup()
        listener = await listen(runner, HOST, 0)

        async def stop() -> None:
            listener.close()
            await runner.cleanup()
            await gateway.delivery.close()
            gateway.store.close()

        stops.append(stop)
        return Live(gateway, listener.sockets[0].getsockname()[1])

    yield factory
    for stop in stops:
        await stop()  # type: ignore[misc]


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reads until EOF, at most ``limit``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(limit):
        while await reader.read(4096):
            pass
    return loop.time() - started


async def test_an_idle_connection_is_closed_after_the_idle_timeout(make_live: MakeLive) -> None:
    """A connection that never sends a byte (and needs no token to be opened) is closed."""
    live = await make_live(server="idle_timeout_seconds = 0.3\nheader_timeout_seconds = 5")
    reader, writer = await live.connect()
    elapsed = await _closed_after(reader, limit=8)
    assert 0.25 <= elapsed < 5
    writer.close()


async def test_a_head_sent_slowly_is_cut_off_after_the_header_timeout(make_live: MakeLive) -> None:
    """Header bytes keep trickling in, but the head is never complete: the connection is
    closed after the header timeout, long before the idle timeout."""
    live = await make_live(server="idle_timeout_seconds = 10\nheader_timeout_seconds = 0.3")
    reader, writer = await live.connect()

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(500):
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.02)

    sending = asyncio.create_task(trickle())
    try:
        elapsed = await _closed_after(reader, limit=8)
    finally:
        sending.cancel()
        writer.close()
    assert 0.25 <= elapsed < 5


async def test_the_head_deadline_starts_again_with_each_request(make_live: MakeLive) -> None:
    """A keep-alive connection may pause between requests for longer than the header
    timeout: the deadline runs from a request's first byte, not from the last response."""
    live = await make_live(server="idle_timeout_seconds = 5\nheader_timeout_seconds = 0.3")
    reader, writer = await live.connect()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(request)
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(0.5)
    writer.write(request)
    assert (await read_response(reader))[0] == 200
    writer.close()


async def test_a_body_below_the_minimum_rate_gets_408_and_nothing_is_stored(
    make_live: MakeLive,
) -> None:
    """An authenticated party trickles its body at 400 B/s against a minimum of 1000 B/s."""
    live = await make_live(
        server="body_min_bytes_per_second = 1000\nbody_grace_seconds = 0.2\n"
        "idle_timeout_seconds = 5\nheader_timeout_seconds = 5"
    )
    reader, writer = await live.connect()
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        + f"Authorization: Bearer {token('diemen')}\r\n\r\n".encode()
    )

    sending = trickle_body(writer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(8):
            status, _ = await read_response(reader)
    finally:
        sending.cancel()
        writer.close()
    assert status == 408
    assert loop.time() - started < 5
    assert live.gateway.store.query(MessageQuery(sender="diemen")) == []


async def test_bodies_beyond_the_budget_are_refused_at_once_and_small_requests_go_on(
    make_live: MakeLive,
) -> None:
    """The 40 x 26 MB attack, scaled: 2 bodies may be in flight; while two large bodies are
    arriving, 8 more large ones get 503 with Retry-After quickly, health and mailbox requests
    are answered, only the two admitted are stored, and intake works again afterwards."""
    size = 1_000_000
    live = await make_live(
        server=f"max_bodies_in_flight = 2\nmax_body_bytes_in_flight = {2 * size}\n"
        "body_min_bytes_per_second = 100\nbody_grace_seconds = 30",
        extra=f"[limits]\nmax_message_bytes = {size}",
    )
    junk = random.Random(3).randbytes(size)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
        + f"Content-Length: {size}\r\nAuthorization: Bearer {token('diemen')}\r\n\r\n".encode()
    )
    holders = [await live.connect() for _ in range(2)]
    for _, writer in holders:
        writer.write(head + junk[:1000])
        await writer.drain()
    budget = live.gateway.web_app[BODIES]
    async with asyncio.timeout(5):
        while budget.bodies < 2:
            await asyncio.sleep(0.01)

    auth = {"Authorization": f"Bearer {token('diemen')}"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(live.url) as session:

        async def post() -> tuple[int, str | None, float]:
            started = loop.time()
            async with session.post("/v1/messages", data=junk, headers=auth) as response:
                return response.status, response.headers.get("Retry-After"), loop.time() - started

        refused = await asyncio.gather(*(post() for _ in range(8)))
        assert [(status, retry) for status, retry, _ in refused] == [(503, "2")] * 8
        assert max(seconds for _, _, seconds in refused) < 5
        async with session.get("/healthz") as response:
            assert response.status == 200
        mailbox = {"Authorization": f"Bearer {token('amsterdam')}"}
        async with session.get("/v1/mailbox", headers=mailbox) as response:
            assert response.status == 200

        for reader, writer in holders:
            writer.write(junk[1000:])
            await writer.drain()
            assert (await read_response(reader))[0] == 202
            writer.close()
        stored = live.gateway.store.query(MessageQuery(sender="diemen"))
        assert len(stored) == 1  # the same junk twice: one message, the second a duplicate
        assert sum(m.size for m in stored) <= 2 * size
        assert budget.bodies == 0 and budget.bytes == 0
        async with session.post("/v1/messages", data=example("JW301"), headers=auth) as response:
            assert response.status == 202


async def _quota_harness(make_harness: Callable[..., object], cap: int) -> Harness:
    harness = await make_harness(  # type: ignore[misc]
        extra=f"[limits]\nparty_bytes_per_window = {cap}\nparty_window_hours = 1"
    )
    assert isinstance(harness, Harness)
    return harness


async def test_a_party_over_its_window_allowance_gets_429_until_the_window_ends(
    make_harness: Callable[..., object],
) -> None:
    """Two messages fit in the hour's allowance, the third gets 429 with the seconds left in
    the hour; other parties are not affected; the next hour it is accepted. The count is read
    from the store, so a restarted gateway refuses just the same, and inbox files (which go
    through the same submit) are refused alike."""
    messages = [variant(example("JW301"), n) for n in range(4)]
    cap = len(messages[0]) * 2 + len(messages[0]) // 2
    harness = await _quota_harness(make_harness, cap)
    for raw in messages[:2]:
        await harness.submit("diemen", raw)
    harness.clock.advance(minutes=20)
    response = await harness.post("diemen", messages[2])
    assert response.status == 429, await response.text()
    assert response.headers["Retry-After"] == str(40 * 60)
    assert (await harness.post("provider-a", example("JW315"))).status == 202

    restarted = await _quota_harness(make_harness, cap)
    restarted.clock.set(START + dt.timedelta(minutes=59))
    assert (await restarted.post("diemen", messages[2])).status == 429
    diemen = restarted.service.registry.get("diemen")
    assert diemen is not None
    with pytest.raises(QuotaExceededError) as caught:
        await restarted.service.intake.submit(diemen, messages[2], actor="inbox")
    assert caught.value.retry_after == 60
    restarted.clock.set(START + dt.timedelta(hours=1))
    assert (await restarted.post("diemen", messages[2])).status == 202
    assert len(restarted.store.query(MessageQuery(sender="diemen"))) == 3


async def test_an_inbox_file_over_the_allowance_waits_in_the_inbox(
    make_harness: Callable[..., object],
) -> None:
    """The watcher leaves a refused file where it is (nothing stored, not rejected) and takes
    it on a scan after the window has ended."""
    messages = [variant(example("JW301"), n) for n in range(2)]
    harness = await _quota_harness(make_harness, len(messages[0]) + 10)
    await harness.submit("diemen", messages[0])
    watcher = harness.gateway.watcher
    await watcher.scan()
    inbox = harness.folder / "inbox" / "diemen"
    (inbox / "second.xml").write_bytes(messages[1])
    await watcher.scan()
    report = await watcher.scan()
    assert report.deferred == 1 and report.processed == [] and report.rejected == []
    assert (inbox / "second.xml").read_bytes() == messages[1]
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 1
    harness.clock.advance(hours=1)
    assert (await watcher.scan()).processed == ["second.xml"]
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 2


async def test_concurrent_submissions_cannot_pass_the_allowance_together(
    make_harness: Callable[..., object],
) -> None:
    """Bytes still being stored count: of five submitted at once, only two fit."""
    messages = [variant(example("JW301"), n) for n in range(5)]
    harness = await _quota_harness(make_harness, len(messages[0]) * 2 + 10)
    responses = await asyncio.gather(*(harness.post("diemen", raw) for raw in messages))
    assert sorted(r.status for r in responses) == [202, 202, 429, 429, 429]
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 2


async def test_intake_answers_503_below_the_free_disk_floor(
    make_harness: Callable[..., object],
) -> None:
    """The free-space reading is injected: one byte short of the floor after storing the
    message refuses it with 503 and Retry-After; enough room accepts it."""
    floor = 50_000_000
    harness = await make_harness(extra=f"[limits]\nmin_free_disk_bytes = {floor}")  # type: ignore[misc]
    assert isinstance(harness, Harness)
    raw = example("JW301")
    harness.service.intake.volume.free_disk = lambda: floor + len(raw) - 1
    response = await harness.post("diemen", raw)
    assert response.status == 503
    assert response.headers["Retry-After"] == "60"
    assert "disk" in (await response.json())["error"]
    assert harness.store.query(MessageQuery(sender="diemen")) == []
    harness.service.intake.volume.free_disk = lambda: floor + len(raw)
    assert (await harness.post("diemen", raw)).status == 202


async def test_metrics_need_the_metrics_token(harness: Harness) -> None:
    """No token, a party's token or a wrong one: 401 without any figures; the metrics token:
    200. Without a configured token /metrics is off (404)."""
    for headers in (
        {},
        {"Authorization": f"Bearer {token('bvo')}"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
    ):
        response = await harness.client.get("/metrics", headers=headers)
        assert response.status == 401
        assert "gateway_" not in await response.text()
    assert "gateway_queue_depth" in await harness.metrics()

    unconfigured = TestClient(TestServer(create_app(harness.service)))
    await unconfigured.start_server()
    try:
        response = await unconfigured.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status == 404
    finally:
        await unconfigured.close()
