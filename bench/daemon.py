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
import shutil
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
from typing import Protocol

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


def write_config(
    folder: Path, port: int, store_url: str | None, delivery_interval: float = 1.0
) -> Path:
    lines = [
        "[server]",
        f"port = {port}",
        "[paths]",
        f'schemas = ["{OFFICIAL}"]',
        "[delivery]",
        f"interval_seconds = {delivery_interval}",
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


class Poster(Protocol):
    """Submits one message over a kept-alive connection; returns the HTTP status."""

    async def post(self, sender: str, raw: bytes) -> int: ...

    async def close(self) -> None: ...


class AiohttpPoster:
    """aiohttp's client: complete, but about as costly per request as the daemon's server."""

    def __init__(self, base: str, limit: int) -> None:
        self.url = f"{base}/v1/messages"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))

    async def post(self, sender: str, raw: bytes) -> int:
        headers = {"Authorization": f"Bearer {token(sender)}"}
        async with self.session.post(self.url, data=raw, headers=headers) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self.session.close()


class RawPoster:
    """Plain asyncio streams speaking just the HTTP/1.1 the benchmark needs (keep-alive,
    Content-Length answers): a fraction of aiohttp's client cost, so on 2 cores more of the
    machine is left to the daemon. Idle connections are pooled, up to ``limit``."""

    def __init__(self, base: str, limit: int) -> None:
        address = base.removeprefix("http://")
        self.host, _, port = address.partition(":")
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)
        self.all: list[asyncio.StreamWriter] = []

    async def post(self, sender: str, raw: bytes) -> int:
        async with self.slots:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.all.append(writer)
            head = (
                f"POST /v1/messages HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {token(sender)}\r\n"
                f"Content-Type: application/xml\r\nContent-Length: {len(raw)}\r\n\r\n"
            )
            writer.write(head.encode() + raw)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("the daemon closed the connection")
            status = int(status_line.split()[1])
            length, keep = 0, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and b"close" in value.lower():
                    keep = False
                elif name == b"transfer-encoding":
                    raise ConnectionError("chunked answers are not expected from intake")
            await reader.readexactly(length)
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status

    async def close(self) -> None:
        for writer in self.all:
            writer.close()


def poster(kind: str, base: str, limit: int) -> Poster:
    return RawPoster(base, limit) if kind == "raw" else AiohttpPoster(base, limit)


async def full_speed(base: str, count: int, clients: int, prefix: str, kind: str) -> Phase:
    phase = Phase()
    numbers: Iterator[int] = iter(range(count))
    client = poster(kind, base, clients)

    async def one_client() -> None:
        for number in numbers:
            sender, raw = message(number, prefix)
            start = time.perf_counter()
            status = await client.post(sender, raw)
            phase.record(status, time.perf_counter() - start)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one_client() for _ in range(clients)))
    finally:
        await client.close()
    phase.elapsed = time.perf_counter() - start
    return phase


async def offered_rate(base: str, rate: float, seconds: float, prefix: str, kind: str) -> Phase:
    """Open loop: message i leaves at start + i/rate, whether or not earlier ones returned."""
    phase = Phase()
    total = int(rate * seconds)
    client = poster(kind, base, 200)

    async def one(number: int) -> None:
        sender, raw = message(number, prefix)
        sent = time.perf_counter()
        status = await client.post(sender, raw)
        phase.record(status, time.perf_counter() - sent)

    tasks = []
    start = time.perf_counter()
    try:
        for number in range(total):
            delay = start + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the load schedule itself
            tasks.append(asyncio.create_task(one(number)))
        await asyncio.gather(*tasks)
    finally:
        await client.close()
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
        config = write_config(folder, port, store_url, args.delivery_interval)
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
            batches_before = await write_batches(base)
            cpu_before, client_before = cpu_seconds(process.pid), time.process_time()
            spy = start_py_spy(args.py_spy, process.pid) if args.py_spy else None
            fast = await full_speed(base, args.messages, args.clients, "F", args.client)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            daemon_cpu = cpu_seconds(process.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            print(f"full speed:      {fast.summary()}")
            print(
                f"                 daemon CPU {daemon_cpu:.1f} s = "
                f"{daemon_cpu / max(fast.elapsed, 1e-9):.2f} cores, "
                f"{daemon_cpu / max(len(fast.latencies), 1) * 1000:.2f} ms per accepted message; "
                f"load generator ({args.client}) CPU {client_cpu:.1f} s"
            )
            batches_after = await write_batches(base)
            print(f"                 {batch_summary(batches_before, batches_after)}")
            paced = await offered_rate(base, args.rate, args.rate_seconds, "R", args.client)
            print(f"offered {args.rate:.0f}/s:    {paced.summary()}")
            print(f"                 {batch_summary(batches_after, await write_batches(base))}")
            samples.append(rss_kib(process.pid))
            sampler.cancel()
            mib = [s / 1024 for s in samples if s]
            print(
                f"daemon RSS:      first {mib[0]:.0f} MiB, last {mib[-1]:.0f} MiB, "
                f"max {max(mib):.0f} MiB ({len(mib)} samples every {args.rss_every:.0f} s)"
            )
            step = max(1, len(mib) // 12)
            print(f"                 RSS series (MiB): {' '.join(f'{m:.0f}' for m in mib[::step])}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


async def write_batches(base: str) -> dict[str, float]:
    """The daemon's group-commit counters from /metrics (empty for a daemon without them)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("gateway_write_batch"):
            found[name] = float(value)
    return found


def batch_summary(before: dict[str, float], after: dict[str, float]) -> str:
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    batches = delta.get("gateway_write_batches_total", 0.0)
    if not batches:
        return "no group-commit counters"
    return (
        f"{batches:.0f} write transactions, "
        f"{delta['gateway_write_batch_records_total'] / batches:.1f} messages and "
        f"{delta['gateway_write_batch_moves_total'] / batches:.1f} moves each, "
        f"{delta['gateway_write_batch_seconds_total'] / batches * 1000:.1f} ms each"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_py_spy(output: Path, pid: int) -> subprocess.Popen[bytes]:
    """Record the daemon with py-spy (raw folded stacks) until interrupted."""
    exe = shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy"
    command = [exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(output)]
    # --gil: only the thread holding the GIL, i.e. where the daemon's Python time goes.
    return subprocess.Popen([*command, "--rate", "200", "--nonblocking", "--gil"])


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
    parser.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="load generator: plain asyncio HTTP/1.1 (light) or aiohttp's client",
    )
    parser.add_argument(
        "--delivery-interval",
        type=float,
        default=1.0,
        help="seconds between delivery passes (e.g. 3600: intake alone, nothing delivered)",
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="record the daemon's full-speed phase here"
    )
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
