"""Benchmark: a running ``gateway run`` under concurrent HTTP clients, against raw lxml speed.

Not a test. Starts the daemon as a subprocess on SQLite (and on PostgreSQL when
``GATEWAY_TEST_PG_DSN`` is set), then for each store:

1. full speed: ``--clients`` concurrent clients submit ``--messages`` distinct messages (the
   official examples with a new BerichtIdentificatie each) as fast as the daemon acknowledges;
   prints accepted messages per second and p50/p99 latency;
2. offered load: ``--rate`` messages per second for ``--rate-seconds`` (open loop, sent on a
   fixed schedule whatever the answers do); prints p50/p99 latency;
3. the daemon's resident memory (VmRSS from /proc) sampled every ``--rss-every`` seconds
   throughout: first, last and max.

The same run measures raw lxml parse + XSD validation of the same messages in this process, the
base of the ratio. Targets (2 cores): >= 500 msg/s sustained with durable acknowledgements, p99
< 100 ms at 200 msg/s offered, memory flat over 100,000 messages (``--messages 100000``).

    .venv/bin/python bench/daemon.py [--messages 10000] [--clients 16] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg
from lxml import etree
from sqlalchemy.engine import make_url

from gateway.schemas import load_schema_set

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = REPO.parent / "shared" / "reference" / "ijw" / "ijw-3.2"
EXAMPLES = OFFICIAL / "examples"

PARTIES = {
    "diemen": ("gemeente", "0384", "folder"),
    "amsterdam": ("gemeente", "0363", "mailbox"),
    "provider-a": ("aanbieder", "42420001", "mailbox"),
    "provider-b": ("aanbieder", "65656055", "folder"),
}
ROUTES = (
    ("JW301", "diemen"),
    ("JW305", "provider-b"),
    ("JW307", "provider-b"),
    ("JW315", "provider-a"),
    ("JW317", "provider-b"),
    ("JW319", "diemen"),
    ("JW323", "provider-b"),
)
_BERICHT_ID = re.compile(rb"(BerichtIdentificatie>\s*<(?:\w+:)?Identificatie>)[^<]+")
_RAW = {name: (EXAMPLES / f"{name}.xml").read_bytes() for name, _ in ROUTES}


def message(number: int, prefix: str) -> tuple[str, bytes]:
    """(sending party, a distinct valid message) for a sequence number."""
    name, sender = ROUTES[number % len(ROUTES)]
    ident = f"{prefix}{number:08d}".encode()
    return sender, _BERICHT_ID.sub(lambda m: m.group(1) + ident, _RAW[name], count=1)


def token(party: str) -> str:
    return f"bench-token-{party}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(folder: Path, port: int, store_url: str | None) -> Path:
    lines = [
        "[server]",
        f"port = {port}",
        "[paths]",
        f'schemas = ["{OFFICIAL}"]',
        "[delivery]",
        "interval_seconds = 1",
        "batch_size = 200",
    ]
    if store_url:
        lines += ["[store]", f'url = "{store_url}"']
    for party, (role, identity, channel) in PARTIES.items():
        digest = hashlib.sha256(token(party).encode()).hexdigest()
        lines += [
            "[[parties]]",
            f'id = "{party}"',
            f'role = "{role}"',
            f'identity = "{identity}"',
            f'channel = "{channel}"',
            f'token_sha256 = "{digest}"',
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Phase:
    """Latencies and counts of one load phase."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def record(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 202:
            self.latencies.append(latency)

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return f"nothing accepted {self.statuses}"
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        rate = len(ms) / self.elapsed
        return (
            f"{len(ms)} accepted in {self.elapsed:.1f} s = {rate:.0f} msg/s, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, answers {self.statuses}"
        )


async def _post(session: aiohttp.ClientSession, url: str, sender: str, raw: bytes) -> int:
    async with session.post(
        url, data=raw, headers={"Authorization": f"Bearer {token(sender)}"}
    ) as response:
        await response.read()
        return response.status


