"""Benchmark: a running ``gateway run`` under concurrent HTTP clients, against raw lxml speed.

Not a test. Starts the daemon as a subprocess on SQLite (and on PostgreSQL when
``GATEWAY_TEST_PG_DSN`` is set), then for each store:

1. full speed: ``--clients`` concurrent clients submit ``--messages`` distinct messages (the
   official examples with a new BerichtIdentificatie each) as fast as the daemon acknowledges;
   prints accepted messages per second and p50/p99 latency. Each client waits for its answer
   before it sends again (a closed loop), so the rate is at most clients / latency: with 16
   clients and ~40 ms per acknowledgement (a message waits for its preparation and then for
   its group commit) the loop measures the latency, not what the daemon can sustain. The
   default of 32 clients keeps enough work waiting that the daemon, not the loop, sets the
   rate (PostgreSQL, session 10: 16 clients ~420 msg/s at 2.6 ms CPU per message, 32 clients
   ~700 msg/s at 1.6 ms, larger batches per commit);
2. offered load: ``--rate`` messages per second for ``--rate-seconds`` (open loop, sent on a
   fixed schedule whatever the answers do); prints p50/p99 latency;
3. the daemon's resident memory (VmRSS from /proc) sampled every ``--rss-every`` seconds
   throughout: first, last and max.

The same run measures raw lxml parse + XSD validation of the same messages in this process, the
base of the ratio. Targets (2 cores): >= 500 msg/s sustained with durable acknowledgements, p99
< 100 ms at 200 msg/s offered, memory flat over 100,000 messages (``--messages 100000``).

    .venv/bin/python bench/daemon.py [--messages 10000] [--clients 32] [--backend sqlite]

Two traffic mixes (``--mix``, repeatable; by default both, one after the other, side by side
in the summary table):

* ``realistic``: the BVO answers for both gemeenten (``answered_by``), so the
  messages to them run the dossier (B/E) rules against the register, get a retour built and
  write register entries; and each group of consecutive messages (one pass over the seven
  examples) is about its own client: every ``<Bsn>`` is rewritten to a valid 11-proof BSN of
  that group (a JW323's second client gets a second one), and DeclaratieNummer is unique. The
  per-client intake locks then serialise only what real traffic would.
* ``uniform``: the official examples as shipped (one BSN in every message), nobody answered
  for: the mix of the earlier figures.

Memory: every run prints the daemon's anonymous memory by origin (glibc main arena, thread
arenas, CPython arenas, the rest) from /proc/PID/smaps; ``--trim-probe`` also attaches gdb at
the start and the end to print SQLite's own heap (``sqlite3_memory_used``), write glibc's
per-arena totals (``malloc_stats``) into the daemon's log (``--keep-log``) and call
``malloc_trim(0)``, printing RSS before and after.

Each run prints the accepted msg/s next to the daemon's CPU milliseconds per accepted message
(user + system time from /proc, so less sensitive to a busy host than msg/s), and a summary
table at the end. To compare two versions in one run, on the same host load, alternate them:

    mkdir /tmp/before && git archive HEAD gateway | tar -x -C /tmp/before
    .venv/bin/python bench/daemon.py --tree /tmp/before --tree . --rounds 2 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
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
from collections.abc import Iterator, Sequence
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

SLOWEST_KEPT = 5
"""How many of the slowest answers of a phase are printed with their send time."""

# The uniform mix: the official examples between four parties, nobody answered for.
PARTIES: dict[str, tuple[str, str | None, str]] = {
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
# The realistic mix: the demo dossier of docs/examples (JW315 request, JW301 allocation, JW305
# start, JW317 change request, JW319 answer, JW307 stop, JW323 declaration) between the demo
# parties of config.toml: the BVO answers for the gemeenten (dossier rules, retours, register
# entries), and product codes are translated between the provider's and gemeente's generations.
DEMO = REPO / "docs" / "examples"
_GENERATIONS = '[{ generation = "legacy" }, { generation = "profile-2018", from = 2018-01-01 }]'
# id: (role, identity, channel, answered_by, generation as TOML)
DEMO_PARTIES: dict[str, tuple[str, str | None, str, str | None, str | None]] = {
    "bvo": ("bvo", None, "mailbox", None, None),
    "gemeente-deventer": ("gemeente", "0150", "folder", "bvo", _GENERATIONS),
    "gemeente-zwolle": ("gemeente", "0193", "mailbox", "bvo", _GENERATIONS),
    "jeugdhulp-oost": ("aanbieder", "42420001", "mailbox", None, '"legacy"'),
    "zorgpartners": ("aanbieder", "65656055", "folder", None, '"profile-2018"'),
}
DOSSIER = (
    ("01-JW315", "jeugdhulp-oost"),
    ("02-JW301", "gemeente-deventer"),
    ("03-JW305", "jeugdhulp-oost"),
    ("04-JW317", "jeugdhulp-oost"),
    ("05-JW319", "gemeente-deventer"),
    ("06-JW307", "jeugdhulp-oost"),
    ("07-JW323", "jeugdhulp-oost"),
)
# Dossiers in flight side by side: the messages of one dossier are this many places apart in
# the sending order (>= 160 ms at 200 msg/s), so each is acknowledged before the next one of
# its dossier leaves, as one sender's software would do, while other clients' messages run
# concurrently.
INTERLEAVE = 64
MIXES = ("realistic", "uniform")
_BERICHT_ID = re.compile(rb"(BerichtIdentificatie>\s*<(?:\w+:)?Identificatie>)[^<]+")
_BSN = re.compile(rb"(<(?:\w+:)?Bsn>)(\d{9})(<)")
_RAW = {name: (EXAMPLES / f"{name}.xml").read_bytes() for name, _ in ROUTES}
_DEMO_RAW = {name: (DEMO / f"{name}.xml").read_bytes() for name, _ in DOSSIER}
# Client numbers of each phase start here, so phases never share a client (BSN prefixes and
# ToewijzingNummers stay in range below 8,990,000 clients).
_PHASE_CLIENT_BASE = {"F": 0, "P": 2_000_000, "R": 4_000_000, "L": 8_000_000}


def bsn(client: int) -> str:
    """A valid (11-proof) BSN, distinct for every client number below 8,990,000.

    Client ``n`` owns the ten 8-digit prefixes ``10_000_000 + 10 n ...``; the check digit
    (the weighted sum modulo 11) is 10 for at most one of ten consecutive prefixes, since
    each step changes the sum by 2."""
    for prefix in range(10_000_000 + 10 * client, 10_000_000 + 10 * client + 10):
        digits = f"{prefix:08d}"
        check = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return digits + str(check)
    raise AssertionError("unreachable: two consecutive prefixes never both give 10")


def message(number: int, prefix: str, mix: str = "uniform") -> tuple[str, bytes]:
    """(sending party, a distinct valid message) for a sequence number."""
    ident = f"{prefix}{number:08d}".encode()
    if mix == "realistic":
        return dossier_message(number, prefix, ident)
    name, sender = ROUTES[number % len(ROUTES)]
    return sender, _BERICHT_ID.sub(lambda m: m.group(1) + ident, _RAW[name], count=1)


def dossier_message(number: int, prefix: str, ident: bytes) -> tuple[str, bytes]:
    """Message ``number`` of the realistic mix: one step of one client's dossier, with that
    client's BSN and its own ToewijzingNummer, ReferentieAanbieder, DeclaratieNummer and
    ReferentieNummer."""
    block, place = divmod(number, INTERLEAVE * len(DOSSIER))
    step, lane = divmod(place, INTERLEAVE)
    client = _PHASE_CLIENT_BASE[prefix] + block * INTERLEAVE + lane
    name, sender = DOSSIER[step]
    raw = _BERICHT_ID.sub(lambda m: m.group(1) + ident, _DEMO_RAW[name], count=1)
    raw = _BSN.sub(lambda m: m.group(1) + bsn(client).encode() + m.group(3), raw)
    reference = f"JHO-{prefix}{client:08d}"
    for old, new in (
        (b">JHO-2026-0042<", f">{reference}-A<"),
        (b">JHO-2026-0043<", f">{reference}-B<"),
        (b">2026001<", f">{100_000_000 + client}<"),
        (b">JHOD202610<", f">D{prefix}{client:08d}<"),
        (b">JHOP20260001<", f">P{prefix}{client:08d}<"),
    ):
        raw = raw.replace(old, new.encode())
    return sender, raw


METRICS_TOKEN = "bench-token-metrics"


def token(party: str) -> str:
    return f"bench-token-{party}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def party_lines(party: str, role: str, identity: str | None, channel: str) -> list[str]:
    """A ``[[parties]]`` entry, with the bench token's hash."""
    digest = hashlib.sha256(token(party).encode()).hexdigest()
    lines = [
        "[[parties]]",
        f'id = "{party}"',
        f'role = "{role}"',
        f'channel = "{channel}"',
        f'token_sha256 = "{digest}"',
    ]
    return lines + ([f'identity = "{identity}"'] if identity is not None else [])


