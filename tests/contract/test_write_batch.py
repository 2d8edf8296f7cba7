"""``Store.write_batch``: intake records and state moves in one transaction, on every backend."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.core.errors import StoreError
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.store.base import IntakeRecord, Move
from gateway.store.sql import SqlStore
from tests.paths import EXAMPLES_DIR

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(seconds=1)


def _received(store: SqlStore, raw: bytes, sender: str = "diemen", bericht: str = "B1") -> Message:
    return Message(
        id=store.new_message_id(AT),
        state=State.RECEIVED,
        sender=sender,
        recipient=None,
        message_type="JW301",
        bericht_id=bericht,
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=AT,
        updated_at=AT,
    )


def _queued(store: SqlStore, raw: bytes, bericht: str = "B1", **kw: object) -> IntakeRecord:
    """An intake record for a message routed to provider-a."""
    moved, event = advance(
        _received(store, raw, bericht=bericht),
        State.QUEUED,
        "routed",
        "pipeline",
        LATER,
        recipient="provider-a",
    )
    return IntakeRecord(moved, raw, "party:diemen", (event,), **kw)  # type: ignore[arg-type]


def _retour_for(store: SqlStore, original: Message) -> IntakeRecord:
    raw = b"<retour/>"
    made = Message(
        id=store.new_message_id(AT),
        state=State.RECEIVED,
        sender="bvo",
        recipient="diemen",
        message_type="JW302",
        bericht_id="R" + original.id[-8:],
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=LATER,
        updated_at=LATER,
        direction=Direction.GENERATED,
        in_reply_to=original.id,
    )
    placed, event = advance(made, State.QUEUED, "retour routed", "pipeline", LATER)
    return IntakeRecord(placed, raw, "gateway for amsterdam by bvo", (event,))


def _raw(number: int) -> bytes:
    return (EXAMPLES_DIR / "JW301.xml").read_bytes().replace(b"<", f"<!--{number}--><".encode(), 1)


def test_a_record_is_stored_with_its_final_state_events_findings_and_retour(
    store: SqlStore,
) -> None:
    """Raw bytes, final state, received + queued events, findings and the retour, together."""
    raw = _raw(1)
    record = _queued(store, raw, findings=({"rule": "TR001", "message": "x"},))
    retour = _retour_for(store, record.message)
    record = IntakeRecord(
        record.message, record.raw, record.actor, record.moves, record.findings, retour
    )
    result = store.write_batch([record])
    assert result.saved[0].created and result.moved == []
    msg = store.get(record.message.id)
    assert msg == record.message
    assert store.payload(msg.id) == raw
    history = store.history(msg.id)
    assert [(e.from_state, e.to_state, e.actor) for e in history] == [
        (None, State.RECEIVED, "party:diemen"),
        (State.RECEIVED, State.QUEUED, "pipeline"),
    ]
    assert store.findings(msg.id) == [{"rule": "TR001", "message": "x"}]
    stored_retour = store.get(retour.message.id)
    assert stored_retour is not None and stored_retour.in_reply_to == msg.id
    assert stored_retour.state is State.QUEUED and stored_retour.recipient == "diemen"
    assert [e.to_state for e in store.history(retour.message.id)] == [
        State.RECEIVED,
        State.QUEUED,
    ]
    assert store.payload(retour.message.id) == b"<retour/>"


def test_resubmission_in_the_same_or_a_later_batch_returns_the_first(store: SqlStore) -> None:
    """Same sender, BerichtIdentificatie and bytes: stored once, also twice in one batch."""
    raw = _raw(2)
    first, twin = _queued(store, raw), _queued(store, raw)
    other = _queued(store, _raw(3), bericht="B3")
    result = store.write_batch([first, twin, other])
    assert [s.created for s in result.saved] == [True, False, True]
    assert result.saved[1].message.id == first.message.id
    again = _queued(store, raw)
    again = IntakeRecord(
        again.message, again.raw, again.actor, again.moves, (), _retour_for(store, again.message)
    )
    later = store.write_batch([again])
    assert not later.saved[0].created and later.saved[0].message.id == first.message.id
    assert store.get(again.message.id) is None
    assert store.get(again.retour.message.id) is None  # type: ignore[union-attr]
    assert len(store.history(first.message.id)) == 2


def test_moves_are_compare_and_set_each_on_its_own(store: SqlStore) -> None:
    """A stale move writes nothing and reports False; the other moves of the batch go through."""
    a, b = _queued(store, _raw(4), bericht="B4"), _queued(store, _raw(5), bericht="B5")
    store.write_batch([a, b])
    lease = LATER + dt.timedelta(minutes=2)
    claim_a = advance(a.message, State.SENDING, "claimed", "delivery", LATER, lease_until=lease)
    hold_a = advance(a.message, State.HELD, "paused", "scheduler", LATER)
    hold_b = advance(b.message, State.HELD, "paused", "scheduler", LATER)
    moves = [Move(*claim_a, State.QUEUED), Move(*hold_a, State.QUEUED), Move(*hold_b, State.QUEUED)]
    result = store.write_batch([], moves)
    assert result.moved == [True, False, True]
    assert store.get(a.message.id) == claim_a[0]
    assert store.get(b.message.id) == hold_b[0]
    assert [e.to_state for e in store.history(a.message.id)][-1] is State.SENDING
    assert len(store.history(a.message.id)) == 3  # received, queued, sending: no held event


def test_a_failing_batch_stores_nothing(store: SqlStore) -> None:
    """A record whose id is taken by another message fails the batch; its neighbour is not kept."""
    taken = _queued(store, _raw(6), bericht="B6")
    store.write_batch([taken])
    fresh = _queued(store, _raw(7), bericht="B7")
    clash = _queued(store, _raw(8), bericht="B8")
    clash = IntakeRecord(
        Message(**{**_fields(clash.message), "id": taken.message.id}),
        clash.raw,
        clash.actor,
        tuple(type(e)(**{**_fields(e), "message_id": taken.message.id}) for e in clash.moves),
    )
    with pytest.raises(StoreError):
        store.write_batch([fresh, clash])
    assert store.get(fresh.message.id) is None
    assert store.get(taken.message.id) == taken.message


def test_moves_that_do_not_lead_to_the_state_are_refused(store: SqlStore) -> None:
    """A record claiming ``queued`` without the move that gets it there is a ValueError."""
    record = _queued(store, _raw(9), bericht="B9")
    with pytest.raises(ValueError, match="moves"):
        store.write_batch([IntakeRecord(record.message, record.raw, record.actor, ())])
    assert store.get(record.message.id) is None


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_two_processes_writing_the_same_messages_at_once_store_each_once(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    """Two stores (two daemons on one database) write batches holding the same messages under
    their own ids at the same moment: the idempotency index lets each message in once, and both
    batches answer with the stored one."""
    raws = [_raw(n) for n in range(20, 28)]
    stores = [store, make_store()]
    batches = [[_queued(s, raw, bericht=f"B{n}") for n, raw in enumerate(raws)] for s in stores]
    barrier = threading.Barrier(len(stores))

    def write(index: int) -> list[tuple[str, bool]]:
        barrier.wait()
        saved = stores[index].write_batch(batches[index]).saved
        return [(s.message.id, s.created) for s in saved]

    with ThreadPoolExecutor(len(stores)) as pool:
        first, second = pool.map(write, range(len(stores)))

    assert [a for a, _ in first] == [b for b, _ in second]
    created = [a + b for (_, a), (_, b) in zip(first, second, strict=True)]
    assert created == [1] * len(raws)
    own_ids = [{b[n].message.id for b in batches} for n in range(len(raws))]
    assert all(stored in own for (stored, _), own in zip(first, own_ids, strict=True))
    for stored, _ in first:
        assert len(store.history(stored)) == 2
