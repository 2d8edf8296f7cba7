"""Two daemons on one PostgreSQL deliver exactly once; a mailbox reader never skips a message."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import load_config
from gateway.core.model import State
from gateway.daemon.app import Gateway, build_app
from gateway.store.base import MessageQuery, NewMessage
from gateway.store.sql import SqlStore
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.reliability.daemon import (
    Acks,
    Daemon,
    bericht_id,
    drain_mailbox,
    folder_files,
    free_port,
    shared_pseudonym_key,
    submissions,
    submit_all,
    token,
    write_config,
)

MESSAGES = 420
FOLDER_PARTIES = ("diemen", "provider-b")


async def test_two_daemons_on_one_database_deliver_each_message_once(
    tmp_path: Path, pg_database: str
) -> None:
    """Two `gateway run` on one database, each with its own outbox: every id lands once."""
    daemons = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        port = free_port()
        config = write_config(
            folder,
            port,
            store_url=pg_database,
            batch_size=20,
            extra=shared_pseudonym_key(tmp_path),
        )
        daemons.append(Daemon(config, port, folder / "gateway.log"))
    # Separate outboxes: a message delivered by both processes would show up in both folders
    # (in a shared folder the second write would silently replace the first).
    outboxes = [tmp_path / name / "outbox" for name in ("a", "b")]
    todo = submissions(MESSAGES, prefix="T")
    store = SqlStore(pg_database, pseudonyms=TEST_PSEUDONYMS)
    by_process: list[int] = []
    try:
        for daemon in daemons:
            daemon.start()
        for daemon in daemons:
            await daemon.wait_ready()
        acks = Acks()
        await asyncio.gather(
            submit_all(daemons[0].base, todo[0::2], 4, acks),
            submit_all(daemons[1].base, todo[1::2], 4, acks),
        )
        assert len(acks.ids) == MESSAGES, acks.statuses
        folder_ids = {acks.ids[s.bericht_id] for s in todo if s.recipient in FOLDER_PARTIES}

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            done = await asyncio.to_thread(
                store.query, MessageQuery(state=State.DELIVERED, limit=100_000)
            )
            if {m.id for m in done} >= folder_ids:
                break
            await asyncio.sleep(0.05)  # polling the other processes' progress
        else:
            raise AssertionError("folder deliveries did not finish")

        written: Counter[str] = Counter()
        for outbox in outboxes:
            files = [p for party in FOLDER_PARTIES for p in folder_files(outbox, party)]
            by_process.append(len(files))
            written.update(p.stem for p in files)
        assert set(written) == folder_ids and set(written.values()) == {1}, "a double delivery"
        for message_id in folder_ids:
            moves = [(e.from_state, e.to_state) for e in store.history(message_id)]
            assert moves.count((State.QUEUED, State.SENDING)) == 1, moves
            assert moves.count((State.SENDING, State.DELIVERED)) == 1, moves

        # Mailbox parties read through either process; each message is seen and acked once.
        async with aiohttp.ClientSession() as session:
            seen = [
                *await drain_mailbox(session, daemons[0].base, "amsterdam"),
                *await drain_mailbox(session, daemons[1].base, "provider-a"),
            ]
        mailbox = {s.bericht_id for s in todo if s.recipient not in FOLDER_PARTIES}
        assert sorted(seen) == sorted(mailbox)
        assert all(m.state is State.DELIVERED for m in store.query(MessageQuery(limit=100_000)))
    finally:
        codes = [daemon.stop() for daemon in daemons]
        store.close()
    assert codes == [0, 0], [d.log() for d in daemons]
    print(f"deliveries per process: {by_process}")  # both usually share the work


@contextlib.asynccontextmanager
async def _in_process(
    folder: Path, store_url: str, key_folder: Path
) -> AsyncIterator[tuple[Gateway, TestClient[web.Request, web.Application]]]:
    key = shared_pseudonym_key(key_folder)
    gateway = build_app(load_config(write_config(folder, 0, store_url=store_url, extra=key), {}))
    await asyncio.to_thread(gateway.store.migrate)
    client = TestClient(TestServer(gateway.web_app))
    await client.start_server()
    try:
        yield gateway, client
    finally:
        await client.close()
        await gateway.delivery.close()
        gateway.store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_mailbox_never_skips_a_message_queued_after_a_later_one(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """A smaller id queued after a larger one was listed still reaches a pass-by-pass reader."""
    url = (
        f"sqlite:///{tmp_path / 'mailbox.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    early, late = submissions(8, prefix="M")[0], submissions(8, prefix="M")[7]
    assert early.recipient == late.recipient == "provider-a"
    headers = {"Authorization": f"Bearer {token('provider-a')}"}
    async with _in_process(tmp_path, url, tmp_path) as (gateway, client):
        service = gateway.service
        # The early message is stored (its id is taken) but still being validated while the
        # late one goes all the way to the mailbox.
        pending = await asyncio.to_thread(
            service.store.save_received,
            NewMessage(
                sender=early.sender,
                raw=early.raw,
                content_hash=hashlib.sha256(early.raw).hexdigest(),
                bericht_id=early.bericht_id,
                message_type="JW301",
                received_at=service.clock.now(),
                actor="test",
            ),
        )
        response = await client.post(
            "/v1/messages", data=late.raw, headers={"Authorization": f"Bearer {token('diemen')}"}
        )
        late_id = (await response.json())["id"]
        assert pending.message.id < late_id

        first = await (await client.get("/v1/mailbox", headers=headers)).json()
        assert [m["id"] for m in first["messages"]] == [late_id]
        assert first["more"] is False and first["next_after"] is None  # the pass is over

        assert await service.reprocessing.process_stuck(older_than=dt.timedelta(0)) == 1
        # A cursor kept from the first pass would never see the early message...
        kept = await (await client.get(f"/v1/mailbox?after={late_id}", headers=headers)).json()
        assert kept["messages"] == []
        # ...the next pass, from the beginning as documented, does.
        async with aiohttp.ClientSession() as session:
            seen = await drain_mailbox(session, str(client.make_url("")).rstrip("/"), "provider-a")
        assert sorted(seen) == sorted([early.bericht_id, late.bericht_id])
        assert bericht_id(early.raw) == early.bericht_id


async def test_two_daemons_refuse_a_reused_identificatie_once_stored_by_either(
    tmp_path: Path, pg_database: str
) -> None:
    """Each round sends one Identificatie with other bytes to each daemon at the same moment:
    one stores it (202), the other answers 409 naming that message; nothing is queued twice.
    Nobody is answered by the BVO here, so no retour of the gateway comes into play."""
    rounds = submissions(6, prefix="U")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        _in_process(tmp_path / "a", pg_database, tmp_path) as (_, first),
        _in_process(tmp_path / "b", pg_database, tmp_path) as (_, second),
    ):
        for sent in rounds:
            headers = {"Authorization": f"Bearer {token(sent.sender)}"}
            responses = await asyncio.gather(
                first.post("/v1/messages", data=sent.raw, headers=headers),
                second.post("/v1/messages", data=sent.raw + b"\n", headers=headers),
            )
            answers = sorted(
                [(r.status, await r.json()) for r in responses], key=lambda pair: pair[0]
            )
            (stored_status, stored), (refused_status, refused) = answers
            assert (stored_status, refused_status) == (202, 409), answers
            assert refused["earlier"] == stored["id"]
    store = SqlStore(pg_database, pseudonyms=TEST_PSEUDONYMS)
    try:
        kept = store.query(MessageQuery(limit=1000))
    finally:
        store.close()
    originals = [m for m in kept if m.bericht_id in {s.bericht_id for s in rounds}]
    assert sorted(m.bericht_id or "" for m in originals) == sorted(s.bericht_id for s in rounds)
