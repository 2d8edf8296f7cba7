"""Benchmark: one, two and three ``gateway run`` nodes on one PostgreSQL, side by side.

Not a test. Needs ``GATEWAY_TEST_PG_DSN``. For each node count it creates a fresh database,
starts that many nodes on it (one shared pseudonym key, each its own port and folders) and
runs the full-speed phase of bench/daemon.py with ``--clients`` clients sending to the
nodes round robin, message by message, as an HTTP load balancer would (one client's dossier
steps reach different nodes); prints accepted msg/s, p50/p99 and the nodes' CPU per
accepted message, then a table. ``--rounds`` repeats the node counts, alternating, to smooth a
busy host.

    .venv/bin/python bench/nodes.py [--messages 3000] [--clients 24] [--nodes 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
from pathlib import Path

import psycopg

# Run as a script, bench/ is on sys.path: the daemon bench's parts serve here too.
from daemon import (
    cpu_seconds,
    free_port,
    fresh_database,
    full_speed,
    start_daemon,
    wait_ready,
    write_config,
)


async def run_nodes(
    count: int, dsn: str, args: argparse.Namespace
) -> tuple[float, float, float, float]:
    """(msg/s, p50 ms, p99 ms, CPU ms per accepted message) of ``count`` nodes."""
    url, conninfo, name = fresh_database(dsn)
    processes = []
    with tempfile.TemporaryDirectory(prefix="gateway-nodes-") as tmp:
        try:
            key = Path(tmp) / "pseudonym.key"
            key.write_text(secrets.token_hex(32), encoding="ascii")
            key.chmod(0o600)
            bases = []
            for number in range(count):
                folder = Path(tmp) / f"node{number}"
                folder.mkdir()
                port = free_port()
                config = write_config(folder, port, url, mix=args.mix)
                with config.open("a", encoding="utf-8") as extra:
                    extra.write(f'[privacy]\npseudonym_key_file = "{key}"\n')
                processes.append(start_daemon(folder, config, None))
                bases.append(f"http://127.0.0.1:{port}")
            for base, process in zip(bases, processes, strict=True):
                await wait_ready(base, process)
            cpu_before = sum(cpu_seconds(p.pid) for p in processes)
            phase = await full_speed(
                bases, args.messages, args.clients, "F", kind="aiohttp", mix=args.mix
            )
            cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # The same traffic gets the same verdicts on any number of nodes: compare these lines.
    print(f"{count} node(s): answers {phase.statuses}, accepted as {phase.states}")
    accepted = len(phase.latencies)
    return (
        phase.rate,
        statistics.median(phase.latencies) * 1000 if accepted else 0.0,
        phase.p99_ms,
        cpu / max(accepted, 1) * 1000,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=24, help="spread over the nodes")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mix", choices=["uniform", "realistic"], default="uniform")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    dsn = os.environ.get("GATEWAY_TEST_PG_DSN")
    if not dsn:
        raise SystemExit('GATEWAY_TEST_PG_DSN is not set (eval "$(bash .ci/postgres.sh)")')
    results: dict[int, list[tuple[float, float, float, float]]] = {n: [] for n in args.nodes}
    for _ in range(args.rounds):
        for count in args.nodes:
            figures = await run_nodes(count, dsn, args)
            results[count].append(figures)
            rate, p50, p99, cpu_ms = figures
            print(
                f"{count} node(s): {rate:.0f} msg/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                f"{cpu_ms:.2f} ms CPU per message",
                flush=True,
            )
    print(f"\n{args.mix} mix, {args.messages} messages, {args.clients} clients (median of rounds)")
    print("nodes | msg/s | p50 ms | p99 ms | CPU ms/msg")
    for count, runs in results.items():
        rate, p50, p99, cpu_ms = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"{count:5} | {rate:5.0f} | {p50:6.0f} | {p99:6.0f} | {cpu_ms:10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
