"""A gateway on a SQLite store in tmp_path, a FakeClock, and aiohttp's test client."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core.route import token_digest
from gateway.daemon.app import Gateway, build_app
from gateway.store.sql import SqlStore
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

START = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)

# Parties named after the identities in the official examples: Diemen (0384) and Amsterdam
# (0363), providers 42420001 and 65656055. Amsterdam is answered by the BVO.
PARTIES: dict[str, dict[str, str]] = {
    "bvo": {"role": "bvo", "channel": "mailbox"},
    "diemen": {"role": "gemeente", "identity": "0384", "channel": "folder"},
    "amsterdam": {
        "role": "gemeente",
        "identity": "0363",
        "channel": "mailbox",
        "answered_by": "bvo",
    },
    "provider-a": {"role": "aanbieder", "identity": "42420001", "channel": "mailbox"},
    "provider-b": {"role": "aanbieder", "identity": "65656055", "channel": "folder"},
}


METRICS_TOKEN = "token-metrics"


def token(party: str) -> str:
    """The test token of a party."""
    return f"token-{party}"


def example(name: str) -> bytes:
    """An official example message."""
    return (EXAMPLES_DIR / f"{name}.xml").read_bytes()


def variant(raw: bytes, number: int) -> bytes:
    """The same message with another BerichtIdentificatie (a distinct message)."""
    pattern = re.compile(rb"(BerichtIdentificatie>\s*<(?:\w+:)?Identificatie>)[^<]+")
    changed, count = pattern.subn(lambda m: m.group(1) + f"V{number:05d}".encode(), raw, 1)
    assert count == 1
    return changed


def _toml_value(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return f'"{value}"'


def write_config(
    folder: Path,
    overrides: dict[str, dict[str, object]] | None = None,
    extra: str = "",
    rules: str = "dossier = false",
    server: str = "",
    *,
    schemas: Sequence[Path] = (OFFICIAL_XSD_DIR,),
) -> Path:
    """A config.toml for the example parties; ``overrides`` change or add party keys,
    ``server`` adds lines to ``[server]``, ``schemas`` lists the schema folders (the official
    3.2 release by default).

    ``rules`` is the ``[rules]`` section: the dossier rules are off by default, because the
    official examples do not form one dossier (tests/integration/test_dossier_daemon.py turns
    them on).
    """
    lines = [
        "[server]",
        f'metrics_token_sha256 = "{token_digest(METRICS_TOKEN)}"',
        server,
        "[rules]",
        rules,
        "[paths]",
        "schemas = [" + ", ".join(f'"{folder}"' for folder in schemas) + "]",
        "[retry]",
        "base_seconds = 60",
        "cap_seconds = 600",
        "max_attempts = 5",
        "max_age_hours = 24",
        extra,
    ]
    for party, keys in PARTIES.items():
        merged: dict[str, object] = {**keys, **(overrides or {}).get(party, {})}
        lines += [
            "[[parties]]",
            f'id = "{party}"',
            f'token_sha256 = "{token_digest(token(party))}"',
        ]
        lines += [f"{key} = {_toml_value(value)}" for key, value in merged.items()]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Harness:
    """A running gateway app with helpers for the tests."""

    gateway: Gateway
    client: TestClient
    clock: FakeClock
    folder: Path

    @property
    def service(self):  # type: ignore[no-untyped-def]
        return self.gateway.service

    @property
    def store(self) -> SqlStore:
        return self.gateway.store

    async def post(self, party: str, body: bytes) -> ClientResponse:
        return await self.client.post(
            "/v1/messages", data=body, headers={"Authorization": f"Bearer {token(party)}"}
        )

    async def get(self, party: str, path: str) -> ClientResponse:
        return await self.client.get(path, headers={"Authorization": f"Bearer {token(party)}"})

    async def metrics(self) -> str:
        """The /metrics text, fetched with the metrics token."""
        response = await self.client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status == 200, await response.text()
        return await response.text()

    async def submit(self, party: str, body: bytes) -> dict[str, object]:
        response = await self.post(party, body)
        assert response.status == 202, await response.text()
        data: dict[str, object] = await response.json()
        return data


HarnessFactory = Callable[..., "AsyncIterator[Harness]"]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples named ``name`` in a /metrics text, by their sorted labels (parsed by
    prometheus_client, so a malformed exposition fails here)."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value, or None when /metrics does not show it."""
    return samples(text, name).get(tuple(sorted(labels.items())))


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Build a harness: ``await make_harness(overrides=..., extra=...)``."""
    clients: list[TestClient] = []
    gateways: list[Gateway] = []

    async def factory(
        overrides: dict[str, dict[str, object]] | None = None,
        extra: str = "",
        rules: str = "dossier = false",
        schemas: Sequence[Path] = (OFFICIAL_XSD_DIR,),
    ) -> Harness:
        settings = load_config(write_config(tmp_path, overrides, extra, rules, schemas=schemas), {})
        clock = FakeClock(START)
        gateway = build_app(settings, clock=clock, rng=random.Random(7))
        # A pass waits for the lanes it started, so its report holds their outcomes however
        # loaded the host is (a bounded wait would flake); hanging-peer tests set 0.
        gateway.delivery.pass_wait = None
        gateway.store.migrate()
        client = TestClient(TestServer(gateway.web_app))
        await client.start_server()
        clients.append(client)
        gateways.append(gateway)
        return Harness(gateway, client, clock, tmp_path)

    yield factory
    for client in clients:
        await client.close()
    for gateway in gateways:
        await gateway.delivery.close()
        gateway.store.close()


@pytest.fixture
async def harness(make_harness: Callable[..., object]) -> Harness:
    """The default harness."""
    built = await make_harness()  # type: ignore[misc]
    assert isinstance(built, Harness)
    return built


async def start_harness(
    folder: Path,
    overrides: dict[str, dict[str, object]] | None = None,
    extra: str = "",
    rules: str = "dossier = false",
    *,
    now: dt.datetime = START,
    build: Callable[..., Gateway] = build_app,
    server: str = "",
) -> Harness:
    """A harness outside the ``make_harness`` fixture, on the running loop (a sync test that
    drives its own event loop, e.g. the dossier scenarios); close it with :func:`stop_harness`.
    ``build`` may be a ``build_app`` that shares expensive parts (the schema set); ``server``
    adds lines to ``[server]``."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_config(write_config(folder, overrides, extra, rules, server), {})
    clock = FakeClock(now)
    gateway = build(settings, clock=clock, rng=random.Random(7))
    gateway.delivery.pass_wait = None
    gateway.store.migrate()
    client = TestClient(TestServer(gateway.web_app))
    await client.start_server()
    return Harness(gateway, client, clock, folder)


async def stop_harness(harness: Harness) -> None:
    """Close what :func:`start_harness` opened."""
    await harness.client.close()
    await harness.gateway.delivery.close()
    harness.gateway.store.close()


def trickle_body(writer: asyncio.StreamWriter) -> asyncio.Task[None]:
    """Send body bytes slowly in the background: 20 bytes every 50 ms (400 B/s), 4000 in all."""

    async def send() -> None:
        for _ in range(200):
            writer.write(b"<" * 20)
            await writer.drain()
            await asyncio.sleep(0.05)

    return asyncio.create_task(send())


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length, off a raw socket."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)