def write_config(
    folder: Path,
    port: int,
    store_url: str | None,
    delivery_interval: float = 1.0,
    mix: str = "uniform",
    *,
    prepare_workers: int = 0,
) -> Path:
    lines = [
        "[server]",
        f"port = {port}",
        f"prepare_workers = {prepare_workers}",
        f'metrics_token_sha256 = "{hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()}"',
        # Throughput, not the hostile-client bounds (bench/hostile_bodies.py measures those).
        "max_bodies_in_flight = 4096",
        "[limits]",
        "party_bytes_per_window = 0",
        "[paths]",
        f'schemas = ["{OFFICIAL}"]',
        # The code lists and gemeente list of this checkout, also for a ``--tree`` snapshot
        # of the package alone.
        f'mappings = "{REPO / "mappings"}"',
        "[delivery]",
        f"interval_seconds = {delivery_interval}",
        "batch_size = 200",
        "[rules]",
        # The official examples use category 55 codes, which the shipped JZ21 list lacks.
        'product_codes = "JZ21, SYNTHETIC-EXAMPLES"',
    ]
    if store_url:
        lines += ["[store]", f'url = "{store_url}"']
    if mix == "realistic":
        contracts = REPO / "mappings" / "contracts" / "SYNTHETIC_contracts_ijsselland.csv"
        lines += ["[lists]", f'contracts = "{contracts}"']
        for party, (role, identity, channel, answered_by, generation) in DEMO_PARTIES.items():
            lines += party_lines(party, role, identity, channel)
            if answered_by is not None:
                lines.append(f'answered_by = "{answered_by}"')
            if generation is not None:
                lines.append(f"generation = {generation}")
    else:
        for party, (role, identity, channel) in PARTIES.items():
            lines += party_lines(party, role, identity, channel)
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its prepare workers in KiB (0 once it is gone)."""
    total = 0
    for member in (pid, *child_pids(pid)):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (the daemon's prepare workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Phase:
    """Latencies and counts of one load phase."""

    latencies: list[float] = field(default_factory=list)
    slowest: list[tuple[float, float]] = field(default_factory=list)
    """The slowest accepted answers as (latency, wall-clock send time), to match the log."""
    statuses: dict[int, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def record(self, answer: tuple[int, str], latency: float) -> None:
        status, state = answer
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 202:
            self.latencies.append(latency)
            self.states[state] = self.states.get(state, 0) + 1
            if len(self.slowest) < SLOWEST_KEPT or latency > self.slowest[0][0]:
                heapq.heappush(self.slowest, (latency, time.time() - latency))
                if len(self.slowest) > SLOWEST_KEPT:
                    heapq.heappop(self.slowest)

    def slowest_line(self) -> str:
        """The slowest answers with the wall-clock second they were sent (epoch, as in logs)."""
        return ", ".join(
            f"{latency * 1000:.0f} ms at {sent:.3f}" for latency, sent in sorted(self.slowest)[::-1]
        )

    @property
    def rate(self) -> float:
        """Accepted messages per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def p99_ms(self) -> float:
        ms = sorted(x * 1000 for x in self.latencies)
        return ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else float("nan")

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return f"nothing accepted {self.statuses}"
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        rate = len(ms) / self.elapsed
        return (
            f"{len(ms)} accepted in {self.elapsed:.1f} s = {rate:.0f} msg/s, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, answers {self.statuses}, "
            f"states {dict(sorted(self.states.items()))}"
        )


