"""Two write transactions at once (two daemons on one PostgreSQL), one storing an original and
the other its retour: the exchange is linked whichever commits first.

Without care each transaction's linking UPDATE runs before the other has committed, so neither
sees the other side and the exchange stays unlinked for good (its dossier verdicts pending, an
overdue-retour notice to come). SQLite runs one write transaction at a time, so only
PostgreSQL can meet this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text

from gateway.core.correlate import Side
from gateway.store.base import IntakeRecord
from gateway.store.sql import SqlStore
from tests.contract.test_correlation_store import _with
from tests.contract.test_write_batch import _queued, _raw

WAIT_SECONDS = 10.0


def _pause_before_commit(store: SqlStore, reached: threading.Event, go: threading.Event) -> None:
    """Every transaction of ``store`` signals ``reached`` when it is about to commit (all its
    statements, the linking ones too, have run) and then waits for ``go``."""

    @event.listens_for(store.engine, "commit")
    def _hold(_conn: Any) -> None:
        reached.set()
        go.wait(WAIT_SECONDS)


def _waits_on_an_advisory_lock(store: SqlStore) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' "
                "AND datname = current_database()"
            )
        ).scalar()
    return bool(waiting)


def _write_in_thread(
    store: SqlStore, record: IntakeRecord, errors: list[BaseException]
) -> threading.Thread:
    def write() -> None:
        try:
            store.write_batch([record])
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_an_original_and_its_retour_written_at_once_are_linked(
    backend: str, make_store: Callable[[], SqlStore]
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite runs one write transaction at a time")
    first, second, observer = make_store(), make_store(), make_store()
    first.migrate()
    original = _with(_queued(first, _raw(1)), Side.ORIGINAL)
    retour = _with(_queued(first, _raw(2), bericht="B2"), Side.RETOUR)
    first_ready, second_ready, go = threading.Event(), threading.Event(), threading.Event()
    _pause_before_commit(first, first_ready, go)
    _pause_before_commit(second, second_ready, go)
    errors: list[BaseException] = []

    writing_original = _write_in_thread(first, original, errors)
    assert first_ready.wait(WAIT_SECONDS), "the first transaction never got to its commit"
    writing_retour = _write_in_thread(second, retour, errors)
    # Let both commit once the second transaction has either run all its statements (no
    # serialisation: the race is on) or is waiting for the first (serialised).
    for _ in range(int(WAIT_SECONDS / 0.01)):
        if second_ready.is_set() or _waits_on_an_advisory_lock(observer):
            break
        second_ready.wait(0.01)
    else:
        raise AssertionError("the second transaction neither finished nor waited")
    go.set()
    writing_original.join(WAIT_SECONDS)
    writing_retour.join(WAIT_SECONDS)

    assert errors == []
    assert observer.linked_message(retour.message.id) == original.message.id
    assert observer.linked_message(original.message.id) == retour.message.id
    assert observer.open_originals() == []
