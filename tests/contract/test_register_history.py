"""The SQL dossier register answers like the in-memory history (SQLite and PostgreSQL).

A differential test: every dossier scenario test in ``tests/unit/dossier`` runs again with
:class:`~gateway.store.history.SqlHistory` behind the :class:`Dossier`. Accepted messages are
written through ``write_batch`` (as intake writes them); each check reads the register through
a history made for that message's clients, so other clients only appear as opaque keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.core.document import MessageDocument
from gateway.core.dossier import (
    Allocation,
    RegisterUpdate,
    Verdict,
    entries_of,
    submitted_declaration_in,
)
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.core.validate import validate
from gateway.service.sniffing import sniff_bsns
from gateway.store.base import IntakeRecord
from gateway.store.history import SqlHistory, history_factory
from gateway.store.sql import SqlStore
from gateway.store.tables import REGISTER
from tests.pg_schemas import PG_DSN_VARIABLE, PgSchemas
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.unit.dossier import scenario, test_startstop
from tests.unit.dossier.suite import plain_scenarios
from tests.unit.rules.mutate import official_schema_set

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


class SqlRecordingHistory:
    """A recording history on the SQL register: what the daemon would write and read."""

    def __init__(self, store: SqlStore, *, read_once: bool = True) -> None:
        self.store = store
        self.read_once = read_once
        self.seen_bsns: set[str] = set()
        self._count = 0

    def _write(self, doc: MessageDocument, update: RegisterUpdate) -> None:
        """Store a stand-in message (the payload does not matter) with the entries, as intake
        does: one ``write_batch`` with the register update on the intake record."""
        self._count += 1
        raw = f"{doc.message_type} #{self._count}".encode()
        received = Message(
            id=self.store.new_message_id(AT),
            state=State.RECEIVED,
            sender="provider",
            recipient=None,
            message_type=doc.message_type,
            bericht_id=f"M{self._count}",
            content_hash=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            received_at=AT,
            updated_at=AT,
            direction=Direction.INBOUND,
        )
        moved, event = advance(
            received, State.QUEUED, "routed", "pipeline", AT, recipient="gemeente"
        )
        self.store.write_batch([IntakeRecord(moved, raw, "test", (event,), register=update)])

    def record(self, doc: MessageDocument, *, rejected_lines: Collection[str] = ()) -> None:
        """Write an accepted message's entries (and a JW323's submission)."""
        for _, bsn in _bsns(doc):
            self.seen_bsns.add(bsn)
        update = RegisterUpdate(
            tuple(entries_of(doc, rejected_lines)),
            Verdict.ACCEPTED,
            submitted=submitted_declaration_in(doc),
        )
        self._write(doc, update)

    def remember_submission(self, doc: MessageDocument) -> None:
        """Write only the submission of a JW323 (rejected as a whole)."""
        update = RegisterUpdate((), Verdict.ACCEPTED, submitted=submitted_declaration_in(doc))
        self._write(doc, update)

    def checking(self, raw: bytes) -> SqlHistory:
        """The history the daemon builds for the message ``raw``: reading what the message's
        rules will ask at once, or (``read_once=False``) each question when asked."""
        document = validate(raw, official_schema_set()).document
        if not self.read_once or document is None:
            return SqlHistory(self.store, sniff_bsns(raw))
        return history_factory(self.store)(sniff_bsns(raw), (), document)

    def __getattr__(self, name: str) -> Any:
        # Direct queries in the scenarios name clients by plain BSN: read with all of them.
        return getattr(SqlHistory(self.store, self.seen_bsns), name)


def _bsns(doc: MessageDocument) -> Iterator[tuple[Any, str]]:
    for el in doc.iter_local("Bsn"):
        if el.text:
            yield el, el.text.strip()


def _scenario_tests() -> list[Any]:
    return [pytest.param(fn, id=case) for case, _, fn in plain_scenarios()]


@pytest.fixture
def fresh_stores(backend: str, tmp_path: Path) -> Iterator[Callable[[], SqlStore]]:
    """Makes migrated stores on empty databases of the backend under test (a scenario may
    build several dossiers, each with a register of its own)."""
    made: list[SqlStore] = []
    schemas = PgSchemas(os.environ.get(PG_DSN_VARIABLE, ""), "dossier")

    def make() -> SqlStore:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'dossier{len(made)}.db'}"
        else:
            url = schemas.new_url()
        store = SqlStore(url, pseudonyms=TEST_PSEUDONYMS)
        store.migrate()
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    schemas.drop_all()


@pytest.fixture(params=[True, False], ids=["read-once", "per-question"])
def sql_dossiers(
    request: pytest.FixtureRequest, store_url: str, fresh_stores: Callable[[], SqlStore]
) -> Iterator[list[SqlRecordingHistory]]:
    """Every Dossier made while the fixture is active gets an SQL register of its own; the
    list holds them in order of creation. Each check reads the register as the daemon does
    (what the message's rules ask, at once) and, separately, one question at a time."""
    histories: list[SqlRecordingHistory] = []

    def new() -> SqlRecordingHistory:
        histories.append(SqlRecordingHistory(fresh_stores(), read_once=request.param))
        return histories[-1]

    scenario.NEW_HISTORY.append(new)
    try:
        yield histories
    finally:
        scenario.NEW_HISTORY.pop()


@pytest.mark.parametrize("scenario_test", _scenario_tests())
def test_scenario_on_the_sql_register(
    scenario_test: Callable[[], None], sql_dossiers: list[SqlRecordingHistory]
) -> None:
    """The scenario passes on the SQL register exactly as on the in-memory history."""
    scenario_test()


def test_register_holds_no_bsn(sql_dossiers: list[SqlRecordingHistory]) -> None:
    """Client keys only: no column and no JSON body of any entry holds a BSN."""
    dossier = test_startstop.started()
    dossier.accept(scenario.stop())
    store = sql_dossiers[0].store
    with store.engine.connect() as conn:
        rows = conn.execute(select(REGISTER)).mappings().all()
    assert rows
    assert len({row["kind"] for row in rows}) >= 3
    for row in rows:
        assert scenario.BSN not in json.dumps(dict(row), default=str)


def test_other_clients_come_back_as_opaque_keys(
    sql_dossiers: list[SqlRecordingHistory],
) -> None:
    """A history made for another client sees this client's records under ``key:``, never the
    BSN, and equality with its own BSN fails, as the rules expect."""
    test_startstop.allocated()
    store = sql_dossiers[0].store
    other = SqlHistory(store, known_bsns=["999900018"])
    versions: Sequence[Allocation] = other.allocation_versions(scenario.GEMEENTE, 300201)
    assert versions
    assert all(v.bsn.startswith("key:") and scenario.BSN not in v.bsn for v in versions)
    assert other.client_allocations(scenario.GEMEENTE, scenario.AANBIEDER, "999900018") == []
    mine = SqlHistory(store, known_bsns=[scenario.BSN])
    assert {v.bsn for v in mine.allocation_versions(scenario.GEMEENTE, 300201)} == {scenario.BSN}
    # The opaque key reads the same client back.
    key = versions[0].bsn
    assert other.client_allocations(scenario.GEMEENTE, scenario.AANBIEDER, key)
