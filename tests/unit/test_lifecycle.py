"""The lifecycle table and advance(): every allowed and forbidden move, and the bookkeeping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from gateway.core.errors import IllegalTransition
from gateway.core.lifecycle import ALLOWED_MOVES, TERMINAL_STATES, advance, can_move
from gateway.core.model import Message, State

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(minutes=10)
LEASE = NOW + dt.timedelta(minutes=5)

# Written out from the issue and the style guide, independently of ALLOWED_MOVES.
EXPECTED_MOVES = {
    ("received", "rejected"),
    ("received", "queued"),
    ("received", "held"),
    ("queued", "sending"),
    ("queued", "held"),
    ("queued", "dead"),
    ("held", "queued"),
    ("held", "dead"),
    ("sending", "delivered"),
    ("sending", "queued"),
    ("sending", "dead"),
    ("dead", "queued"),
}


def message(state: State, **fields: object) -> Message:
    """A routed message in ``state`` (with a lease when sending)."""
    base = Message(
        id="01JNM0000000000000000000AA",
        state=state,
        sender="aanbieder-a",
        recipient="gemeente-0363",
        message_type="JW315",
        bericht_id="B1",
        content_hash="abc",
        size=10,
        received_at=T0,
        updated_at=T0,
        lease_until=LEASE if state is State.SENDING else None,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def _changes_for(to: State) -> dict[str, object]:
    return {"lease_until": LEASE} if to is State.SENDING else {}


@pytest.mark.parametrize(("from_state", "to_state"), list(itertools.product(State, State)), ids=str)
def test_move_is_allowed_exactly_when_the_table_says_so(from_state: State, to_state: State) -> None:
    """Each of the 49 state pairs is allowed or refused as the issue specifies."""
    allowed = (from_state.value, to_state.value) in EXPECTED_MOVES
    assert can_move(from_state, to_state) is allowed
    msg = message(from_state)
    if allowed:
        moved, event = advance(msg, to_state, "because", "tester", NOW, **_changes_for(to_state))
        assert moved.state is to_state
        assert (event.from_state, event.to_state) == (from_state, to_state)
    else:
        with pytest.raises(IllegalTransition):
            advance(msg, to_state, "because", "tester", NOW, **_changes_for(to_state))


def test_terminal_states_are_rejected_and_delivered() -> None:
    """Only rejected and delivered messages can never move again."""
    assert {State.REJECTED, State.DELIVERED} == TERMINAL_STATES
    assert set(ALLOWED_MOVES) == set(State)


def test_advance_records_time_reason_and_actor() -> None:
    """The moved message and its event carry now, the reason and the actor."""
    msg = message(State.RECEIVED, recipient=None)
    moved, event = advance(msg, State.QUEUED, "routed", "pipeline", NOW, recipient="gemeente-1")

    assert (moved.updated_at, moved.reason, moved.recipient) == (NOW, "routed", "gemeente-1")
    assert (event.message_id, event.at, event.reason, event.actor) == (
        msg.id,
        NOW,
        "routed",
        "pipeline",
    )
    assert msg.state is State.RECEIVED, "advance does not mutate its input"


def test_failed_delivery_counts_an_attempt_and_sets_next_attempt() -> None:
    """sending → queued adds one attempt, takes the given retry time and ends the lease."""
    msg = message(State.SENDING, attempts=2)
    retry_at = NOW + dt.timedelta(minutes=3)
    moved, _ = advance(msg, State.QUEUED, "HTTP 503", "delivery", NOW, next_attempt_at=retry_at)

    assert (moved.attempts, moved.next_attempt_at, moved.lease_until) == (3, retry_at, None)


@pytest.mark.parametrize(("to_state", "attempts"), [(State.DELIVERED, 2), (State.DEAD, 3)])
def test_leaving_sending_ends_the_lease(to_state: State, attempts: int) -> None:
    """Delivered keeps the attempt count; dead counts the failed attempt."""
    moved, _ = advance(message(State.SENDING, attempts=2), to_state, "done", "delivery", NOW)
    assert (moved.attempts, moved.lease_until, moved.next_attempt_at) == (attempts, None, None)


def test_claim_needs_a_future_lease() -> None:
    """A message can only be sending under a lease that has not run out."""
    msg = message(State.QUEUED)
    with pytest.raises(IllegalTransition, match="lease"):
        advance(msg, State.SENDING, "claimed", "delivery", NOW)
    with pytest.raises(IllegalTransition, match="lease"):
        advance(msg, State.SENDING, "claimed", "delivery", NOW, lease_until=NOW)
    moved, _ = advance(msg, State.SENDING, "claimed", "delivery", NOW, lease_until=LEASE)
    assert moved.lease_until == LEASE


@pytest.mark.parametrize("to_state", [State.QUEUED, State.HELD])
def test_waiting_needs_a_recipient(to_state: State) -> None:
    """An unrouted message cannot be queued or held; it can be rejected."""
    msg = message(State.RECEIVED, recipient=None)
    with pytest.raises(IllegalTransition, match="recipient"):
        advance(msg, to_state, "routed", "pipeline", NOW)
    assert advance(msg, State.REJECTED, "unknown recipient", "pipeline", NOW)[0].recipient is None


def test_operator_retry_of_dead_message_starts_over() -> None:
    """dead → queued resets attempts and makes the message due at once."""
    msg = message(State.DEAD, attempts=12, next_attempt_at=NOW, reason="gave up")
    moved, event = advance(msg, State.QUEUED, "operator retry", "operator:jan", NOW)

    assert (moved.attempts, moved.next_attempt_at, moved.reason) == (0, None, "operator retry")
    assert event.actor == "operator:jan"


def test_cancel_goes_to_dead_with_reason() -> None:
    """An operator cancel of a waiting message is a move to dead, reason 'cancelled'."""
    for state in (State.QUEUED, State.HELD):
        moved, event = advance(message(state), State.DEAD, "cancelled", "operator:jan", NOW)
        assert (moved.state, moved.reason, event.reason) == (State.DEAD, "cancelled", "cancelled")


def test_fields_owned_by_the_lifecycle_cannot_be_changed() -> None:
    """Callers cannot rewrite identity, attempts or state through the changes."""
    for field in ("id", "attempts", "state", "sender", "content_hash", "updated_at"):
        with pytest.raises(TypeError, match=field):
            advance(message(State.QUEUED), State.HELD, "pause", "op", NOW, **{field: "x"})


def test_a_move_needs_a_reason() -> None:
    """Every event explains itself."""
    with pytest.raises(ValueError, match="reason"):
        advance(message(State.QUEUED), State.HELD, "  ", "op", NOW)