_STATE = re.compile(rb'"state"\s*:\s*"(\w+)"')


def answer_of(status: int, body: bytes) -> tuple[int, str]:
    """(HTTP status, the message state the daemon answered, or "")."""
    found = _STATE.search(body)
    return status, found.group(1).decode() if found else ""


class Poster(Protocol):
    """Submits one message over a kept-alive connection; returns (HTTP status, state)."""

    async def post(self, sender: str, raw: bytes) -> tuple[int, str]: ...

    async def close(self) -> None: ...


class AiohttpPoster:
    """aiohttp's client: complete, but about as costly per request as the daemon's server."""

    def __init__(self, base: str, limit: int) -> None:
        self.url = f"{base}/v1/messages"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))

    async def post(self, sender: str, raw: bytes) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token(sender)}"}
        async with self.session.post(self.url, data=raw, headers=headers) as response:
            return answer_of(response.status, await response.read())

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

    async def post(self, sender: str, raw: bytes) -> tuple[int, str]:
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
            body = await reader.readexactly(length)
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return answer_of(status, body)

    async def close(self) -> None:
        for writer in self.all:
            writer.close()


def poster(kind: str, base: str, limit: int) -> Poster:
    return RawPoster(base, limit) if kind == "raw" else AiohttpPoster(base, limit)


