"""Intake writes its rows through the driver (executemany, SQL text built once per dialect).

The stored values must be exactly what SQLAlchemy stores for the same values, on every
backend; a batch costs a fixed number of statements whatever it holds; and dossier verdicts are
settled only when an exchange was really linked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from enum import Enum
from functools import cache
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select

from gateway.core.correlate import Correlation, CorrelationKey, Side
from gateway.core.document import MessageDocument
from gateway.core.dossier import (
    RegisterUpdate,
    RetourVerdict,
    Verdict,
    entries_of,
    submitted_declaration_in,
)
from gateway.core.lifecycle import advance
from gateway.core.model import State
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from gateway.store.base import IntakeRecord, Move
from gateway.store.dialect import insert_rows
from gateway.store.exchanges import link_correlations, link_sql
from gateway.store.register import REGISTER_COLUMNS
from gateway.store.register_codec import encode_record
from gateway.store.sql import SqlStore
from gateway.store.tables import (
    CORRELATIONS,
    EVENTS,
    FINDINGS,
    LEDGER,
    MESSAGE_KEYS,
    MESSAGES,
    PAYLOADS,
    REGISTER,
    REWRITES,
    TRANSLATIONS,
)
from tests.contract.test_translation_store import PAIR, REWRITE, WAITING, _translated
from tests.contract.test_write_batch import LATER, _queued, _retour_for
from tests.paths import OFFICIAL_XSD_DIR, REPO
from tests.pseudonyms import TEST_PSEUDONYMS

DEMO = REPO / "docs" / "examples"
# Children before parents, so the rows can be deleted and put back.
TABLES = (
    *(LEDGER, REWRITES, TRANSLATIONS, REGISTER, CORRELATIONS),
    *(MESSAGE_KEYS, FINDINGS, EVENTS, PAYLOADS, MESSAGES),
)


@cache
def _schemas() -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR])


@cache
def _demo() -> tuple[tuple[bytes, MessageDocument], ...]:
    """The demo dossier (every register entry kind, a JW323 with its submission)."""
    found = []
    for path in sorted(DEMO.glob("0*.xml")):
        raw = path.read_bytes()
        document = validate(raw, _schemas()).document
        assert document is not None, path.name
        found.append((raw, document))
    return tuple(found)


def _original(store: SqlStore, number: int, **extra: Any) -> IntakeRecord:
    """A queued message with an unique BerichtIdentificatie that opens an exchange."""
    raw, _ = _demo()[number % len(_demo())]
    bericht = f"B{number}"
    record = _queued(store, raw.replace(b"<", f"<!--{number}--><".encode(), 1), bericht=bericht)
    key = CorrelationKey("JW301", "0384", bericht)
    return dataclasses.replace(record, correlation=Correlation(Side.ORIGINAL, key), **extra)


def _everything(store: SqlStore, number: int) -> IntakeRecord:
    """A record using every part of the intake transaction: findings, keys, a correlation,
    register entries (pending, with a JW323's submission), a translation with rewrites,
    undecided products and ledger pairs, and a generated retour."""
    _, document = _demo()[number % len(_demo())]
    register = RegisterUpdate(
        tuple(entries_of(document)),
        Verdict.PENDING,
        submitted=submitted_declaration_in(document),
    )
    translation = _translated(
        rewrites=(REWRITE, REWRITE), undecided=(WAITING,), entries=(PAIR, PAIR)
    )
    record = _original(
        store,
        number,
        findings=({"rule": "TR0" + str(number), "message": "ë"},),
        register=register,
        translation=translation,
    )
    return dataclasses.replace(record, retour=_retour_for(store, record.message))


def _raw_rows(store: SqlStore) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    """Every row of the intake tables as the driver returns it, each value with its Python
    type (SQLite hands back str, int, bytes or float by storage class)."""
    found = {}
    with store.engine.connect() as conn:
        for table in TABLES:
            order = ", ".join(column.name for column in table.primary_key.columns)
            rows = conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {order}").all()
            found[table.name] = [tuple((type(v).__name__, v) for v in row) for row in rows]
    return found


def _rewrite_through_sqlalchemy(store: SqlStore) -> None:
    """Read every row through SQLAlchemy's readers, delete it, and insert the same values
    back through SQLAlchemy Core (its bind processing), as the store wrote them before."""
    with store.engine.begin() as conn:
        values = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in TABLES}
        for table in TABLES:
            conn.execute(delete(table))
        for table in reversed(TABLES):
            if values[table.name]:
                conn.execute(insert(table), values[table.name])


def test_stored_values_are_what_sqlalchemy_stores(store: SqlStore) -> None:
    """Every column of every intake table, after intake, a linked retour and a state move
    with a lease, equals (value and type) what SQLAlchemy Core stores for the same values."""
    records = [_everything(store, n) for n in range(len(_demo()))]
    original = records[0]
    answer = _queued(store, b"<JW302/>", bericht="R1")
    answer = dataclasses.replace(
        answer,
        correlation=Correlation(Side.RETOUR, original.correlation.key),  # type: ignore[union-attr]
        register=RegisterUpdate((), Verdict.ACCEPTED, retour=RetourVerdict(False, frozenset())),
    )
    store.write_batch([*records, answer])
    lease = LATER + dt.timedelta(minutes=5)
    claimed = advance(records[1].message, State.SENDING, "c", "delivery", LATER, lease_until=lease)
    store.write_batch([], [Move(*claimed, State.QUEUED)])
    delivered = advance(claimed[0], State.DELIVERED, "sent", "delivery", LATER)
    assert store.write_batch([], [Move(*delivered, State.SENDING, lease)]).moved == [True]

    written = _raw_rows(store)
    assert all(written[table.name] for table in TABLES if table is not FINDINGS)
    _rewrite_through_sqlalchemy(store)
    assert _raw_rows(store) == written


def _statements(store: SqlStore) -> list[str]:
    sent: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", on_execute)
    return sent


def test_a_batch_costs_a_fixed_number_of_statements(store: SqlStore) -> None:
    """Translations and register entries are one executemany per table for the whole batch,
    not statements per message."""
    sent = _statements(store)
    store.write_batch([_everything(store, n) for n in range(4)])
    small = len(sent)
    sent.clear()
    store.write_batch([_everything(store, n) for n in range(100, 116)])
    assert len(sent) == small, sent


def _settles(statements: list[str]) -> int:
    return sum("UNION" in s.upper() and "register_entries" in s for s in statements)


def test_settling_runs_only_when_an_exchange_was_linked(store: SqlStore) -> None:
    """Originals whose retour is not there link nothing, so their batch settles nothing; the
    retour's batch links both sides and applies its verdict to the original's entries."""
    sent = _statements(store)
    _, document = _demo()[1]
    pending = RegisterUpdate(tuple(entries_of(document)), Verdict.PENDING)
    originals = [_original(store, n, register=pending) for n in range(1, 9)]
    store.write_batch(originals)
    assert _settles(sent) == 0
    with store.engine.begin() as conn:
        assert link_correlations(conn, [f"B{n}" for n in range(1, 9)]) == 0

    sent.clear()
    rejecting = _queued(store, b"<JW302/>", bericht="R2")
    rejecting = dataclasses.replace(
        rejecting,
        correlation=Correlation(Side.RETOUR, originals[0].correlation.key),  # type: ignore[union-attr]
        register=RegisterUpdate((), Verdict.ACCEPTED, retour=RetourVerdict(True)),
    )
    store.write_batch([rejecting])
    assert _settles(sent) == 1
    assert store.linked_message(originals[0].message.id) == rejecting.message.id
    assert store.linked_message(rejecting.message.id) == originals[0].message.id
    with store.engine.connect() as conn:
        verdicts = conn.execute(
            select(REGISTER.c.message_id, REGISTER.c.verdict).where(
                REGISTER.c.message_id.in_([originals[0].message.id, originals[1].message.id])
            )
        ).all()
    assert {v for m, v in verdicts if m == originals[0].message.id} == {"rejected"}
    assert {v for m, v in verdicts if m == originals[1].message.id} == {"pending"}


def test_linking_counts_only_rows_that_got_a_link(store: SqlStore) -> None:
    """Both sides of an exchange count once each; what waits for its other side counts 0."""
    original = _original(store, 1)
    store.write_batch([original])
    key = original.correlation.key  # type: ignore[union-attr]
    retour = _queued(store, b"<JW302/>", bericht="R3")
    retour = dataclasses.replace(retour, correlation=Correlation(Side.RETOUR, key))
    with store.engine.begin() as conn:
        conn.execute(
            insert(MESSAGES),
            {
                **{c: getattr(retour.message, c) for c in ("id", "sender", "content_hash")},
                "state": "queued",
                "size": 1,
                "received_at": LATER,
                "updated_at": LATER,
                "direction": "inbound",
                "attempts": 0,
            },
        )
        conn.execute(
            insert(CORRELATIONS),
            {
                "message_id": retour.message.id,
                "side": "retour",
                "original_type": key.original_type,
                "afzender": key.afzender,
                "bericht_id": key.bericht_id,
            },
        )
        assert link_correlations(conn, [key.bericht_id]) == 2
        assert link_correlations(conn, [key.bericht_id]) == 0


@pytest.fixture
def explained(tmp_path: Any) -> Iterator[Callable[[str, tuple[Any, ...]], list[str]]]:
    """EXPLAIN QUERY PLAN on a migrated SQLite store."""
    store = SqlStore(f"sqlite:///{tmp_path / 'plan.db'}", pseudonyms=TEST_PSEUDONYMS)
    store.migrate()

    def explain(sql: str, parameters: tuple[Any, ...]) -> list[str]:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
        return [str(row[-1]) for row in rows]

    yield explain
    store.close()


def test_linking_searches_the_key_index_on_sqlite(
    explained: Callable[[str, tuple[Any, ...]], list[str]],
) -> None:
    """The UPDATEs find their rows by BerichtIdentificatie, not by walking every waiting
    original through ix_correlations_linked (a cost that grew with the store)."""
    link_retours, link_originals = link_sql("sqlite", 2)
    for sql, parameters in (
        (link_retours, ("original", "retour", "B1", "B2", "original")),
        (link_originals, ("retour", "original", "B1", "B2", "retour")),
    ):
        plan = explained(sql, parameters)
        outer = [step for step in plan if step.startswith(("SEARCH correlations", "SCAN correl"))]
        assert outer == [next(s for s in outer)], plan
        assert "USING INDEX ix_correlations_key" in outer[0], plan


def _generic_encode(record: Any) -> dict[str, Any]:
    """The register's encoding before it was planned per class: every field by isinstance."""

    def value_of(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, dt.date | dt.time):
            return value.isoformat()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return _generic_encode(value)
        return value

    return {
        f.name: value_of(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name != "bsn"
    }


def test_register_bodies_encode_every_record_as_before() -> None:
    """The per-class encoding plans give what the generic encoder gave, for every entry kind."""
    records: list[Any] = []
    for _, document in _demo():
        records += entries_of(document)
        submitted = submitted_declaration_in(document)
        if submitted is not None:
            records += [submitted, *(line.line for line in submitted.lines)]
    assert {type(r).__name__ for r in records} >= {
        "Identification",
        "Allocation",
        "DeliveryChange",
        "Request",
        "Answer",
        "Declaration",
        "ClaimLine",
        "SubmittedDeclaration",
    }
    for record in records:
        expected = _generic_encode(record)
        if "lines" in expected:  # tuples of dataclasses: the submission encodes them itself
            expected["lines"] = record.lines
        assert encode_record(record) == expected, type(record).__name__


# Strings an array literal must quote (PostgreSQL gets a batch's values as one array per
# column): quotes, braces, backslashes, commas, the word NULL, blanks, non-ASCII.
AWKWARD = ("", "NULL", 'a,b "c" {d} \\e', "it's ë 🙂", " spaced ", "\t\n")


def test_awkward_values_are_stored_as_sqlalchemy_stores_them(store: SqlStore) -> None:
    """Strings that need quoting, bytes of every value, a 64-bit number, NULLs next to values
    and columns that are NULL in every row of the batch: each stored as SQLAlchemy stores it."""
    records = []
    for number, awkward in enumerate(AWKWARD):
        raw = bytes(range(256)) + awkward.encode() + bytes([number])
        record = _queued(store, raw, bericht=f"{awkward}|{number}")
        moves = tuple(dataclasses.replace(e, reason=awkward) for e in record.moves)
        message = dataclasses.replace(record.message, reason=awkward or None)
        records.append(dataclasses.replace(record, message=message, moves=moves))
    store.write_batch(records)
    register_rows = [
        (records[0].message.id, "allocation", "pending", None, "x", None, 2**40, *AWKWARD[2:4]),
        (records[1].message.id, "allocation", "pending", "0384", None, "k", None, None, "NULL"),
    ]
    with store.engine.begin() as conn:
        insert_rows(
            conn,
            store.dialect,
            REGISTER,
            (*REGISTER_COLUMNS[:9], "body"),
            [(*row, "{}") for row in register_rows],
        )
    for record in records:
        assert store.get(record.message.id) == record.message
        assert store.payload(record.message.id) == record.raw
        assert [e.reason for e in store.history(record.message.id)][1:] == [
            e.reason for e in record.moves
        ]

    written = _raw_rows(store)
    assert [row[7] for row in written["register_entries"]] == [("int", 2**40), ("NoneType", None)]
    _rewrite_through_sqlalchemy(store)
    assert _raw_rows(store) == written


def _sent_with_executemany(store: SqlStore) -> list[tuple[str, bool]]:
    sent: list[tuple[str, bool]] = []

    def on_execute(*args: Any) -> None:
        _conn, _cursor, statement, _parameters, _context, executemany = args
        sent.append((statement, executemany))

    event.listen(store.engine, "before_cursor_execute", on_execute)
    return sent


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_postgresql_batch_sends_the_same_statements_whatever_it_holds(store: SqlStore) -> None:
    """On PostgreSQL each table of a batch is one statement (an executemany runs one per row)
    whose SQL text does not depend on the number of rows, so psycopg prepares it once per
    connection: a batch of 2 and a batch of 16 records (each with a retour that links its
    exchange and settles its verdict) send the same statements."""
    sent = _sent_with_executemany(store)

    def batch(first: int, count: int) -> list[IntakeRecord]:
        records = [_everything(store, n) for n in range(first, first + count)]
        answer = _queued(store, f"<JW302 n='{first}'/>".encode(), bericht=f"R{first}")
        answer = dataclasses.replace(
            answer,
            correlation=Correlation(Side.RETOUR, records[0].correlation.key),  # type: ignore[union-attr]
            register=RegisterUpdate((), Verdict.ACCEPTED, retour=RetourVerdict(False, frozenset())),
        )
        return [*records, answer]

    store.write_batch(batch(0, 2))
    small = list(sent)
    sent.clear()
    store.write_batch(batch(100, 16))
    assert sent == small
    assert not any(executemany for _, executemany in sent)
    assert sum(s.startswith("INSERT INTO register_entries") for s, _ in sent) == 1
    assert _settles([s for s, _ in sent]) == 1


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgresql_prepares_each_batch_statement_once_whatever_the_values(
    store: SqlStore,
) -> None:
    """psycopg prepares a statement per text and parameter types. Batches whose columns hold
    NULLs in other places, or numbers of other sizes (a payload over 32 KiB: int4 instead of
    int2), must still send the same types, so each INSERT ends up prepared exactly once on the
    connection (sequential batches reuse the pool's one connection)."""
    sent = _sent_with_executemany(store)
    for number in range(len(_demo()) + 2):
        record = _everything(store, number)
        if number % 2:
            message = dataclasses.replace(record.message, reason="held for a reason")
            record = dataclasses.replace(record, message=message, raw=record.raw * 20)
        store.write_batch([record])
    runs: dict[str, int] = {}
    for statement, _ in sent:
        if "unnest(" in statement:
            runs[statement] = runs.get(statement, 0) + 1
    assert len(runs) >= 8, runs  # messages, payloads, events, ..., translations, ledger
    with store.engine.connect() as conn:
        prepared = [
            str(statement)
            for [statement] in conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
        ]
    for statement, count in runs.items():
        assert count >= 5, statement  # psycopg prepares on the fifth run
        same = [p for p in prepared if p == _numbered(statement)]
        assert len(same) == 1, (statement, len(same))


def _numbered(statement: str) -> str:
    """``statement`` with its ``%s``/``%b`` marks numbered ``$1, $2, ...`` as psycopg sends it."""
    parts = re.split("%[sb]", statement)
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]
