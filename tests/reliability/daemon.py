"""Run ``gateway run`` as a real subprocess for the reliability tests, and make distinct messages.

The daemon gets a temporary config with four parties named after the identities in the
official examples (no ``answered_by``, so every accepted submission is exactly one message to
deliver): Diemen (0384, folder), Amsterdam (0363, mailbox), provider A (42420001, mailbox) and
provider B (65656055, folder, or ``http`` when a test pushes to a loopback peer).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from gateway.core.route import token_digest
from gateway.store.sql import SqlStore
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

IDENTITIES = {
    "diemen": ("gemeente", "0384"),
    "amsterdam": ("gemeente", "0363"),
    "provider-a": ("aanbieder", "42420001"),
    "provider-b": ("aanbieder", "65656055"),
}
DEFAULT_CHANNELS = {
    "diemen": "folder",
    "amsterdam": "mailbox",
    "provider-a": "mailbox",
    "provider-b": "folder",
}
# Each original official example: (name, submitting party, recipient party).
ROUTES = (
    ("JW301", "diemen", "provider-a"),
    ("JW305", "provider-b", "amsterdam"),
    ("JW307", "provider-b", "amsterdam"),
    ("JW315", "provider-a", "diemen"),
    ("JW317", "provider-b", "diemen"),
    ("JW319", "diemen", "provider-b"),
    ("JW323", "provider-b", "diemen"),
)
_BERICHT_ID = re.compile(rb"(BerichtIdentificatie>\s*<(?:\w+:)?Identificatie>)([^<]+)")
_EXAMPLES = {name: (EXAMPLES_DIR / f"{name}.xml").read_bytes() for name, _, _ in ROUTES}


def token(party: str) -> str:
    """The test token of a party."""
    return f"token-{party}"


def bericht_id(raw: bytes) -> str:
    """The BerichtIdentificatie/Identificatie of a message."""
    found = _BERICHT_ID.search(raw)
    assert found is not None
    return found.group(2).decode()


@dataclass(frozen=True)
class Submission:
    """One distinct message: who sends it, who gets it, its bytes and BerichtIdentificatie."""

    sender: str
    recipient: str
    raw: bytes
    bericht_id: str


def submissions(count: int, prefix: str = "R") -> list[Submission]:
    """``count`` distinct, valid messages cycling through the examples (12-char ids at most)."""
    made = []
    for number in range(count):
        name, sender, recipient = ROUTES[number % len(ROUTES)]
        ident = f"{prefix}{number:07d}"
        raw, replaced = _BERICHT_ID.subn(rb"\g<1>" + ident.encode(), _EXAMPLES[name], 1)
        assert replaced == 1
        made.append(Submission(sender, recipient, raw, ident))
    return made


def shared_pseudonym_key(folder: Path) -> tuple[str, ...]:
    """``extra`` lines for ``write_config`` that give a node the key file in ``folder`` (made
    on first use): nodes on one store share one key, or the store refuses all but the first."""
    key = folder / "pseudonym.key"
    if not key.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key.write_text(secrets.token_hex(32), encoding="ascii")
        key.chmod(0o600)
    return ("[privacy]", f'pseudonym_key_file = "{key}"')


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    folder: Path,
    port: int,
    *,
    store_url: str | None = None,
    channels: dict[str, str] | None = None,
    urls: dict[str, str] | None = None,
    outbox: Path | None = None,
    lease_seconds: float = 120,
    batch_size: int = 100,
    paused: tuple[str, ...] = (),
    name: str = "config.toml",
    inbox: Path | None = None,
    inbox_poll_seconds: float = 5,
    answered: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> Path:
    """A config.toml for the four example parties; fast delivery passes, short backoff.

    Parties in ``answered`` are answered by the BVO; ``extra`` lines go before the parties.
    """
    merged = {**DEFAULT_CHANNELS, **(channels or {})}
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "[paths]",
        f'schemas = ["{OFFICIAL_XSD_DIR}"]',
        f'outbox = "{outbox or folder / "outbox"}"',
        f'inbox = "{inbox or folder / "inbox"}"',
        f'data = "{folder / "data"}"',
        "[retry]",
        "base_seconds = 0.5",
        "cap_seconds = 1",
        "max_attempts = 50",
        "max_age_hours = 1",
        "[delivery]",
        "interval_seconds = 0.2",
        f"inbox_poll_seconds = {inbox_poll_seconds}",
        f"batch_size = {batch_size}",
        f"lease_seconds = {lease_seconds}",
        # The lease must cover one whole push plus a quarter lease to record it.
        f"http_timeout_seconds = {min(30.0, lease_seconds * 0.75)}",
    ]
    if store_url is not None:
        lines += ["[store]", f'url = "{store_url}"']
    lines += extra
    if answered:
        lines += ["[[parties]]", 'id = "bvo"', 'role = "bvo"', 'channel = "mailbox"']
    for party, (role, identity) in IDENTITIES.items():
        lines += [
            "[[parties]]",
            f'id = "{party}"',
            f'role = "{role}"',
            f'identity = "{identity}"',
            f'channel = "{merged[party]}"',
            f'token_sha256 = "{token_digest(token(party))}"',
        ]
        if party in answered:
            lines.append('answered_by = "bvo"')
        if party in paused:
            lines.append('readiness = "paused"')
        if party in (urls or {}):
            lines.append(f'url = "{(urls or {})[party]}"')
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sqlite_url(folder: Path) -> str:
    """Where the daemon of ``write_config`` keeps its default SQLite store."""
    return f"sqlite:///{folder / 'data' / 'gateway.db'}"


@dataclass
class Daemon:
    """A ``gateway run`` subprocess with its log file."""

    config: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)
    env: dict[str, str] = field(default_factory=dict)
    """Variables set for the subprocess on top of the test's environment (no ``GATEWAY_*``)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | self.env
        self.starts += 1
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                cwd=self.config.parent,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, timeout: float = 30) -> None:
        """Poll /readyz until the fresh process answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log()
                try:
                    async with session.get(f"{self.base}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)  # another process starting, not a timer of ours
        raise AssertionError(f"gateway did not become ready:\n{self.log()}")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]


@dataclass
class Acks:
    """What the clients learnt: acknowledged ids by BerichtIdentificatie, and other answers."""

    ids: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    unanswered: list[Submission] = field(default_factory=list)


async def submit_all(
    base: str, todo: list[Submission], clients: int, acks: Acks, timeout: float = 60
) -> None:
    """Submit every message with ``clients`` concurrent sessions; record 202s and failures."""
    queue: asyncio.Queue[Submission] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            while not queue.empty():
                item = queue.get_nowait()
                try:
                    async with session.post(
                        f"{base}/v1/messages",
                        data=item.raw,
                        headers={"Authorization": f"Bearer {token(item.sender)}"},
                    ) as response:
                        acks.statuses[response.status] = acks.statuses.get(response.status, 0) + 1
                        if response.status == 202:
                            body = await response.json()
                            acks.ids[item.bericht_id] = body["id"]
                            acks.states[item.bericht_id] = body["state"]
                        else:
                            acks.unanswered.append(item)
                except (aiohttp.ClientError, TimeoutError):
                    acks.unanswered.append(item)

    await asyncio.gather(*(client() for _ in range(clients)))


async def drain_mailbox(session: aiohttp.ClientSession, base: str, party: str) -> list[str]:
    """Fetch and ack everything in a party's mailbox; the BerichtIdentificaties seen, in order.

    Pages with ``after`` within one pass and starts a new pass from the beginning until a pass
    finds nothing, which is how a client must read a mailbox (see docs/api.md).
    """
    headers = {"Authorization": f"Bearer {token(party)}"}
    seen: list[str] = []
    while True:
        after: str | None = None
        found = 0
        while True:
            query = f"?limit=100&after={after}" if after else "?limit=100"
            async with session.get(f"{base}/v1/mailbox{query}", headers=headers) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            for item in page["messages"]:
                async with session.get(f"{base}/v1/mailbox/{item['id']}", headers=headers) as r:
                    assert r.status == 200
                    seen.append(bericht_id(await r.read()))
                async with session.post(
                    f"{base}/v1/mailbox/{item['id']}/ack", headers=headers
                ) as r:
                    assert r.status == 200 and (await r.json())["state"] == "delivered"
                found += 1
            after = page["next_after"]
            if not page["more"]:
                break
        if found == 0:
            return seen


def folder_files(outbox: Path, party: str) -> Iterator[Path]:
    """The delivered files of a folder party (temp dot-files are not deliveries)."""
    folder = outbox / party
    if folder.exists():
        yield from sorted(p for p in folder.glob("*.xml") if not p.name.startswith("."))


def delivered_events(store: SqlStore, message_id: str) -> int:
    """How many times the store recorded the message as delivered."""
    return sum(1 for e in store.history(message_id) if e.to_state.value == "delivered")
