"""The store's translation tables: ledger, per-message translations and rewrites, on every
backend (SQLite always, PostgreSQL when GATEWAY_TEST_PG_DSN is set)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from fractions import Fraction

from sqlalchemy import text

from gateway.core.ledger import LedgerEntry, LedgerKey, Origin
from gateway.core.lifecycle import advance
from gateway.core.mapping_tables import Product
from gateway.core.model import State
from gateway.core.translation import Rewrite, Undecided
from gateway.store.base import TranslationRecord
from gateway.store.sql import SqlStore
from tests.contract.test_write_batch import AT, _queued, _raw

ALLOCATION = LedgerKey.allocation("0384", "300201")
PAIR = LedgerEntry(
    key=ALLOCATION,
    original=Product("45", "45N03"),
    translated=Product("45", "45A03"),
    original_generation="new",
    translated_generation="old",
    basis="old_to_new.csv:8",
    unit_original="04",
    unit_translated="01",
    volume_factor=Fraction(60),
    recorded_on=dt.date(2026, 5, 1),
)
TRANSLATED = b"<translated/>"
REWRITE = Rewrite("/Bericht/Client/ToegewezenProducten/ToegewezenProduct", "45/45N03", "45/45A03",
                  "old_to_new.csv:8", str(ALLOCATION))  # fmt: skip
WAITING = Undecided(
    "/Bericht/Client/ToegewezenProducten/ToegewezenProduct",
    Product("45", "45A48"),
    "one-to-many mapping (old_to_new.csv:12)",
    key="0384/toewijzing/300202",
    candidates=(Product("45", "45P01"), Product("45", "45P02")),
)


def _translated(**changes: object) -> TranslationRecord:
    record = TranslationRecord(
        "0384", "new", "old", TRANSLATED, rewrites=(REWRITE,), entries=(PAIR,)
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_ledger_pairs_round_trip_and_the_first_pair_wins(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    store.record_ledger([PAIR], "M1")
    other = LedgerEntry(ALLOCATION, Product("45", "45N04"), Product("45", "45A04"), "new", "old")
    store.record_ledger([other], "M2")
    assert store.ledger_entry(ALLOCATION) == PAIR
    restarted = make_store()  # a new engine on the same database: a daemon restart
    assert restarted.ledger_entry(ALLOCATION) == PAIR
    assert restarted.ledger_entry(LedgerKey.allocation("0384", "999")) is None


def test_the_first_of_two_pairs_for_one_key_in_one_call_wins(store: SqlStore) -> None:
    """Rows of one INSERT go in in their order (on PostgreSQL, from arrays), so the later pair
    of a key meets the earlier one and is dropped, as against a stored pair."""
    other = LedgerEntry(ALLOCATION, Product("45", "45N04"), Product("45", "45A04"), "new", "old")
    store.record_ledger([PAIR, other], "M1")
    assert store.ledger_entry(ALLOCATION) == PAIR
    store.record_ledger([other, PAIR], "M2")
    assert store.ledger_entry(ALLOCATION) == PAIR
    reverse = LedgerKey.allocation("0384", "300999")
    store.record_ledger(
        [dataclasses.replace(other, key=reverse), dataclasses.replace(PAIR, key=reverse)], "M3"
    )
    assert store.ledger_entry(reverse) == dataclasses.replace(other, key=reverse)


def test_request_pairs_are_found_by_referentie_only(store: SqlStore) -> None:
    def request(number: str, position: int | None) -> LedgerEntry:
        return LedgerEntry(
            LedgerKey.request("0384", number, position),
            Product("45", "45A03"),
            Product("45", "45N03"),
            "old",
            "new",
            origin=Origin.REQUEST,
        )

    wanted = [request("REF_1", 1), request("REF_1", 2)]
    # 'REFX1' matches the LIKE pattern 'REF_1#%' but is another reference.
    store.record_ledger([*wanted, request("REFX1", 1), request("REF_10", None)], None)
    assert store.ledger_requests("0384", "REF_1") == tuple(wanted)
    assert store.ledger_requests("0363", "REF_1") == ()


def test_intake_stores_translation_and_delivery_reads_the_translated_bytes(
    store: SqlStore,
) -> None:
    raw = _raw(1)
    record = _queued(store, raw, translation=_translated())
    (saved,) = store.write_batch([record]).saved
    message_id = saved.message.id
    assert store.payload(message_id) == raw  # the original stays for audit
    assert store.delivery_payload(message_id) == TRANSLATED
    stored = store.translation_of(message_id)
    assert stored is not None
    assert (stored.from_generation, stored.to_generation, stored.has_payload) == (
        "new",
        "old",
        True,
    )
    assert stored.rewrites == (REWRITE,)
    assert store.ledger_entry(ALLOCATION) == PAIR


def test_untranslated_message_delivers_its_raw_bytes(store: SqlStore) -> None:
    raw = _raw(2)
    (saved,) = store.write_batch([_queued(store, raw)]).saved
    assert store.translation_of(saved.message.id) is None
    assert store.delivery_payload(saved.message.id) == raw
    assert store.delivery_payload("01NOSUCHMESSAGE0000000000") is None


def test_waiting_products_are_kept_and_counted_as_coverage(store: SqlStore) -> None:
    waiting = _translated(translated=None, rewrites=(), undecided=(WAITING,), entries=())
    first = store.write_batch([_queued(store, _raw(3), bericht="B3", translation=waiting)])
    second = store.write_batch([_queued(store, _raw(4), bericht="B4", translation=waiting)])
    message_id = first.saved[0].message.id
    stored = store.translation_of(message_id)
    assert stored is not None and stored.undecided == (WAITING,)
    assert store.delivery_payload(message_id) == _raw(3)  # nothing translated yet
    assert store.ledger_entry(ALLOCATION) is None
    (row,) = store.translation_coverage()
    assert (row.gemeente, row.product, row.problem, row.messages) == (
        "0384",
        "45/45A48",
        "one-to-many",
        2,
    )
    assert store.translation_coverage(since=AT + dt.timedelta(days=1)) == []
    # A decision replaces the message's translation; the coverage history stays with the other.
    store.save_translation(message_id, _translated())
    replaced = store.translation_of(message_id)
    assert replaced is not None and replaced.undecided == () and replaced.rewrites == (REWRITE,)
    assert store.delivery_payload(message_id) == TRANSLATED
    assert second.saved[0].created
    # The decided message still counts: the tables could not translate that code.
    assert [r.messages for r in store.translation_coverage()] == [2]
    store.save_translation(message_id, _translated())  # idempotent: counted once
    assert [(r.problem, r.messages) for r in store.translation_coverage()] == [("one-to-many", 2)]


def test_retention_drops_the_translated_copy_with_the_payload(store: SqlStore) -> None:
    (saved,) = store.write_batch([_queued(store, _raw(5), translation=_translated())]).saved
    msg = saved.message
    lease = AT + dt.timedelta(minutes=5)
    sending, ev1 = advance(msg, State.SENDING, "claimed", "delivery", AT, lease_until=lease)
    store.apply_transition(sending, ev1, State.QUEUED)
    done, ev2 = advance(sending, State.DELIVERED, "ok", "delivery", AT)
    store.apply_transition(done, ev2, State.SENDING)
    store.purge({State.DELIVERED: AT + dt.timedelta(days=1)}, batch_size=10, dry_run=False)
    assert store.delivery_payload(msg.id) is None
    stored = store.translation_of(msg.id)
    assert stored is not None and not stored.has_payload and stored.rewrites == (REWRITE,)


def test_migration_5_adds_the_translation_tables_to_an_older_database(
    make_store: Callable[[], SqlStore],
) -> None:
    store = make_store()
    store.migrate()
    with store.engine.begin() as conn:
        for table in ("translation_rewrites", "translations", "translation_ledger"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 5"))
    upgraded = make_store()
    upgraded.migrate()
    assert upgraded.schema_version() >= 5
    upgraded.record_ledger([PAIR], None)
    assert upgraded.ledger_entry(ALLOCATION) == PAIR
    (saved,) = upgraded.write_batch([_queued(upgraded, _raw(6), translation=_translated())]).saved
    assert upgraded.delivery_payload(saved.message.id) == TRANSLATED


GEMEENTE_PAIR = dataclasses.replace(
    PAIR, origin=Origin.GEMEENTE, decided_by="toegang Diemen", reference="GP-2026-0113"
)


def test_migration_8_adds_the_decision_reference_to_an_older_ledger(
    make_store: Callable[[], SqlStore],
) -> None:
    store = make_store()
    store.migrate()
    store.record_ledger([PAIR], "M1")
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE translation_ledger DROP COLUMN reference"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 10"))
    upgraded = make_store()
    upgraded.migrate()
    assert upgraded.schema_version() >= 10
    assert upgraded.ledger_entry(ALLOCATION) == PAIR  # the older pair keeps its fields
    other = LedgerKey.allocation("0384", "300299")
    upgraded.record_ledger([dataclasses.replace(GEMEENTE_PAIR, key=other)], "M2")
    assert make_store().ledger_entry(other) == dataclasses.replace(GEMEENTE_PAIR, key=other)


def test_held_messages_are_found_by_the_key_they_wait_on(store: SqlStore) -> None:
    waiting = _translated(translated=None, rewrites=(), undecided=(WAITING,), entries=())
    (queued,) = store.write_batch(
        [_queued(store, _raw(7), bericht="B7", translation=waiting)]
    ).saved
    assert WAITING.key is not None
    assert store.waiting_on([WAITING.key]) == {}  # queued, not held for a decision
    held, event = advance(queued.message, State.HELD, "needs mapping decision: x", "test", AT)
    store.apply_transition(held, event, State.QUEUED)
    assert store.waiting_on([WAITING.key, "0384/toewijzing/nothing"]) == {WAITING.key: [held.id]}
    store.save_translation(held.id, _translated())  # decided: nothing waits any more
    assert store.waiting_on([WAITING.key]) == {}