async def full_speed(
    base: str | Sequence[str], count: int, clients: int, prefix: str, *, kind: str, mix: str
) -> Phase:
    """``count`` messages from ``clients`` closed-loop clients; with several bases (nodes,
    bench/nodes.py) message ``n`` goes to base ``n % len(bases)``, as a round-robin balancer
    would send it, so one client's steps reach different nodes."""
    phase = Phase()
    numbers: Iterator[int] = iter(range(count))
    posters = [poster(kind, one, clients) for one in ([base] if isinstance(base, str) else base)]
    # Realistic mix: a client's next step leaves only once its previous step was answered, as
    # one sender's software does (message n - INTERLEAVE is the same client's previous step).
    answered = {number: asyncio.Event() for number in range(count)} if mix == "realistic" else {}

    async def one_client() -> None:
        for number in numbers:
            if answered and number % (INTERLEAVE * len(DOSSIER)) >= INTERLEAVE:
                await answered[number - INTERLEAVE].wait()
            sender, raw = message(number, prefix, mix)
            start = time.perf_counter()
            status = await posters[number % len(posters)].post(sender, raw)
            phase.record(status, time.perf_counter() - start)
            if answered:
                answered[number].set()

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one_client() for _ in range(clients)))
    finally:
        for client in posters:
            await client.close()
    phase.elapsed = time.perf_counter() - start
    return phase


async def offered_rate(
    base: str, rate: float, seconds: float, prefix: str, *, kind: str, mix: str
) -> Phase:
    """Open loop: message i leaves at start + i/rate, whether or not earlier ones returned."""
    phase = Phase()
    total = int(rate * seconds)
    client = poster(kind, base, 200)

    async def one(number: int) -> None:
        sender, raw = message(number, prefix, mix)
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


@dataclass
class Outcome:
    """One daemon run's headline figures, for the summary table."""

    tree: str
    store: str
    mix: str
    full_speed: float
    cpu_ms: float
    cores: float
    offered_p99_ms: float
    rss_last_mib: float


SQLITE_FILES = ("gateway.db", "gateway.db-wal", "gateway.db-shm")


