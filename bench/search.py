"""Benchmark: operator search on a store of a million messages (SQLite, and PostgreSQL).

Not a test. Fills a fresh store with ``--messages`` synthetic messages by bulk insert (rows in
``messages`` and ``message_keys`` shaped as intake writes them: 6 parties, 7 message types,
realistic state mix, two client keys, a ToewijzingNummer and for JW323 a DeclaratieNummer per
message, a rule key on rejected ones), then times each filter query of ``gateway messages``
(first page of 50, newest first, plus a second page through the cursor) and prints the median
of ``--repeat`` runs. Target: < 200 ms per query at 1,000,000 messages.

    .venv/bin/python bench/search.py [--messages 1000000] [--backend sqlite|postgres|both]

PostgreSQL runs when ``GATEWAY_TEST_PG_DSN`` is set (``eval "$(bash .ci/postgres.sh)"``), in a
schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from gateway.core.ids import encode
from gateway.core.model import State
from gateway.store.base import SearchQuery
from gateway.store.sql import SqlStore
from gateway.store.tables import MESSAGE_KEYS, MESSAGES
from tests.pseudonyms import TEST_PSEUDONYMS

PARTIES = ["diemen", "amsterdam", "provider-a", "provider-b", "provider-c", "kompas"]
TYPES = ["JW301", "JW302", "JW305", "JW306", "JW315", "JW317", "JW323"]
STATES = (
    [State.DELIVERED] * 90
    + [State.QUEUED] * 3
    + [State.HELD] * 3
    + [State.DEAD]
    + [State.REJECTED] * 3
)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
BATCH = 20_000


def _rows(
    n: int, rng: random.Random
) -> Iterator[tuple[list[dict[str, object]], list[dict[str, str]]]]:
    messages: list[dict[str, object]] = []
    keys: list[dict[str, str]] = []
    step = dt.timedelta(days=540) / n
    for i in range(n):
        at = T0 + step * i
        mid = encode(int(at.timestamp() * 1000), rng.getrandbits(80))
        sender, recipient = rng.sample(PARTIES, 2)
        state = rng.choice(STATES)
        mtype = rng.choice(TYPES)
        messages.append(
            {
                "id": mid,
                "state": state.value,
                "sender": sender,
                "recipient": None if state is State.REJECTED else recipient,
                "message_type": mtype,
                "bericht_id": f"{i:09d}",
                "content_hash": f"{i:064x}",
                "size": 4000,
                "received_at": at,
                "updated_at": at + dt.timedelta(minutes=5),
                "direction": "inbound",
                "attempts": 0,
                "next_attempt_at": None,
                "lease_until": None,
                "reason": "routed",
                "in_reply_to": None,
                "replay_of": None,
            }
        )
        for client in {i % 200_003, (i * 7) % 200_003}:
            keys.append(
                {
                    "message_id": mid,
                    "kind": "client",
                    "value": TEST_PSEUDONYMS.client_key(f"{client:09d}"),
                }
            )
        keys.append({"message_id": mid, "kind": "toewijzing", "value": str(i % 300_007)})
        if mtype == "JW323":
            keys.append({"message_id": mid, "kind": "declaratie", "value": f"DN{i}"})
        if state is State.REJECTED:
            keys.append({"message_id": mid, "kind": "rule", "value": rng.choice(["TR301", "XSD"])})
        if len(messages) >= BATCH:
            yield messages, keys
            messages, keys = [], []
    if messages:
        yield messages, keys


def fill(store: SqlStore, n: int) -> float:
    """Bulk-insert ``n`` messages; returns seconds taken."""
    rng = random.Random(42)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for messages, keys in _rows(n, rng):
            conn.execute(insert(MESSAGES), messages)
            conn.execute(insert(MESSAGE_KEYS), keys)
            print(f"\r  inserted {messages[-1]['bericht_id']}", end="", flush=True)
    print()
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def queries(n: int) -> dict[str, SearchQuery]:
    """The filters of ``gateway messages``, one query each (plus a few combinations)."""
    mid = n // 2
    return {
        "no filter (newest)": SearchQuery(),
        "party": SearchQuery(party="kompas"),
        "from": SearchQuery(sender="provider-a"),
        "to": SearchQuery(recipient="provider-b"),
        "direction": SearchQuery(direction="inbound"),
        "type": SearchQuery(message_type="JW323"),
        "state dead (rare)": SearchQuery(states=(State.DEAD,)),
        "state held": SearchQuery(states=(State.HELD,)),
        "period (one day)": SearchQuery(
            since=T0 + dt.timedelta(days=200), until=T0 + dt.timedelta(days=201)
        ),
        "bericht-id": SearchQuery(bericht_id=f"{mid:09d}"),
        "toewijzing": SearchQuery(toewijzing=str(mid % 300_007)),
        "declaratie": SearchQuery(declaratie=f"DN{mid - mid % 7}"),
        "rule": SearchQuery(rule="TR301"),
        "client (bsn)": SearchQuery(client_key=TEST_PSEUDONYMS.client_key(f"{mid % 200_003:09d}")),
        "party + state held": SearchQuery(party="kompas", states=(State.HELD,)),
        "to + dead": SearchQuery(recipient="kompas", states=(State.DEAD,)),
        "type + period": SearchQuery(
            message_type="JW315",
            since=T0 + dt.timedelta(days=100),
            until=T0 + dt.timedelta(days=130),
        ),
        "client + type": SearchQuery(
            client_key=TEST_PSEUDONYMS.client_key(f"{mid % 200_003:09d}"), message_type="JW323"
        ),
    }


def _time(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def bench(store: SqlStore, n: int, repeat: int) -> list[tuple[str, float, float, int]]:
    """(query, first page ms, next page ms, rows on the first page) per query."""
    results = []
    for name, q in queries(n).items():
        first = store.search(q)
        cursor = first.next_cursor
        ms_first = _time(lambda q=q: store.search(q), repeat)  # type: ignore[misc]
        nxt = SearchQuery(
            **{**{f: getattr(q, f) for f in q.__dataclass_fields__}, "cursor": cursor}
        )
        ms_next = _time(lambda nxt=nxt: store.search(nxt), repeat) if cursor else 0.0  # type: ignore[misc]
        results.append((name, ms_first, ms_next, len(first.messages)))
    return results


@contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def _pg_url(dsn: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(dsn)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(dsn).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    """Run the benchmark and print a markdown table per backend."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    dsn = os.environ.get("GATEWAY_TEST_PG_DSN")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgres" and not dsn:
            print("postgres: skipped (GATEWAY_TEST_PG_DSN not set)")
            continue
        urls = _sqlite_url() if backend == "sqlite" else _pg_url(dsn or "")
        with urls as url:
            store = SqlStore(url, pseudonyms=TEST_PSEUDONYMS)
            store.migrate()
            print(f"{backend}: filling {args.messages:,} messages")
            seconds = fill(store, args.messages)
            print(f"{backend}: filled in {seconds:.0f} s")
            print(
                f"\n| query ({backend}, {args.messages:,} messages) | first page ms | "
                "next page ms | rows |"
            )
            print("|---|---:|---:|---:|")
            for name, first, nxt, rows in bench(store, args.messages, args.repeat):
                print(f"| {name} | {first:.1f} | {nxt:.1f} | {rows} |")
            held_for_kompas = SearchQuery(party="kompas", states=(State.HELD,))
            count_ms = _time(lambda s=store, q=held_for_kompas: s.count(q), 3)  # type: ignore[misc]
            print(f"\ncount (party + held, for a bulk dry run): {count_ms:.0f} ms")
            store.close()


if __name__ == "__main__":
    main()
