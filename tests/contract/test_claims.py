"""Two delivery workers and one message: a late outcome never overwrites a newer claim.

Worker A claims a message, its lease runs out, lease recovery returns the message to the
queue and worker B claims it again. When A's outcome finally arrives, the row is ``sending``
again, so comparing the state alone would let A record over B's claim; comparing the claim
(the lease A was given) refuses it. Each worker has a store of its own (its own engine and
connections), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from gateway.core.errors import IllegalTransition
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.store.base import Move
from gateway.store.sql import SqlStore
from tests.contract.test_write_batch import LATER, _queued, _raw

LEASE = dt.timedelta(minutes=2)
CLAIMED_A = LATER + dt.timedelta(seconds=1)
EXPIRED = CLAIMED_A + LEASE + dt.timedelta(seconds=1)
CLAIMED_B = EXPIRED + dt.timedelta(seconds=1)
DONE = CLAIMED_B + dt.timedelta(seconds=5)


def _finish(msg: Message, to: State, at: dt.datetime) -> Move:
    """The move a worker holding ``msg`` (as it claimed it) makes when its attempt ends."""
    reason = "written to outbox" if to is State.DELIVERED else "transient failure: timeout"
    moved, event = advance(msg, to, reason, "delivery", at)
    return Move(moved, event, msg.state, msg.lease_until)


@pytest.fixture
def reclaimed(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> tuple[SqlStore, SqlStore, Message, Message]:
    """Worker stores A and B, and the message as each of them claimed it (A's lease expired)."""
    worker_a, worker_b = store, make_store()
    record = _queued(store, _raw(1))
    store.write_batch([record])
    (as_a,) = worker_a.claim_due(CLAIMED_A, CLAIMED_A + LEASE, 10)
    (expired,) = worker_b.expired_leases(EXPIRED)
    assert expired.lease_until == as_a.lease_until
    recovery = _finish(expired, State.QUEUED, EXPIRED)
    assert worker_b.write_batch([], [recovery]).moved == [True]
    (as_b,) = worker_b.claim_due(CLAIMED_B, CLAIMED_B + LEASE, 10)
    assert as_b.id == as_a.id and as_b.lease_until != as_a.lease_until
    return worker_a, worker_b, as_a, as_b


@pytest.mark.parametrize("outcome", [State.DELIVERED, State.QUEUED, State.DEAD])
def test_a_late_outcome_of_an_expired_claim_is_refused(
    reclaimed: tuple[SqlStore, SqlStore, Message, Message], outcome: State
) -> None:
    worker_a, worker_b, as_a, as_b = reclaimed
    assert worker_a.write_batch([], [_finish(as_a, outcome, DONE)]).moved == [False]
    current = worker_b.get(as_b.id)
    assert current is not None
    assert (current.state, current.lease_until, current.attempts) == (
        State.SENDING,
        as_b.lease_until,
        1,  # the recovered attempt only
    )
    # The owner of the claim records its outcome as usual.
    assert worker_b.write_batch([], [_finish(as_b, State.DELIVERED, DONE)]).moved == [True]
    history = worker_b.history(as_b.id)
    assert [e.to_state for e in history].count(State.DELIVERED) == 1
    assert history[-1].at == DONE


def test_apply_transition_compares_the_claim_too(
    reclaimed: tuple[SqlStore, SqlStore, Message, Message],
) -> None:
    worker_a, worker_b, as_a, as_b = reclaimed
    late = _finish(as_a, State.DELIVERED, DONE)
    with pytest.raises(IllegalTransition):
        worker_a.apply_transition(late.moved, late.event, late.expected, lease=late.lease)
    owner = _finish(as_b, State.DELIVERED, DONE)
    worker_b.apply_transition(owner.moved, owner.event, owner.expected, lease=owner.lease)
    current = worker_b.get(as_b.id)
    assert current is not None and current.state is State.DELIVERED


def test_two_recoveries_of_one_expired_lease_move_it_once(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    """Both workers see the expired lease; only the first recovery counts an attempt."""
    other = make_store()
    store.write_batch([_queued(store, _raw(2))])
    store.claim_due(CLAIMED_A, CLAIMED_A + LEASE, 10)
    (seen_by_a,) = store.expired_leases(EXPIRED)
    (seen_by_b,) = other.expired_leases(EXPIRED)
    assert store.write_batch([], [_finish(seen_by_a, State.QUEUED, EXPIRED)]).moved == [True]
    assert other.write_batch([], [_finish(seen_by_b, State.QUEUED, EXPIRED)]).moved == [False]
    current = store.get(seen_by_a.id)
    assert current is not None and (current.state, current.attempts) == (State.QUEUED, 1)
