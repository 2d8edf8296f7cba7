"""The Store contract, run against every backend (see conftest: sqlite, postgres)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.core.correlate import Correlation, CorrelationKey, Side
from gateway.core.errors import IllegalTransition
from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.store.base import MessageQuery, NewMessage
from gateway.store.sql import SqlStore

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def new_message(
    n: int = 0,
    *,
    sender: str = "aanbieder-a",
    bericht_id: str | None = "default",
    raw: bytes | None = None,
    at: dt.datetime | None = None,
    recipient: str | None = None,
    message_type: str | None = "JW315",
) -> NewMessage:
    """A NewMessage whose content and BerichtIdentificatie differ per ``n``."""
    body = raw if raw is not None else f"<Bericht n='{n}'/>".encode()
    return NewMessage(
        sender=sender,
        raw=body,
        content_hash=hashlib.sha256(body).hexdigest(),
        bericht_id=f"B{n}" if bericht_id == "default" else bericht_id,
        message_type=message_type,
        received_at=at or T0 + dt.timedelta(seconds=n),
        actor=f"party:{sender}",
        recipient=recipient,
    )


def move(store: SqlStore, msg: Message, to: State, at: dt.datetime, **changes: object) -> Message:
    """Advance through the lifecycle and persist it, as the service does."""
    moved, event = advance(msg, to, f"to {to}", "test", at, **changes)
    store.apply_transition(moved, event, expected=msg.state)
    return moved


def queued(store: SqlStore, n: int, recipient: str = "gemeente-0363", **kwargs: object) -> Message:
    """A stored message routed to ``recipient`` and waiting in the queue."""
    saved = store.save_received(new_message(n, **kwargs))  # type: ignore[arg-type]
    at = saved.message.received_at
    return move(store, saved.message, State.QUEUED, at, recipient=recipient)


# -- intake ---------------------------------------------------------------------------------


def test_save_received_keeps_metadata_exact_bytes_and_a_received_event(store: SqlStore) -> None:
    """A new message is stored in state received with its exact bytes and its first event."""
    raw = b"<?xml version='1.0'?>\n<a>\x00\xff\xfe caf\xc3\xa9</a>\r\n"
    new = new_message(1, raw=raw, recipient="gemeente-0363")
    saved = store.save_received(new)

    assert saved.created
    msg = saved.message
    assert msg.state is State.RECEIVED
    assert (msg.sender, msg.recipient, msg.bericht_id) == ("aanbieder-a", "gemeente-0363", "B1")
    assert (msg.content_hash, msg.size, msg.direction) == (
        new.content_hash,
        len(raw),
        Direction.INBOUND,
    )
    assert store.get(msg.id) == msg
    assert store.payload(msg.id) == raw
    [event] = store.history(msg.id)
    assert (event.from_state, event.to_state, event.actor, event.at) == (
        None,
        State.RECEIVED,
        "party:aanbieder-a",
        new.received_at,
    )


def test_saving_the_same_message_again_returns_the_first(store: SqlStore) -> None:
    """Same sender, BerichtIdentificatie and content: same id, created=False, no new event."""
    first = store.save_received(new_message(1))
    again = store.save_received(
        dataclasses.replace(new_message(1), received_at=T0 + dt.timedelta(hours=1))
    )

    assert not again.created
    assert again.message == first.message
    assert len(store.history(first.message.id)) == 1
    assert len(store.query(MessageQuery())) == 1


def test_same_bericht_id_with_other_content_is_not_a_duplicate(store: SqlStore) -> None:
    """Changed content under the same BerichtIdentificatie is not swallowed as a duplicate:
    of an original it is refused (the first holds the Identificatie), of a type that repeats
    its original's Identificatie (a retour) it is a message of its own."""
    first = store.save_received(new_message(1))
    changed = store.save_received(new_message(1, raw=b"<Bericht changed='1'/>"))
    other_sender = store.save_received(new_message(1, sender="aanbieder-b"))
    retour = store.save_received(new_message(1, message_type="JW316", raw=b"<Retour n='1'/>"))
    retour_changed = store.save_received(
        new_message(1, message_type="JW316", raw=b"<Bericht changed='2'/>")
    )

    assert (changed.created, changed.identificatie_taken) == (False, True)
    assert changed.message.id == first.message.id
    assert other_sender.created and retour.created and retour_changed.created
    assert len({first.message.id, other_sender.message.id, retour_changed.message.id}) == 3


