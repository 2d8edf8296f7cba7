"""kill -9 of ``gateway run`` mid-burst and mid-delivery: nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.core.model import Message
from gateway.store.base import MessageQuery
from gateway.store.sql import SqlStore
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.reliability.daemon import (
    Acks,
    Daemon,
    bericht_id,
    delivered_events,
    drain_mailbox,
    folder_files,
    free_port,
    sqlite_url,
    submissions,
    submit_all,
    write_config,
)

BURST = 1000
CLIENTS = 8


async def _until(
    condition: Callable[[], object], timeout: float, what: str, store: SqlStore | None = None
) -> None:
    """Poll ``condition()`` until true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.01)  # polling another process's progress, not a timer of ours
    states = Counter(m.state.value for m in _all_messages(store)) if store else {}
    raise AssertionError(f"timed out waiting until {what}; states: {dict(states)}")


def _all_messages(store: SqlStore) -> list[Message]:
    return store.query(MessageQuery(limit=100_000))


async def test_kill_during_intake_burst_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """kill -9 mid-burst; after restart every acked message exists and is delivered exactly once."""
    port = free_port()
    # A short lease: deliveries the crash cut off come back to the queue within seconds.
    config = write_config(tmp_path, port, lease_seconds=2)
    daemon = Daemon(config, port, tmp_path / "gateway.log")
    outbox = tmp_path / "outbox"
    todo = submissions(BURST)
    by_ident = {s.bericht_id: s for s in todo}
    daemon.start()
    try:
        await daemon.wait_ready()
        acks = Acks()
        burst = asyncio.create_task(submit_all(daemon.base, todo, CLIENTS, acks))
        await _until(lambda: len(acks.ids) >= BURST // 3 or burst.done(), 60, "a third is acked")
        daemon.kill()
        await burst
        acked_before_crash = dict(acks.ids)
        assert 0 < len(acked_before_crash) < BURST, "the kill must land in the middle of the burst"
        assert acks.unanswered, "some submissions must have been cut off by the crash"

        daemon.start()
        await daemon.wait_ready()
        store = SqlStore(sqlite_url(tmp_path), pseudonyms=TEST_PSEUDONYMS)
        try:
            # Every acknowledged message survived the crash, with its id and exact bytes.
            for ident, message_id in acked_before_crash.items():
                msg = store.get(message_id)
                assert msg is not None, f"acknowledged message {message_id} was lost"
                assert msg.bericht_id == ident
                assert store.payload(message_id) == by_ident[ident].raw

            # The clients retry what got no answer, and re-send a sample of acked ones: the
            # same message is never stored twice (idempotent intake across the crash).
            retry = Acks()
            resend = [by_ident[i] for i in list(acked_before_crash)[:50]]
            await submit_all(daemon.base, [*acks.unanswered, *resend], CLIENTS, retry)
            assert not retry.unanswered, retry.statuses
            for ident, message_id in retry.ids.items():
                if ident in acked_before_crash:
                    assert message_id == acked_before_crash[ident]
            all_ids = {**acked_before_crash, **retry.ids}
            assert set(all_ids) == set(by_ident)
            stored = _all_messages(store)
            assert len(stored) == BURST, "a submission was stored twice"

            folder_ids = {i for i, s in by_ident.items() if s.recipient in ("diemen", "provider-b")}
            await _until(
                lambda: all(
                    (m := store.get(all_ids[i])) is not None and m.state.value == "delivered"
                    for i in folder_ids
                ),
                40,
                "every folder message is delivered",
                store,
            )
            async with aiohttp.ClientSession() as session:
                seen = [
                    *await drain_mailbox(session, daemon.base, "amsterdam"),
                    *await drain_mailbox(session, daemon.base, "provider-a"),
                ]
            mailbox_ids = set(by_ident) - folder_ids
            assert sorted(seen) == sorted(mailbox_ids), "mailbox lost or repeated a message"

            written = Counter()  # type: Counter[str]
            for party in ("diemen", "provider-b"):
                for path in folder_files(outbox, party):
                    ident = bericht_id(path.read_bytes())
                    written[ident] += 1
                    assert path.name == f"{all_ids[ident]}.xml"
                    assert by_ident[ident].recipient == party
                    assert path.read_bytes() == by_ident[ident].raw
            assert set(written) == folder_ids and set(written.values()) == {1}

            for msg in _all_messages(store):
                assert msg.state.value == "delivered", (msg.id, msg.state, msg.reason)
                assert delivered_events(store, msg.id) == 1
        finally:
            store.close()
    finally:
        daemon.stop()


class SlowPeer:
    """An http-channel recipient that holds every push until released, counting message ids."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received[request.headers["X-Gateway-Message-Id"]] += 1
        await self.release.wait()
        return web.Response(status=200)


async def test_kill_during_delivery_redelivers_after_lease_expiry(tmp_path: Path) -> None:
    """kill -9 while files are written and a push is in flight; both recover after restart."""
    peer = SlowPeer()
    app = web.Application()
    app.router.add_post("/inbox", peer.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    peer_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", peer_port).start()

    port = free_port()
    settings = {
        "channels": {"provider-b": "http"},
        "urls": {"provider-b": f"http://127.0.0.1:{peer_port}/inbox"},
        "lease_seconds": 2,
        "batch_size": 1000,
    }
    # First run: recipients paused, so everything is stored before any delivery starts and
    # the next run claims all of a party's messages in one pass.
    held = write_config(tmp_path, port, paused=("diemen", "provider-b"), **settings)  # type: ignore[arg-type]
    daemon = Daemon(held, port, tmp_path / "gateway.log")
    outbox = tmp_path / "outbox"
    todo = [s for s in submissions(700, prefix="D") if s.recipient in ("diemen", "provider-b")]
    store = SqlStore(sqlite_url(tmp_path), pseudonyms=TEST_PSEUDONYMS)
    try:
        daemon.start()
        await daemon.wait_ready()
        acks = Acks()
        await submit_all(daemon.base, todo, CLIENTS, acks)
        assert len(acks.ids) == len(todo) and set(acks.states.values()) == {"held"}
        assert daemon.stop() == 0

        write_config(tmp_path, port, **settings)  # type: ignore[arg-type]
        to_diemen = {acks.ids[s.bericht_id] for s in todo if s.recipient == "diemen"}
        to_peer = {acks.ids[s.bericht_id] for s in todo if s.recipient == "provider-b"}
        daemon.start()
        await _until(
            lambda: (
                peer.received and 0 < len(list(folder_files(outbox, "diemen"))) < len(to_diemen)
            ),
            30,
            "a push is in flight while the folder outbox is half written",
        )
        daemon.kill()
        claimed = [m for m in _all_messages(store) if m.state.value == "sending"]
        assert claimed, "the kill must leave claimed deliveries behind"
        peer.release.set()  # the peer answers at once from now on

        daemon.start()
        await daemon.wait_ready()
        await _until(
            lambda: all(m.state.value == "delivered" for m in _all_messages(store)),
            40,
            "every message is delivered after the restart",
            store,
        )
        for msg in _all_messages(store):
            assert delivered_events(store, msg.id) == 1, msg.id
        recovered = {
            m.id
            for m in _all_messages(store)
            if any("lease expired" in e.reason for e in store.history(m.id))
        }
        assert {m.id for m in claimed} <= recovered  # the crash's leases came back to the queue

        files = list(folder_files(outbox, "diemen"))
        assert sorted(p.stem for p in files) == sorted(to_diemen)  # exactly one file per id
        assert set(peer.received) == to_peer  # every push arrived, at least once
        assert max(peer.received.values()) >= 2  # the push cut off by the crash was repeated
    finally:
        daemon.stop()
        store.close()
        peer.release.set()
        await runner.cleanup()