def start_daemon(folder: Path, config: Path, tree: Path | None) -> subprocess.Popen[bytes]:
    """``gateway run`` in ``folder``, importing ``gateway`` from ``tree`` when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    if tree is not None:
        # The daemon imports ``gateway`` from this tree (e.g. a snapshot of the last commit).
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(tree.resolve()), env.get("PYTHONPATH")])
        )
    with (folder / "gateway.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def prefill_template(
    args: argparse.Namespace, tree: Path | None, mix: str, keep: Path
) -> Path:
    """A SQLite store holding ``--prefill`` messages of ``mix`` (prefix P), stored by a daemon
    at full speed and left to deliver for a few seconds; every measured run of that mix starts
    from a copy of it. Returns the folder holding the database files."""
    with tempfile.TemporaryDirectory(prefix="gateway-prefill-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(folder, port, None, args.delivery_interval, mix)
        process = start_daemon(folder, config, tree)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base, process)
            filled = await full_speed(
                base, args.prefill, args.clients, "P", kind=args.client, mix=mix
            )
            print(f"prefill ({mix}): {filled.summary()}")
            await asyncio.sleep(5)  # let delivery move most of them on, as in a live store
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=300)
        target = keep / mix
        target.mkdir(parents=True)
        for name in SQLITE_FILES:
            if (folder / "data" / name).exists():
                shutil.copyfile(folder / "data" / name, target / name)
    return target


async def bench_store(
    label: str,
    store_url: str | None,
    args: argparse.Namespace,
    tree: Path | None = None,
    mix: str = "realistic",
    *,
    template: Path | None = None,
    prepare_workers: int = 0,
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(
            folder, port, store_url, args.delivery_interval, mix, prepare_workers=prepare_workers
        )
        if template is not None and store_url is None:
            (folder / "data").mkdir()
            for name in SQLITE_FILES:
                if (template / name).exists():
                    shutil.copyfile(template / name, folder / "data" / name)
        process = start_daemon(folder, config, tree)
        base = f"http://127.0.0.1:{port}"
        samples: list[int] = []

        async def sample() -> None:
            while process.poll() is None:
                samples.append(rss_kib(process.pid))
                await asyncio.sleep(args.rss_every)

        try:
            await wait_ready(base, process)
            sampler = asyncio.create_task(sample())
            if args.trim_probe:
                print(f"at start:        {anonymous_breakdown(process.pid)}")
                print(f"                 {trim_probe(process.pid)}")
            print(f"\n== {label}, {mix} mix: {args.messages} messages, {args.clients} clients")
            batches_before = await write_batches(base)
            cpu_before, client_before = cpu_seconds(process.pid), time.process_time()
            spy = start_py_spy(args.py_spy, process.pid) if args.py_spy else None
            fast = await full_speed(
                base, args.messages, args.clients, "F", kind=args.client, mix=mix
            )
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            daemon_cpu = cpu_seconds(process.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            cpu_ms = daemon_cpu / max(len(fast.latencies), 1) * 1000
            cores = daemon_cpu / max(fast.elapsed, 1e-9)
            print(f"full speed:      {fast.summary()}")
            print(
                f"                 {fast.rate:.0f} msg/s at {cpu_ms:.2f} ms daemon CPU per "
                f"accepted message ({daemon_cpu:.1f} s = {cores:.2f} cores); "
                f"load generator ({args.client}) CPU {client_cpu:.1f} s"
            )
            batches_after = await write_batches(base)
            print(f"                 {batch_summary(batches_before, batches_after)}")
            paced = await offered_rate(
                base, args.rate, args.rate_seconds, "R", kind=args.client, mix=mix
            )
            print(f"offered {args.rate:.0f}/s:    {paced.summary()}")
            print(f"                 slowest: {paced.slowest_line()}")
            print(f"                 {batch_summary(batches_after, await write_batches(base))}")
            samples.append(rss_kib(process.pid))
            sampler.cancel()
            rss_last = report_memory(samples, process.pid, args)
            return Outcome(
                f"{tree or 'working tree'}" + (f" +{prepare_workers}w" if prepare_workers else ""),
                label,
                mix,
                fast.rate,
                cpu_ms,
                cores,
                paced.p99_ms,
                rss_last,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
            if args.keep_log is not None:
                shutil.copyfile(folder / "gateway.log", args.keep_log)


async def write_batches(base: str) -> dict[str, float]:
    """The daemon's group-commit counters from /metrics (empty for a daemon without them)."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/metrics", headers=headers) as response,
    ):
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