def test_message_without_bericht_id_is_idempotent_too(store: SqlStore) -> None:
    """Unparseable bytes resent by the same sender map to the same stored message."""
    first = store.save_received(new_message(1, bericht_id=None, raw=b"not xml"))
    again = store.save_received(new_message(2, bericht_id=None, raw=b"not xml"))

    assert (first.created, again.created) == (True, False)
    assert again.message.id == first.message.id


def test_concurrent_saves_of_one_message_create_it_once(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    """Racing submissions of one message (separate engines) all get the same single row."""
    stores = [store, make_store(), make_store(), make_store()]
    barrier = threading.Barrier(len(stores))

    def submit(s: SqlStore) -> tuple[str, bool]:
        barrier.wait()
        saved = s.save_received(new_message(7))
        return saved.message.id, saved.created

    with ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(submit, stores))

    assert len({msg_id for msg_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(store.query(MessageQuery())) == 1


def test_ids_sort_by_arrival_time(store: SqlStore) -> None:
    """Later arrivals get larger ids, also within one millisecond."""
    same_ms = [store.save_received(new_message(n, at=T0)).message.id for n in range(5)]
    later = store.save_received(new_message(9, at=T0 + dt.timedelta(milliseconds=1))).message.id

    assert same_ms == sorted(same_ms)
    assert len(set(same_ms)) == 5
    assert later > same_ms[-1]


def test_datetimes_come_back_as_aware_utc(store: SqlStore) -> None:
    """Times given in another zone are stored as the same instant and returned in UTC."""
    amsterdam = dt.timezone(dt.timedelta(hours=2))
    local = dt.datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=amsterdam)
    msg = store.save_received(new_message(1, at=local)).message

    stored = store.get(msg.id)
    assert stored is not None
    assert stored.received_at == local
    assert stored.received_at.utcoffset() == dt.timedelta(0)


# -- transitions ----------------------------------------------------------------------------


def test_apply_transition_writes_state_and_event_together(store: SqlStore) -> None:
    """A successful compare-and-set stores the moved message and appends its event."""
    msg = store.save_received(new_message(1)).message
    moved = move(store, msg, State.QUEUED, T0 + dt.timedelta(minutes=1), recipient="gemeente-0363")

    assert store.get(msg.id) == moved
    history = store.history(msg.id)
    assert [(e.from_state, e.to_state) for e in history] == [
        (None, State.RECEIVED),
        (State.RECEIVED, State.QUEUED),
    ]
    assert history[-1].reason == "to queued"


def test_stale_transition_raises_and_writes_nothing(store: SqlStore) -> None:
    """When another worker moved the message first, the loser changes nothing at all."""
    msg = store.save_received(new_message(1)).message
    winner = move(store, msg, State.QUEUED, T0, recipient="gemeente-0363")
    loser, loser_event = advance(msg, State.REJECTED, "schema invalid", "worker-2", T0)

    with pytest.raises(IllegalTransition):
        store.apply_transition(loser, loser_event, expected=State.RECEIVED)

    assert store.get(msg.id) == winner
    assert [e.to_state for e in store.history(msg.id)] == [State.RECEIVED, State.QUEUED]


def test_transition_of_unknown_message_raises(store: SqlStore) -> None:
    """Moving a message that does not exist is refused, and no orphan event is written."""
    msg = store.save_received(new_message(1)).message
    ghost, event = advance(dataclasses.replace(msg, id="0" * 26), State.REJECTED, "x", "t", T0)

    with pytest.raises(IllegalTransition):
        store.apply_transition(ghost, event, expected=State.RECEIVED)
    assert store.history("0" * 26) == []


def test_transition_with_a_mismatched_event_is_refused(store: SqlStore) -> None:
    """The event must describe the move being written."""
    msg = store.save_received(new_message(1)).message
    moved, event = advance(msg, State.REJECTED, "bad", "t", T0)

    with pytest.raises(ValueError, match="event"):
        store.apply_transition(
            moved, dataclasses.replace(event, to_state=State.QUEUED), expected=State.RECEIVED
        )
    assert store.get(msg.id) == msg


def test_history_lists_every_move_oldest_first(store: SqlStore) -> None:
    """A retried then delivered message shows its whole path in order."""
    msg = queued(store, 1)
    t = T0 + dt.timedelta(minutes=1)
    [claimed] = store.claim_due(t, t + dt.timedelta(minutes=5), 10)
    retry = move(store, claimed, State.QUEUED, t, next_attempt_at=t)
    [again] = store.claim_due(t, t + dt.timedelta(minutes=5), 10)
    done = move(store, again, State.DELIVERED, t)

    assert [e.to_state for e in store.history(msg.id)] == [
        State.RECEIVED,
        State.QUEUED,
        State.SENDING,
        State.QUEUED,
        State.SENDING,
        State.DELIVERED,
    ]
    assert retry.attempts == 1
    assert store.get(msg.id) == done
    assert done.attempts == 1 and done.lease_until is None


# -- claiming -------------------------------------------------------------------------------


def test_claim_due_takes_oldest_first_and_leases_them(store: SqlStore) -> None:
    """Claimed messages are the oldest due ones, now sending with the lease and an event."""
    ids = [queued(store, n).id for n in range(5)]
    now = T0 + dt.timedelta(hours=1)
    lease = now + dt.timedelta(minutes=5)

    first = store.claim_due(now, lease, 3)
    rest = store.claim_due(now, lease, 3)

    assert [m.id for m in first] == ids[:3]
    assert [m.id for m in rest] == ids[3:]
    assert store.claim_due(now, lease, 3) == []
    for claimed in first:
        assert claimed.state is State.SENDING and claimed.lease_until == lease
        assert store.get(claimed.id) == claimed
        last = store.history(claimed.id)[-1]
        assert (last.from_state, last.to_state, last.at) == (State.QUEUED, State.SENDING, now)


def test_claim_due_respects_next_attempt_at_and_skips_held(store: SqlStore) -> None:
    """Messages waiting for a retry time or held for their party are not claimed."""
    now = T0 + dt.timedelta(hours=1)
    retry_later = move(store, queued(store, 1), State.HELD, now)
    retry_later = move(
        store, retry_later, State.QUEUED, now, next_attempt_at=now + dt.timedelta(seconds=1)
    )
    retry_now = move(store, queued(store, 2), State.HELD, now)
    retry_now = move(store, retry_now, State.QUEUED, now, next_attempt_at=now)
    move(store, queued(store, 3), State.HELD, now)

    claimed = store.claim_due(now, now + dt.timedelta(minutes=5), 10)

    assert [m.id for m in claimed] == [retry_now.id]
    later = now + dt.timedelta(seconds=1)
    assert [m.id for m in store.claim_due(later, later + dt.timedelta(minutes=5), 10)] == [
        retry_later.id
    ]


def test_claim_due_can_be_limited_to_recipients(store: SqlStore) -> None:
    """A worker for some parties claims only their messages; one party never blocks another."""
    a = queued(store, 1, recipient="gemeente-a")
    b = queued(store, 2, recipient="gemeente-b")
    now = T0 + dt.timedelta(hours=1)
    lease = now + dt.timedelta(minutes=5)

    assert store.claim_due(now, lease, 10, recipients=[]) == []
    assert [m.id for m in store.claim_due(now, lease, 10, recipients=["gemeente-b"])] == [b.id]
    assert [m.id for m in store.claim_due(now, lease, 10, recipients=["gemeente-a", "x"])] == [a.id]


def test_expired_leases_are_found_and_can_be_requeued(store: SqlStore) -> None:
    """A sending message whose lease ran out is listed; requeueing it counts an attempt."""
    queued(store, 1)
    queued(store, 2)
    now = T0 + dt.timedelta(hours=1)
    short, long_ = (store.claim_due(now, now + dt.timedelta(minutes=m), 1)[0] for m in (1, 10))
    check = now + dt.timedelta(minutes=5)

    expired = store.expired_leases(check)
    assert [m.id for m in expired] == [short.id]
    back = move(store, expired[0], State.QUEUED, check, next_attempt_at=check)
    assert back.attempts == 1
    assert store.expired_leases(check) == []
    assert store.get(long_.id) == long_


def test_concurrent_claims_never_claim_a_message_twice(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    """Two workers with separate engines racing over 200 messages claim each exactly once."""
    total = 200
    for n in range(total):
        queued(store, n, recipient=f"party-{n % 3}")
    now = T0 + dt.timedelta(hours=1)
    lease = now + dt.timedelta(minutes=5)
    workers = [store, make_store()]
    barrier = threading.Barrier(len(workers))

    def drain(worker: SqlStore) -> list[str]:
        barrier.wait()
        mine: list[str] = []
        while batch := worker.claim_due(now, lease, 7):
            mine.extend(m.id for m in batch)
        return mine

    with ThreadPoolExecutor(len(workers)) as pool:
        claimed = list(pool.map(drain, workers))

    every = claimed[0] + claimed[1]
    assert len(every) == total
    assert len(set(every)) == total
    assert store.counts_by_party() == {
        (f"party-{p}", "sending"): len(range(p, total, 3)) for p in range(3)
    }
    one = every[0]
    assert [e.to_state for e in store.history(one)].count(State.SENDING) == 1


# -- listing and metrics --------------------------------------------------------------------


def test_query_filters_combine(store: SqlStore) -> None:
    """Each filter narrows the listing; party matches sender or recipient."""
    a = queued(store, 1, sender="aanbieder-a", recipient="gemeente-x", message_type="JW315")
    b = queued(store, 2, sender="aanbieder-b", recipient="gemeente-x", message_type="JW317")
    c = store.save_received(new_message(3, sender="gemeente-x", message_type="JW301")).message

    def ids(**filters: object) -> list[str]:
        return [m.id for m in store.query(MessageQuery(**filters))]  # type: ignore[arg-type]

    assert ids() == [a.id, b.id, c.id]
    assert ids(party="gemeente-x") == [a.id, b.id, c.id]
    assert ids(party="aanbieder-b") == [b.id]
    assert ids(sender="aanbieder-a") == [a.id]
    assert ids(recipient="gemeente-x") == [a.id, b.id]
    assert ids(state=State.RECEIVED) == [c.id]
    assert ids(message_type="JW317") == [b.id]
    assert ids(recipient="gemeente-x", message_type="JW315", state=State.QUEUED) == [a.id]
    assert ids(recipient="nobody") == []


def test_query_pages_through_everything_by_after_id(store: SqlStore) -> None:
    """Following after_id page by page lists each message once, in id order."""
    expected = [store.save_received(new_message(n)).message.id for n in range(11)]
    seen: list[str] = []
    cursor: str | None = None
    while page := store.query(MessageQuery(after_id=cursor, limit=4)):
        assert len(page) <= 4
        seen.extend(m.id for m in page)
        cursor = page[-1].id

    assert seen == expected


def test_counts_and_oldest_waiting_per_recipient(store: SqlStore) -> None:
    """Metrics see queue depth per (recipient, state) and each party's oldest waiting message."""
    queued(store, 1, recipient="gemeente-a")
    second = queued(store, 2, recipient="gemeente-a")
    held_b = queued(store, 3, recipient="gemeente-b")
    move(store, held_b, State.HELD, T0)
    move(store, second, State.DEAD, T0)
    store.save_received(new_message(4))

    assert store.counts_by_party() == {
        ("gemeente-a", "queued"): 1,
        ("gemeente-a", "dead"): 1,
        ("gemeente-b", "held"): 1,
    }
    assert store.oldest_waiting() == {
        "gemeente-a": T0 + dt.timedelta(seconds=1),
        "gemeente-b": T0 + dt.timedelta(seconds=3),
    }


def test_findings_round_trip_and_are_replaced(store: SqlStore) -> None:
    """Findings are kept per message as given; recording again replaces them."""
    msg = store.save_received(new_message(1)).message
    first: list[dict[str, object]] = [
        {"code": "XSD", "level": "error", "path": "/Bericht/Client", "line": 3},
        {"code": "TR018", "level": "warning", "detail": "Bsn ******006 ongeldig"},
    ]

    assert store.findings(msg.id) == []
    store.record_findings(msg.id, first)
    assert store.findings(msg.id) == first
    store.record_findings(msg.id, first[1:])
    assert store.findings(msg.id) == first[1:]


def test_audit_trail_keeps_operator_actions_in_order(store: SqlStore) -> None:
    """Every operator action is appended with who, what, on what and why."""
    store.record_audit(T0, "operator:jan", "hold", "aanbieder-a", "release freeze")
    store.record_audit(T0 + dt.timedelta(minutes=1), "operator:jan", "release", "aanbieder-a", None)
    store.record_audit(T0 + dt.timedelta(minutes=2), "cli", "retry", "01JQ", "fixed endpoint")

    trail = store.audit_trail()
    assert [(a["action"], a["target"], a["reason"]) for a in trail] == [
        ("hold", "aanbieder-a", "release freeze"),
        ("release", "aanbieder-a", None),
        ("retry", "01JQ", "fixed endpoint"),
    ]
    assert trail[0]["at"] == T0 and trail[0]["actor"] == "operator:jan"
    assert [a["action"] for a in store.audit_trail(target="aanbieder-a")] == ["hold", "release"]


def test_party_holds_persist_replace_and_release(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    """Holds survive a new store; holding again replaces the reason; releasing is idempotent."""
    assert store.party_holds() == {}
    store.set_party_hold("aanbieder-a", "release freeze", T0, "operator:jan")
    store.set_party_hold("aanbieder-b", "not connected", T0, "operator:jan")
    store.set_party_hold(
        "aanbieder-a", "freeze extended", T0 + dt.timedelta(days=1), "operator:piet"
    )

    assert make_store().party_holds() == {
        "aanbieder-a": "freeze extended",
        "aanbieder-b": "not connected",
    }
    store.set_party_hold("aanbieder-a", None, T0, "operator:jan")
    store.set_party_hold("aanbieder-a", None, T0, "operator:jan")
    assert store.party_holds() == {"aanbieder-b": "not connected"}


def test_purge_drops_payloads_of_finished_messages_only(store: SqlStore) -> None:
    """Retention removes old delivered bytes but keeps metadata, history and waiting bytes."""
    delivered = queued(store, 1)
    waiting = queued(store, 2)
    [sending] = store.claim_due(T0, T0 + dt.timedelta(minutes=5), 1)
    assert sending.id == delivered.id
    move(store, sending, State.DELIVERED, T0 + dt.timedelta(minutes=1))

    assert store.purge_payloads(T0) == 0
    assert store.purge_payloads(T0 + dt.timedelta(days=1)) == 1
    assert store.payload(delivered.id) is None
    assert store.payload(waiting.id) is not None
    assert store.get(delivered.id) is not None
    assert len(store.history(delivered.id)) == 4


def test_purge_keeps_the_bytes_of_an_original_still_waiting_for_its_retour(
    store: SqlStore,
) -> None:
    """An original delivered without a linked retour keeps its payload (a retour is built from
    it); once its retour is linked its bytes may go."""
    waiting = queued(store, 1)
    answered = queued(store, 2)
    for n, msg in ((1, waiting), (2, answered)):
        key = CorrelationKey("JW315", "65656055", f"B{n}")
        store.record_correlation(msg.id, Correlation(Side.ORIGINAL, key))
    reply = dataclasses.replace(new_message(3), in_reply_to=answered.id)
    retour = store.save_received(reply).message
    store.record_correlation(
        retour.id, Correlation(Side.RETOUR, CorrelationKey("JW315", "65656055", "B2"))
    )
    assert store.linked_message(answered.id) == retour.id
    for claimed in store.claim_due(T0, T0 + dt.timedelta(minutes=5), 2):
        move(store, claimed, State.DELIVERED, T0 + dt.timedelta(minutes=1))
    cutoff = T0 + dt.timedelta(days=1)

    dry = store.purge({State.DELIVERED: cutoff}, batch_size=10, dry_run=True)
    result = store.purge({State.DELIVERED: cutoff}, batch_size=10, dry_run=False)

    assert dry.payloads == result.payloads == {"delivered": 1}
    assert store.payload(waiting.id) is not None
    assert store.payload(answered.id) is None
    assert store.purge_payloads(cutoff) == 0
    assert store.payload(waiting.id) is not None


# -- schema and failures --------------------------------------------------------------------


def test_migrate_twice_keeps_data_and_version(store: SqlStore) -> None:
    """Migrating an up-to-date store is a no-op."""
    msg = store.save_received(new_message(1)).message
    version = store.schema_version()

    store.migrate()

    assert version >= 1
    assert store.schema_version() == version
    assert store.get(msg.id) == msg


def test_two_processes_migrating_at_once_both_succeed(make_store: Callable[[], SqlStore]) -> None:
    """Two daemons starting together on an empty database end with one schema."""
    stores = [make_store(), make_store()]
    assert stores[0].schema_version() == 0
    barrier = threading.Barrier(2)

    def start(s: SqlStore) -> int:
        barrier.wait()
        s.migrate()
        return s.schema_version()

    with ThreadPoolExecutor(2) as pool:
        versions = list(pool.map(start, stores))

    assert versions[0] == versions[1] >= 1
    assert stores[1].save_received(new_message(1)).created


def test_healthy_store_answers(store: SqlStore) -> None:
    """A working store reports itself healthy."""
    assert store.healthy()


def test_a_fetch_is_noted_in_the_history_without_a_move(store: SqlStore) -> None:
    """record_fetch adds a ``fetched`` entry in the message's current state; a fetch right
    after another by the same party is not noted again, one after a move is."""
    msg = queued(store, 1)
    assert store.record_fetch(msg.id, T0 + dt.timedelta(minutes=1), "party:gemeente-0363")
    assert not store.record_fetch(msg.id, T0 + dt.timedelta(minutes=2), "party:gemeente-0363")
    sending = move(
        store,
        msg,
        State.SENDING,
        T0 + dt.timedelta(minutes=3),
        lease_until=T0 + dt.timedelta(minutes=9),
    )
    assert store.record_fetch(sending.id, T0 + dt.timedelta(minutes=4), "party:gemeente-0363")
    assert not store.record_fetch("01UNKNOWN0000000000000000", T0, "party:gemeente-0363")

    history = store.history(msg.id)
    assert [(e.from_state, e.to_state, e.reason) for e in history] == [
        (None, State.RECEIVED, "received"),
        (State.RECEIVED, State.QUEUED, "to queued"),
        (State.QUEUED, State.QUEUED, "fetched"),
        (State.QUEUED, State.SENDING, "to sending"),
        (State.SENDING, State.SENDING, "fetched"),
    ]
    assert history[2].at == T0 + dt.timedelta(minutes=1)
    assert store.get(msg.id) == sending  # the note moved nothing
