"""Measurement: one party sends many large junk bodies at once to a running ``gateway run``.

Not a test. Starts the daemon as a subprocess on SQLite in a temporary folder, with the
default ``[server]`` and ``[limits]`` bounds (or, with ``--unbounded``, with them lifted, to
see what they prevent), then sends ``--bodies`` POSTs of ``--size`` bytes of junk at the same
time (each with a Content-Length, each distinct so none is a duplicate), while a probe sends
``GET /healthz`` and a small POST every 0.2 s. Prints the answers by status, the daemon's peak
resident memory above its start, how much the data folder grew, and the probe's slowest answer.

    .venv/bin/python bench/hostile_bodies.py [--bodies 40] [--size 26214400] [--unbounded]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

# Run as a script, bench/ is on sys.path: the daemon bench's start-up wait serves here too.
from daemon import wait_ready

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hostile-token"
BLOCK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(folder: Path, port: int, unbounded: bool) -> Path:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    lines = [
        "[server]",
        f"port = {port}",
    ]
    if unbounded:
        lines += [
            "max_bodies_in_flight = 100000",
            f"max_body_bytes_in_flight = {1 << 40}",
            "[limits]",
            "party_bytes_per_window = 0",
            "min_free_disk_bytes = 0",
        ]
    lines += [
        "[paths]",
        f'schemas = ["{REPO / "schemas" / "ijw-3.2"}"]',
        "[[parties]]",
        'id = "hostile"',
        'role = "aanbieder"',
        'identity = "42420001"',
        'channel = "mailbox"',
        f'token_sha256 = "{digest}"',
    ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def disk_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` occupy on disk."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


async def junk(number: int, size: int) -> AsyncIterator[bytes]:
    """``size`` bytes: a random block repeated, its first bytes unique to ``number``."""
    block = bytearray(random.Random(number).randbytes(BLOCK))
    block[:8] = f"{number:08d}".encode()
    sent = 0
    while sent < size:
        part = bytes(block[: min(BLOCK, size - sent)])
        sent += len(part)
        yield part


async def attack(
    session: aiohttp.ClientSession, base: str, number: int, size: int
) -> tuple[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(size)}
    started = time.monotonic()
    try:
        async with session.post(
            f"{base}/v1/messages", data=junk(number, size), headers=headers
        ) as response:
            await response.read()
            outcome = str(response.status)
    except aiohttp.ClientError as exc:
        outcome = type(exc).__name__
    return outcome, time.monotonic() - started


async def probe(base: str, stop: asyncio.Event) -> tuple[dict[str, float], Counter[str]]:
    """The slowest probe answer of each kind and the probes' statuses."""
    slowest = {"healthz": 0.0, "small POST": 0.0}
    statuses: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        number = 0
        while not stop.is_set():
            number += 1
            started = time.monotonic()
            async with session.get(f"{base}/healthz") as response:
                statuses[f"healthz {response.status}"] += 1
            slowest["healthz"] = max(slowest["healthz"], time.monotonic() - started)
            started = time.monotonic()
            small = f"<small n='{number}'/>".encode()
            async with session.post(f"{base}/v1/messages", data=small, headers=headers) as resp:
                statuses[f"small POST {resp.status}"] += 1
            slowest["small POST"] = max(slowest["small POST"], time.monotonic() - started)
            await asyncio.sleep(0.2)
    return slowest, statuses


async def one_round(
    args: argparse.Namespace, base: str, pid: int, data: Path, round_number: int
) -> None:
    """Send the bodies at once with the probe running; print what happened."""
    peak = rss_kib(pid)
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    prober = asyncio.create_task(probe(base, stop))
    started = time.monotonic()
    first = round_number * args.bodies
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        results = await asyncio.gather(
            *(attack(session, base, n, args.size) for n in range(first, first + args.bodies))
        )
    elapsed = time.monotonic() - started
    stop.set()
    slowest_probe, probes = await prober
    await sampler
    by_status: dict[str, list[float]] = {}
    for outcome, seconds in results:
        by_status.setdefault(outcome, []).append(seconds)
    print(f" round {round_number}: {elapsed:.1f} s")
    for outcome, times in sorted(by_status.items()):
        print(f"  {outcome}: {len(times)}  (answered after {min(times):.2f}-{max(times):.2f} s)")
    slowest = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in slowest_probe.items())
    print(f"  probes: {dict(probes)}; slowest: {slowest}")
    print(
        f"  daemon RSS peak {peak / 1024:.0f} MiB; data folder now {disk_bytes(data) / 1e6:.1f} MB"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gateway-hostile-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(folder, port, args.unbounded)
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
        try:
            await wait_ready(base, process)
            data = folder / "data"
            rss_start, disk_start = rss_kib(process.pid), disk_bytes(data)
            mode = "unbounded" if args.unbounded else "default bounds"
            print(f"{args.bodies} x {args.size} bytes at once, {mode}, {args.rounds} round(s)")
            print(f"  daemon RSS at start {rss_start / 1024:.0f} MiB")
            for round_number in range(1, args.rounds + 1):
                await one_round(args, base, process.pid, data, round_number)
            disk_end = disk_bytes(data)
            print(
                f"  data folder: {disk_start / 1e6:.1f} MB -> {disk_end / 1e6:.1f} MB "
                f"(+{(disk_end - disk_start) / 1e6:.1f} MB)"
            )
            print(f"  daemon still answering: {process.poll() is None}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=40)
    parser.add_argument("--size", type=int, default=26_214_400, help="bytes per body")
    parser.add_argument("--unbounded", action="store_true", help="lift the bounds")
    parser.add_argument("--rounds", type=int, default=1, help="attacks one after the other")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
