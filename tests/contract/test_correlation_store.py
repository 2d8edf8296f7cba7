"""The correlation store on every backend: linking in one batch, via record_correlation,
the overdue notice marked once, and migration 3 on a version 2 database."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from gateway.core.correlate import Correlation, CorrelationKey, Side
from gateway.store.base import IntakeRecord
from gateway.store.migrations import MIGRATIONS
from gateway.store.sql import SqlStore
from tests.contract.conftest import undo_identificatie_claims
from tests.contract.test_write_batch import AT, _queued, _raw

KEY = CorrelationKey("JW301", "0384", "B1")


def _with(record: IntakeRecord, side: Side, key: CorrelationKey = KEY) -> IntakeRecord:
    return IntakeRecord(
        record.message, record.raw, record.actor, record.moves, correlation=Correlation(side, key)
    )


def test_original_and_retour_in_one_batch_are_linked(store: SqlStore) -> None:
    """Both sides committed together still find each other."""
    original = _with(_queued(store, _raw(1)), Side.ORIGINAL)
    retour = _with(_queued(store, _raw(2), bericht="B2"), Side.RETOUR)
    store.write_batch([retour, original])
    assert store.linked_message(retour.message.id) == original.message.id
    assert store.linked_message(original.message.id) == retour.message.id
    assert store.open_originals() == []


def test_record_correlation_links_a_later_original_and_is_idempotent(store: SqlStore) -> None:
    """The processing path records sides one by one; recording twice changes nothing."""
    retour = _queued(store, _raw(1), bericht="R1")
    original = _queued(store, _raw(2))
    other = _queued(store, _raw(3), bericht="B3")
    store.write_batch([retour, original, other])
    store.record_correlation(retour.message.id, Correlation(Side.RETOUR, KEY))
    assert store.linked_message(retour.message.id) is None
    store.record_correlation(
        other.message.id, Correlation(Side.ORIGINAL, CorrelationKey("JW301", "0384", "B3"))
    )
    store.record_correlation(original.message.id, Correlation(Side.ORIGINAL, KEY))
    store.record_correlation(original.message.id, Correlation(Side.ORIGINAL, KEY))
    assert store.linked_message(retour.message.id) == original.message.id
    assert [o.message.id for o in store.open_originals()] == [other.message.id]
    assert store.open_originals(party="provider-a")[0].message.id == other.message.id
    assert store.open_originals(party="nobody") == []


def test_an_overdue_notice_is_marked_only_once(store: SqlStore) -> None:
    """The first mark wins; later marks (a restart, a second process) return nothing."""
    original = _with(_queued(store, _raw(1)), Side.ORIGINAL)
    store.write_batch([original])
    assert store.mark_overdue_logged([original.message.id], AT) == [original.message.id]
    assert store.mark_overdue_logged([original.message.id], AT) == []
    assert store.open_originals()[0].overdue_logged_at == AT


def test_migration_3_adds_the_correlations_table_to_a_version_2_database(
    make_store: Callable[[], SqlStore],
) -> None:
    """A database at version 2 gains the table; its messages simply have no correlation."""
    store = make_store()
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE correlations"))
        undo_identificatie_claims(conn)
        conn.execute(text("DELETE FROM schema_version WHERE version > 2"))
    upgraded = make_store()
    upgraded.migrate()
    assert upgraded.schema_version() == len(MIGRATIONS)
    assert upgraded.open_originals() == []
