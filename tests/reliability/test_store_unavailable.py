"""A full disk or a vanished database: intake answers 503 with the reason, never 202 and loss."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event
from sqlalchemy.engine import make_url

from gateway.config import load_config
from gateway.daemon.app import Gateway, build_app
from gateway.store.base import MessageQuery
from gateway.store.sql import SqlStore
from tests.reliability.daemon import Submission, free_port, submissions, token, write_config


@contextlib.asynccontextmanager
async def _gateway(
    folder: Path, store_url: str
) -> AsyncIterator[tuple[Gateway, TestClient[web.Request, web.Application]]]:
    settings = load_config(write_config(folder, 0, store_url=store_url), {})
    gateway = build_app(settings)
    client = TestClient(TestServer(gateway.web_app))
    await client.start_server()
    try:
        yield gateway, client
    finally:
        await client.close()
        await gateway.delivery.close()
        gateway.store.close()


async def _post(
    client: TestClient[web.Request, web.Application], item: Submission
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/messages",
        data=item.raw,
        headers={"Authorization": f"Bearer {token(item.sender)}"},
    )
    return response.status, await response.json()


def _stored_ids(store: SqlStore) -> set[str]:
    return {m.id for m in store.query(MessageQuery(limit=100_000))}


async def test_sqlite_disk_full_answers_503_and_recovers(tmp_path: Path) -> None:
    """SQLITE_FULL (max_page_count) → 503 "disk full"; no 202 is lost; intake works afterwards."""
    async with _gateway(tmp_path, f"sqlite:///{tmp_path / 'full.db'}") as (gateway, client):
        store = gateway.store
        store.migrate()
        with store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        assert isinstance(pages, int)
        limit = {"pages": pages + 40}  # room for a few dozen messages, then the "disk" is full

        @event.listens_for(store.engine, "connect")
        def _cap(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count={limit['pages']}")
            cursor.close()

        store.engine.dispose()  # every pooled connection reconnects with the cap
        accepted: dict[str, str] = {}
        refused: list[tuple[Submission, dict[str, Any]]] = []
        for item in submissions(400, prefix="F"):
            status, body = await _post(client, item)
            if status == 202:
                accepted[item.bericht_id] = body["id"]
            else:
                assert status == 503, body
                refused.append((item, body))
        assert accepted and refused, "the cap must be reached part-way"
        assert all("disk full" in body["error"] for _, body in refused), refused[0][1]
        assert (await client.get("/readyz")).status in (200, 503)  # reads may still work

        limit["pages"] = 1_000_000_000  # the disk has room again
        store.engine.dispose()
        assert set(accepted.values()) <= _stored_ids(store), "a 202 message was lost"
        for item, _ in refused[:5]:
            status, body = await _post(client, item)
            assert status == 202 and body["duplicate"] is False, body  # it was never stored
        # Whatever a full disk left half-processed is finished by the housekeeping pass.
        await gateway.service.reprocessing.process_stuck(older_than=dt.timedelta(0))
        states = {m.state.value for m in store.query(MessageQuery(limit=100_000))}
        assert states == {"queued"}


class Proxy:
    """A TCP front for the PostgreSQL socket that the test can take down and bring back."""

    def __init__(self, port: int, host: str, pg_port: int) -> None:
        self.port = port
        self.target = (host, pg_port)
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, pg_port = self.target
        if host.startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{pg_port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(host, pg_port)
        self.links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """The server is gone: refuse new connections and cut the open ones."""
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()
        self.links.clear()
        await self.server.wait_closed()


async def test_postgres_down_answers_503_and_recovers(tmp_path: Path, pg_database: str) -> None:
    """The PostgreSQL server goes away → 503 "database unavailable"; back → intake works again."""
    url = make_url(pg_database)
    host = str(url.query.get("host") or url.host or "127.0.0.1")
    pg_port = int(str(url.query.get("port") or url.port or 5432))
    proxy = Proxy(free_port(), host, pg_port)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port, query={}).render_as_string(
        hide_password=False
    )
    async with _gateway(tmp_path, via_proxy) as (gateway, client):
        await asyncio.to_thread(gateway.store.migrate)  # the proxy runs on this loop
        items = submissions(30, prefix="P")
        accepted: dict[str, str] = {}
        for item in items[:10]:
            status, body = await _post(client, item)
            assert status == 202, body
            accepted[item.bericht_id] = body["id"]

        await proxy.stop()
        for item in items[10:20]:
            status, body = await _post(client, item)
            assert status == 503, body
            assert "database unavailable" in body["error"], body
        assert (await client.get("/readyz")).status == 503

        await proxy.start()
        for item in items[10:]:
            status, body = await _post(client, item)
            assert status == 202 and body["duplicate"] is False, body
            accepted[item.bericht_id] = body["id"]
        assert (await client.get("/readyz")).status == 200
        stored = await asyncio.to_thread(_stored_ids, gateway.store)
        assert set(accepted.values()) == stored  # every 202 is there, nothing else
        await proxy.stop()


async def test_postgres_closed_port_answers_503(tmp_path: Path) -> None:
    """A DSN pointing at a port nobody listens on: intake answers 503, never 202."""
    dead = f"postgresql+psycopg://gateway@127.0.0.1:{free_port()}/gateway"
    async with _gateway(tmp_path, dead) as (_, client):
        status, body = await _post(client, submissions(1, prefix="C")[0])
        assert status == 503
        assert body["error"].startswith("message not accepted: the store is unavailable")
        assert "database unavailable" in body["error"]
        assert (await client.get("/readyz")).status == 503