def report_memory(samples: list[int], pid: int, args: argparse.Namespace) -> float:
    """Print the RSS figures of a run; returns the last sample in MiB."""
    mib = [s / 1024 for s in samples if s]
    print(
        f"daemon RSS:      first {mib[0]:.0f} MiB, last {mib[-1]:.0f} MiB, "
        f"max {max(mib):.0f} MiB ({len(mib)} samples every {args.rss_every:.0f} s)"
    )
    print(f"                 {memory_kinds(pid)}")
    print(f"                 {anonymous_breakdown(pid)}")
    if args.trim_probe:
        print(f"                 {trim_probe(pid)}")
    step = max(1, len(mib) // 12)
    print(f"                 RSS series (MiB): {' '.join(f'{m:.0f}' for m in mib[::step])}")
    return mib[-1]


def anonymous_breakdown(pid: int) -> str:
    """Anonymous resident memory by where it comes from (/proc/PID/smaps): glibc's main arena
    (``[heap]``), its thread arenas (heaps at 64 MiB-aligned addresses), 1 MiB mappings
    (CPython's object allocator arenas), 8 MiB mappings (thread stacks), and the rest (large
    allocations and other native mappings)."""
    kinds = dict.fromkeys(("main arena", "thread arenas", "CPython arenas", "stacks", "rest"), 0)
    kind = "rest"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return "smaps unavailable"
    for line in lines:
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            if name == "[heap]":
                kind = "main arena"
            elif name:
                kind = "file" if name.startswith("/") else "rest"
            elif start % (64 << 20) == 0:
                kind = "thread arenas"
            elif end - start == 1 << 20:
                kind = "CPython arenas"
            elif end - start == 8 << 20:
                kind = "stacks"
            else:
                kind = "rest"
        elif fields[0] == "Anonymous:" and kind in kinds:
            kinds[kind] += int(fields[1])
    return "anonymous (MiB): " + ", ".join(f"{k} {v / 1024:.0f}" for k, v in kinds.items())


def memory_kinds(pid: int) -> str:
    """The daemon's resident memory by kind (/proc/PID/smaps_rollup): heap and other anonymous
    memory against file-backed pages (libraries, a memory-mapped database or WAL index)."""
    wanted = ("Rss", "Anonymous", "Shared_Clean", "Private_Clean", "Shared_Dirty")
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in wanted:
                found[name] = int(value.split()[0])
    except OSError:
        return "smaps_rollup unavailable"
    return "resident by kind (MiB): " + ", ".join(
        f"{name} {found[name] / 1024:.0f}" for name in wanted if name in found
    )


def trim_probe(pid: int) -> str:
    """Experiment: make the daemon call glibc's ``malloc_trim(0)`` (through gdb) and report its
    RSS before and after: what drops is memory the allocator held free, not live data."""
    before = rss_kib(pid)
    gdb = shutil.which("gdb")
    if gdb is None:
        return "trim probe: gdb not found"
    calls = [
        # SQLite's own heap (page caches, statements, schemas of every connection).
        "print (long long) sqlite3_memory_used()",
        # Per-arena totals to the daemon's stderr, i.e. its log (--keep-log).
        "call (void) malloc_stats()",
        "call (int) malloc_trim(0)",
    ]
    command = [gdb, "-p", str(pid), "-batch"]
    for call in calls:
        command += ["-ex", call]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False, text=True)
    after = rss_kib(pid)
    if done.returncode != 0:
        return f"trim probe: gdb failed ({done.returncode})"
    printed = re.findall(r"^\$1 = (\d+)", done.stdout, re.MULTILINE)
    sqlite_mib = f"{int(printed[0]) / 2**20:.1f} MiB" if printed else "?"
    return (
        f"SQLite heap {sqlite_mib}; malloc_trim(0) via gdb: RSS {before / 1024:.0f} -> "
        f"{after / 1024:.0f} MiB"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its prepare workers have used so far (/proc)."""
    ticks = 0
    for member in (pid, *child_pids(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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


def parse_arguments() -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="full-speed phase size")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
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
    parser.add_argument(
        "--keep-log", type=Path, default=None, help="copy the daemon's log here when it stops"
    )
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        default=[],
        help="run the daemon with gateway imported from this source tree (repeat to compare, "
        "e.g. a `git archive HEAD gateway` snapshot against the working tree)",
    )
    parser.add_argument(
        "--mix",
        choices=MIXES,
        action="append",
        default=[],
        help="traffic mix (repeatable; default both): realistic (the BVO answers for the "
        "gemeenten, a client per group of messages) or uniform (the examples as shipped)",
    )
    parser.add_argument(
        "--trim-probe",
        action="store_true",
        help="at the start and end of each run, gdb into the daemon: SQLite heap, malloc_stats, "
        "malloc_trim(0) (experiment)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every run, alternating")
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="SQLite only: every run starts on a store already holding this many messages of "
        "its mix (filled once per mix by a daemon of the first tree, then copied)",
    )
    parser.add_argument(
        "--prepare-workers",
        type=int,
        action="append",
        default=[],
        help="[server] prepare_workers of the daemon (repeat to compare, e.g. 0 and 1); CPU "
        "and RSS are then the daemon's and its workers' together",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    print(f"machine: {os.cpu_count()} cores; client and daemon share them")
    print(f"raw lxml parse + XSD, same messages: {raw_lxml_rate(5):.0f} msg/s (one core)")
    dsn = os.environ.get("GATEWAY_TEST_PG_DSN")
    trees: list[Path | None] = list(args.tree) or [None]
    mixes: list[str] = list(dict.fromkeys(args.mix)) or list(MIXES)
    workers: list[int] = list(dict.fromkeys(args.prepare_workers)) or [0]
    outcomes: list[Outcome] = []
    keep = Path(tempfile.mkdtemp(prefix="gateway-prefilled-"))
    templates: dict[str, Path] = {}
    if args.prefill and args.backend in ("sqlite", "both"):
        for mix in mixes:
            templates[mix] = asyncio.run(prefill_template(args, trees[0], mix, keep))
    # Rounds alternate the trees and mixes, so host load drifting during the run hits each alike.
    for _ in range(args.rounds):
        runs = ((t, m, w) for t in trees for m in mixes for w in workers)
        for tree, mix, prepare_workers in runs:
            if tree is not None:
                print(f"\n##### daemon code from {tree}")
            if args.backend in ("sqlite", "both"):
                label = "SQLite (WAL, synchronous=FULL)"
                if args.prefill:
                    label += f", prefilled with {args.prefill} messages"
                run = bench_store(
                    label,
                    None,
                    args,
                    tree,
                    mix,
                    template=templates.get(mix),
                    prepare_workers=prepare_workers,
                )
                outcomes.append(asyncio.run(run))
            if args.backend in ("postgres", "both"):
                if not dsn:
                    print("\nPostgreSQL skipped: GATEWAY_TEST_PG_DSN is not set")
                    continue
                store_url, conninfo, name = fresh_database(dsn)
                try:
                    label = f"PostgreSQL (database {name})"
                    outcomes.append(
                        asyncio.run(
                            bench_store(
                                label, store_url, args, tree, mix, prepare_workers=prepare_workers
                            )
                        )
                    )
                finally:
                    with psycopg.connect(conninfo, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(keep, ignore_errors=True)
    print_summary(outcomes, args.rate)
    return 0


def print_summary(outcomes: list[Outcome], rate: float) -> None:
    """Throughput and CPU cost per message side by side, one row per daemon run."""
    header = (
        f"{'daemon code':<28} {'store':<10} {'mix':<9} {'msg/s':>7} {'CPU ms/msg':>11} {'cores':>6}"
    )
    print(f"\n{header} {f'p99 @ {rate:.0f}/s':>12} {'RSS end':>8}")
    for o in outcomes:
        store = o.store.split(" ")[0]
        print(
            f"{o.tree[-28:]:<28} {store:<10} {o.mix:<9} {o.full_speed:>7.0f} {o.cpu_ms:>11.2f} "
            f"{o.cores:>6.2f} {o.offered_p99_ms:>9.0f} ms {o.rss_last_mib:>4.0f} MiB"
        )


if __name__ == "__main__":
    sys.exit(main())
