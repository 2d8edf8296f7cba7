"""One message per sender, message type and BerichtIdentificatie goes on: another with other
bytes under the same key is not stored, on every backend, across stores and after an upgrade."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, text

from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.core.translation import NEEDS_MAPPING_DECISION
from gateway.store.base import IntakeRecord, NewMessage
from gateway.store.sql import SqlStore
from gateway.store.tables import MESSAGES

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(seconds=1)


def _record(
    store: SqlStore,
    raw: bytes,
    *,
    state: State = State.QUEUED,
    sender: str = "diemen",
    message_type: str = "JW301",
    bericht: str = "ID-1",
) -> IntakeRecord:
    """An intake record as intake decides it: queued for provider-a, or rejected."""
    received = Message(
        id=store.new_message_id(AT),
        state=State.RECEIVED,
        sender=sender,
        recipient=None,
        message_type=message_type,
        bericht_id=bericht,
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=AT,
        updated_at=AT,
    )
    moved, event = advance(
        received, state, f"to {state}", "pipeline", LATER, recipient="provider-a"
    )
    return IntakeRecord(moved, raw, f"party:{sender}", (event,))


def _new(raw: bytes, *, replay_of: str | None = None, message_type: str = "JW301") -> NewMessage:
    return NewMessage(
        sender="diemen",
        raw=raw,
        content_hash=hashlib.sha256(raw).hexdigest(),
        bericht_id="ID-1",
        message_type=message_type,
        received_at=AT,
        actor="party:diemen",
        replay_of=replay_of,
    )


def test_other_bytes_under_a_held_identificatie_are_not_stored(store: SqlStore) -> None:
    """The second JW301 with the first one's Identificatie and other bytes: not stored, the
    first named; the same bytes again stay an idempotent duplicate."""
    (first,) = store.write_batch([_record(store, b"<a/>")]).saved
    (again,) = store.write_batch([_record(store, b"<a/>")]).saved
    (reused,) = store.write_batch([_record(store, b"<b/>")]).saved
    assert first.created
    assert (again.created, again.identificatie_taken, again.message.id) == (
        False,
        False,
        first.message.id,
    )
    assert (reused.created, reused.identificatie_taken, reused.message.id) == (
        False,
        True,
        first.message.id,
    )
    with store.engine.connect() as conn:
        assert conn.execute(select(MESSAGES.c.id)).scalars().all() == [first.message.id]


def test_the_key_is_sender_type_and_identificatie(store: SqlStore) -> None:
    """Another sender, another original type, or a retour type (which repeats its original's
    Identificatie) under the same Identificatie is a message of its own."""
    records = [
        _record(store, b"<a/>"),
        _record(store, b"<b/>", sender="amsterdam"),
        _record(store, b"<c/>", message_type="JW315"),
        _record(store, b"<d/>", message_type="JW302"),
        _record(store, b"<e/>", message_type="JW302"),
    ]
    saved = store.write_batch(records).saved
    assert [s.created for s in saved] == [True] * 5


def test_within_one_batch_the_first_record_wins(store: SqlStore) -> None:
    first, second = store.write_batch([_record(store, b"<a/>"), _record(store, b"<b/>")]).saved
    assert first.created and not second.created
    assert second.identificatie_taken and second.message.id == first.message.id


def test_a_rejected_message_holds_no_identificatie(store: SqlStore) -> None:
    """A rejected message (e.g. one the gateway answered with 9056) is stored; it neither
    takes the key from the holder nor keeps a corrected message with the same key out."""
    (rejected,) = store.write_batch([_record(store, b"<bad/>", state=State.REJECTED)]).saved
    (good,) = store.write_batch([_record(store, b"<good/>")]).saved
    (reuse_rejected,) = store.write_batch([_record(store, b"<x/>", state=State.REJECTED)]).saved
    (reuse,) = store.write_batch([_record(store, b"<y/>")]).saved
    assert rejected.created and good.created and reuse_rejected.created
    assert reuse.identificatie_taken and reuse.message.id == good.message.id


def test_save_received_refuses_a_reuse_but_not_a_replay(store: SqlStore) -> None:
    first = store.save_received(_new(b"<a/>"))
    reused = store.save_received(_new(b"<b/>"))
    replay = store.save_received(_new(b"<b/>", replay_of=first.message.id))
    retour = store.save_received(_new(b"<c/>", message_type="JW302"))
    assert first.created and replay.created and retour.created
    assert reused.identificatie_taken and reused.message.id == first.message.id


def test_two_stores_racing_one_identificatie_store_one_message(
    make_store: Callable[[], SqlStore], backend: str
) -> None:
    """Two stores (two daemons) on one database, each with other bytes under the same key,
    at the same moment: exactly one is stored, the other is told which one holds the key."""
    stores = [make_store() for _ in range(2)]
    stores[0].migrate()
    rounds = 8
    for n in range(rounds):
        barrier = threading.Barrier(2)

        def write(index: int, n: int = n, barrier: threading.Barrier = barrier) -> object:
            s = stores[index]
            record = _record(s, f"<m n='{n}' by='{index}'/>".encode(), bericht=f"R{n}")
            barrier.wait()
            return s.write_batch([record]).saved[0]

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(write, range(2)))
        created = [r for r in results if r.created]  # type: ignore[attr-defined]
        refused = [r for r in results if r.identificatie_taken]  # type: ignore[attr-defined]
        assert len(created) == 1 and len(refused) == 1, (backend, n, results)
        assert refused[0].message.id == created[0].message.id  # type: ignore[attr-defined]


def test_migration_7_upgrades_a_database_that_holds_reused_identificaties(
    make_store: Callable[[], SqlStore],
) -> None:
    """Stored before the index, two messages share a key: the upgrade does not fail, the
    first that went on holds the key, and a later reuse is refused naming it."""
    store = make_store()
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ux_messages_identificatie"))
    rejected, first, second = store.write_batch(
        [
            _record(store, b"<r/>", state=State.REJECTED),
            _record(store, b"<a/>"),
            _record(store, b"<b/>"),
        ]
    ).saved
    assert rejected.created and first.created and second.created
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages DROP COLUMN identificatie_claim"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 8"))
    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        holders = conn.execute(
            select(MESSAGES.c.id).where(MESSAGES.c.identificatie_claim.is_not(None))
        ).scalars()
        assert list(holders) == [first.message.id]
    (later,) = upgraded.write_batch([_record(upgraded, b"<c/>")]).saved
    assert later.identificatie_taken and later.message.id == first.message.id
    assert upgraded.get(second.message.id) is not None  # what was stored stays


def test_generated_messages_hold_nothing(store: SqlStore) -> None:
    """The gateway's own retours never take a party's Identificatie."""
    raw = b"<g/>"
    made = Message(
        id=store.new_message_id(AT),
        state=State.RECEIVED,
        sender="diemen",
        recipient="provider-a",
        message_type="JW301",
        bericht_id="ID-1",
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=AT,
        updated_at=AT,
        direction=Direction.GENERATED,
    )
    placed, event = advance(made, State.QUEUED, "routed", "pipeline", LATER)
    (generated,) = store.write_batch([IntakeRecord(placed, raw, "gateway", (event,))]).saved
    (inbound,) = store.write_batch([_record(store, b"<a/>")]).saved
    assert generated.created and inbound.created


def test_a_message_held_for_a_mapping_decision_holds_no_identificatie(store: SqlStore) -> None:
    """Held for a mapping decision it goes nowhere yet; the rules judge it once decided."""
    (holder,) = store.write_batch([_record(store, b"<a/>")]).saved
    record = _record(store, b"<b/>", state=State.HELD)
    waiting = dataclasses.replace(record.message, reason=f"{NEEDS_MAPPING_DECISION}: 45A03")
    event = dataclasses.replace(record.moves[0], reason=waiting.reason or "")
    (held,) = store.write_batch([IntakeRecord(waiting, record.raw, "party:diemen", (event,))]).saved
    assert holder.created and held.created and not held.identificatie_taken