async def full_speed(base: str, count: int, clients: int, prefix: str) -> Phase:
    phase = Phase()
    numbers: Iterator[int] = iter(range(count))
    url = f"{base}/v1/messages"

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            for number in numbers:
                sender, raw = message(number, prefix)
                start = time.perf_counter()
                status = await _post(session, url, sender, raw)
                phase.record(status, time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    phase.elapsed = time.perf_counter() - start
    return phase


async def offered_rate(base: str, rate: float, seconds: float, prefix: str) -> Phase:
    """Open loop: message i leaves at start + i/rate, whether or not earlier ones returned."""
    phase = Phase()
    url = f"{base}/v1/messages"
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(number: int) -> None:
            sender, raw = message(number, prefix)
            sent = time.perf_counter()
            status = await _post(session, url, sender, raw)
            phase.record(status, time.perf_counter() - sent)

        tasks = []
        start = time.perf_counter()
        for number in range(total):
            delay = start + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the load schedule itself
            tasks.append(asyncio.create_task(one(number)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - start
    return phase


def raw_lxml_rate(seconds: float) -> float:
    """Messages per second of lxml parse + XSD validation of the same messages."""
    schemas = load_schema_set([OFFICIAL])
    xsd_by_ns = {ns: s.xsd for (ns, _code), s in schemas.schemas.items()}
    messages = [message(n, "L")[1] for n in range(len(ROUTES))]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in messages:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            root = etree.fromstring(raw, parser)
            assert xsd_by_ns[etree.QName(root).namespace].validate(root)
        done += len(messages)
    return done / (time.perf_counter() - start)


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("the daemon exited during start-up")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the daemon did not become ready")


async def bench_store(label: str, store_url: str | None, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(folder, port, store_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        with (folder / "gateway.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(config)],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        samples: list[int] = []

        async def sample() -> None:
            while process.poll() is None:
                samples.append(rss_kib(process.pid))
                await asyncio.sleep(args.rss_every)

        try:
            await wait_ready(base, process)
            sampler = asyncio.create_task(sample())
            print(f"\n== {label}: {args.messages} messages, {args.clients} clients")
            fast = await full_speed(base, args.messages, args.clients, "F")
            print(f"full speed:      {fast.summary()}")
            paced = await offered_rate(base, args.rate, args.rate_seconds, "R")
            print(f"offered {args.rate:.0f}/s:    {paced.summary()}")
            samples.append(rss_kib(process.pid))
            sampler.cancel()
            mib = [s / 1024 for s in samples if s]
            print(
                f"daemon RSS:      first {mib[0]:.0f} MiB, last {mib[-1]:.0f} MiB, "
                f"max {max(mib):.0f} MiB ({len(mib)} samples every {args.rss_every:.0f} s)"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


def fresh_database(dsn: str) -> tuple[str, str, str]:
    """Create an empty database next to ``dsn``: (its store URL, admin conninfo, name)."""
    url = make_url(dsn)
    name = f"bench_{os.getpid()}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), conninfo, name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="full-speed phase size")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--rate", type=float, default=200.0, help="offered msg/s, phase 2")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--rss-every", type=float, default=5.0, help="RSS sampling interval")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; client and daemon share them")
    print(f"raw lxml parse + XSD, same messages: {raw_lxml_rate(5):.0f} msg/s (one core)")
    dsn = os.environ.get("GATEWAY_TEST_PG_DSN")
    if args.backend in ("sqlite", "both"):
        asyncio.run(bench_store("SQLite (WAL, synchronous=FULL)", None, args))
    if args.backend in ("postgres", "both"):
        if not dsn:
            print("\nPostgreSQL skipped: GATEWAY_TEST_PG_DSN is not set")
        else:
            store_url, conninfo, name = fresh_database(dsn)
            try:
                asyncio.run(bench_store(f"PostgreSQL (database {name})", store_url, args))
            finally:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
