"""Intake's store work per batch must not grow with the number of stored messages.

Counted in SQLite virtual-machine steps (its progress handler), not in time, so the test is
deterministic on a loaded host. Regression: linking heen/retour correlations walked every
original still waiting for its retour, on every intake batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.core.correlate import Correlation, CorrelationKey, Side
from gateway.store.base import IntakeRecord
from gateway.store.exchanges import link_parameters, link_sql
from gateway.store.sql import SqlStore
from tests.contract.test_write_batch import _queued
from tests.pseudonyms import TEST_PSEUDONYMS

STEP = 100  # VM instructions per progress callback


def _original(store: SqlStore, number: int) -> IntakeRecord:
    """A queued JW301 that opens an exchange nobody answers (it stays waiting)."""
    bericht = f"B{number}"
    record = _queued(store, f"<m>{number}</m>".encode(), bericht=bericht)
    key = CorrelationKey("JW301", "0384", bericht)
    return IntakeRecord(
        record.message,
        record.raw,
        record.actor,
        record.moves,
        correlation=Correlation(Side.ORIGINAL, key),
    )


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[SqlStore, list[int]]]:
    """A migrated SQLite store whose connections count VM steps into the list's one cell."""
    store = SqlStore(f"sqlite:///{tmp_path / 'gateway.db'}", pseudonyms=TEST_PSEUDONYMS)
    store.migrate()
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0  # 0: go on

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        assert isinstance(dbapi_connection, sqlite3.Connection)
        dbapi_connection.set_progress_handler(tick, STEP)

    event.listen(store.engine, "checkout", on_checkout)
    yield store, steps
    store.close()


def _steps_of_one_batch(store: SqlStore, steps: list[int], first: int) -> int:
    batch = [_original(store, first + i) for i in range(8)]
    steps[0] = 0
    store.write_batch(batch)
    return steps[0]


def test_a_batch_costs_the_same_with_thousands_of_waiting_originals(
    counted: tuple[SqlStore, list[int]],
) -> None:
    store, steps = counted
    empty_store = _steps_of_one_batch(store, steps, 0)
    for start in range(100, 4100, 500):
        store.write_batch([_original(store, start + i) for i in range(500)])
    assert len(store.open_originals()) == 4008
    full_store = _steps_of_one_batch(store, steps, 10_000)
    # Index depth grows a little with the store; a walk over 4,000 waiting rows would be ~10x.
    assert full_store < empty_store * 1.5, (empty_store, full_store)


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgresql_links_through_the_indexes_not_a_table_scan(store: SqlStore) -> None:
    """With thousands of waiting originals (and fresh statistics) the linking UPDATEs must find
    their rows through the indexes only: a table scan here runs in every intake batch and grows
    with the store (the EXISTS form did that in bench/daemon.py under autovacuum's statistics,
    though not with the fresh ones of this test). The ids are one array parameter: the same
    text for any number of them."""
    for start in range(0, 4000, 500):
        store.write_batch([_original(store, start + i) for i in range(500)])
    ids = ["B1", "B2", "B3"]
    link_retours, link_originals = link_sql("postgresql", 0)
    assert (link_retours, link_originals) == link_sql("postgresql", len(ids))
    retour, original = Side.RETOUR.value, Side.ORIGINAL.value
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        for statement, params in (
            (link_retours, link_parameters("postgresql", original, retour, ids)),
            (link_originals, link_parameters("postgresql", retour, original, ids)),
        ):
            [[explained]] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params)
            nodes = list(_plan_nodes(explained[0]["Plan"]))
            scans = [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"]
            assert scans == [], (statement, scans)
            assert any(n.get("Index Name") == "ix_correlations_key" for n in nodes)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgresql_plans_the_linking_statements_on_every_call(store: SqlStore) -> None:
    """psycopg prepares a statement run five times on a connection, and the server may then
    keep one generic plan made with the statistics of that moment. Made on a nearly empty
    table, the linking UPDATEs' plan walked every waiting exchange (ix_correlations_linked)
    for as long as the daemon ran: they must never be prepared, while the INSERTs are."""
    for number in range(12):
        store.write_batch([_original(store, 8 * number + i) for i in range(8)])
    with store.engine.connect() as conn:
        prepared = [
            str(statement)
            for [statement] in conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
        ]
    assert any(s.startswith("INSERT INTO correlations") for s in prepared), prepared
    assert not [s for s in prepared if s.startswith("UPDATE correlations")]
