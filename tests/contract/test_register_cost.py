"""The dossier register's reads and settling must stay cheap as the store grows.

Counted, not timed, so the tests are deterministic on a loaded host: SQLite virtual-machine
steps (its progress handler) for settling, statements sent for a dossier check.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gateway.core.dossier import Verdict
from gateway.core.rules.engine import RuleContext
from gateway.core.validate import validate
from gateway.service.sniffing import sniff_bsns
from gateway.store.history import SqlHistory, history_factory
from gateway.store.register import REGISTER_COLUMNS, RETOUR_VERDICT, _blank, settle
from gateway.store.sql import SqlStore
from gateway.store.tables import REGISTER
from tests.contract.test_register_history import SqlRecordingHistory
from tests.paths import REPO
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.unit.rules.mutate import official_schema_set

STEP = 100  # VM instructions per progress callback
BSN = "999900006"
TODAY = dt.date(2026, 12, 31)


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[SqlStore, list[int], list[str]]]:
    """A migrated SQLite store counting VM steps (first list) and statements (second)."""
    store = SqlStore(f"sqlite:///{tmp_path / 'gateway.db'}", pseudonyms=TEST_PSEUDONYMS)
    store.migrate()
    steps = [0]
    statements: list[str] = []

    def tick() -> int:
        steps[0] += 1
        return 0  # 0: go on

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        assert isinstance(dbapi_connection, sqlite3.Connection)
        dbapi_connection.set_progress_handler(tick, STEP)

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "checkout", on_checkout)
    event.listen(store.engine, "before_cursor_execute", on_execute)
    yield store, steps, statements
    store.close()


def _received_retours(store: SqlStore, first: int, count: int) -> None:
    """``count`` verdicts of received retours, as intake stores them for retours it routes."""
    rows = [
        _blank(f"R{n:08d}", RETOUR_VERDICT, Verdict.ACCEPTED, {"rejects_all": False})
        for n in range(first, first + count)
    ]
    # Through a plain connection, without the foreign key to messages: only the register's
    # size matters here, not the messages behind it.
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.executemany(
            f"INSERT INTO {REGISTER.name} ({', '.join(REGISTER_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in REGISTER_COLUMNS)})",
            rows,
        )
        cursor.execute("PRAGMA foreign_keys=ON")
        raw.commit()
    finally:
        raw.close()


def _settle_steps(store: SqlStore, steps: list[int]) -> int:
    with store.engine.begin() as conn:
        steps[0] = 0
        settle(conn, ["NEW00000001", "NEW00000002"])
        return steps[0]


def test_settling_a_batch_costs_the_same_with_thousands_of_received_retours(
    counted: tuple[SqlStore, list[int], list[str]],
) -> None:
    store, steps, _ = counted
    _received_retours(store, 0, 10)
    small = _settle_steps(store, steps)
    _received_retours(store, 10, 4_000)
    large = _settle_steps(store, steps)
    # Walking every verdict costs ~4,000 rows x several instructions = hundreds of callbacks.
    assert large <= small + 5, (small, large)


def test_one_check_asks_the_store_each_question_once(
    counted: tuple[SqlStore, list[int], list[str]],
) -> None:
    store, _, statements = counted
    history = SqlHistory(store, [BSN])
    statements.clear()
    first = (
        history.client_allocations("0150", "42420001", BSN),
        history.allocation_versions("0150", 2026001),
        history.declaration_number_seen("42420001", "D1"),
    )
    asked = len(statements)
    assert asked >= 3
    again = (
        history.client_allocations("0150", "42420001", BSN),
        history.allocation_versions("0150", 2026001),
        history.declaration_number_seen("42420001", "D1"),
    )
    assert again == first
    assert len(statements) == asked


def test_a_new_check_reads_the_store_again(
    counted: tuple[SqlStore, list[int], list[str]],
) -> None:
    store, _, statements = counted
    SqlHistory(store, [BSN]).declaration_number_seen("42420001", "D1")
    asked = len(statements)
    SqlHistory(store, [BSN]).declaration_number_seen("42420001", "D1")
    assert len(statements) == 2 * asked


def _register_reads(statements: list[str]) -> int:
    """The statements that read register entries (settling and writing are not reads)."""
    return sum(
        1
        for statement in statements
        if statement.lstrip().upper().startswith("SELECT")
        and "register_entries" in statement.partition(" WHERE ")[0]
    )


def test_each_message_of_a_dossier_reads_the_register_once(
    counted: tuple[SqlStore, list[int], list[str]],
) -> None:
    """The demo dossier (docs/examples: request, allocation, start, change request, answer,
    stop, claim) checked message by message, each accepted into the register before the next:
    every check reads the register in one statement, whatever its rules ask, and finds what
    the earlier messages wrote (the change request asks whether the first request is settled,
    through the allocation that carries its reference)."""
    store, _, statements = counted
    register = SqlRecordingHistory(store)
    reads: dict[str, int] = {}
    for path in sorted((REPO / "docs" / "examples").glob("0*-JW*.xml")):
        raw = path.read_bytes()
        document = validate(raw, official_schema_set()).document
        assert document is not None
        history = history_factory(store)(sniff_bsns(raw), (), document)
        statements.clear()
        report = validate(raw, official_schema_set(), RuleContext(today=TODAY, history=history))
        reads[path.stem] = _register_reads(statements)
        # The demo claim carries the provider's codes, which the daemon translates first.
        assert [f.rule for f in report.findings if f.rule != "TR340"] == [], path.stem
        register.record(document)
    assert reads == dict.fromkeys(reads, 1), reads
    assert len(reads) == 7


def test_a_question_nobody_expected_is_read_when_asked(
    counted: tuple[SqlStore, list[int], list[str]],
) -> None:
    """The one read covers the questions of the message's rules; anything else (a rule added
    later, an operator tool) is still answered right, by its own read."""
    store, _, statements = counted
    raw = (REPO / "docs" / "examples" / "04-JW317.xml").read_bytes()
    document = validate(raw, official_schema_set()).document
    assert document is not None
    history = history_factory(store)(sniff_bsns(raw), (), document)
    statements.clear()
    assert not history.declaration_number_seen("42420001", "D1")
    assert _register_reads(statements) == 2  # the one read, then this question
    assert not history.declaration_number_seen("42420001", "D1")
    assert _register_reads(statements) == 2
