"""held → rejected / held: only for a message waiting for an operator's mapping decision."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.core.errors import IllegalTransition
from gateway.core.lifecycle import (
    DECISION_MOVES,
    advance,
    can_move,
    may_move,
    waits_for_mapping_decision,
)
from gateway.core.model import Message, State
from gateway.core.pipeline import MESSAGE_HOLD, OPERATOR_HOLD
from gateway.core.translation import NEEDS_MAPPING_DECISION

NOW = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
WAITING = f"{NEEDS_MAPPING_DECISION}: 45/45A48 one-to-many mapping"


def held(reason: str | None) -> Message:
    return Message(
        id="01JNM0000000000000000000AB",
        state=State.HELD,
        sender="provider-b",
        recipient="diemen",
        message_type="JW315",
        bericht_id="REQ1",
        content_hash="abc",
        size=10,
        received_at=NOW - dt.timedelta(hours=1),
        updated_at=NOW - dt.timedelta(hours=1),
        reason=reason,
    )


@pytest.mark.parametrize("to", sorted(DECISION_MOVES, key=str))
def test_a_message_waiting_for_a_mapping_decision_may_be_rejected_or_held_again(
    to: State,
) -> None:
    msg = held(WAITING)
    assert waits_for_mapping_decision(msg) and may_move(msg, to)
    moved, event = advance(msg, to, "mapping decided: TR056", "operator:x", NOW)
    assert (moved.state, moved.reason) == (to, "mapping decided: TR056")
    assert (event.from_state, event.to_state, event.actor) == (State.HELD, to, "operator:x")


@pytest.mark.parametrize(
    "reason", [None, OPERATOR_HOLD, f"{MESSAGE_HOLD}: checking", "not ready until 2026-06-01"]
)
@pytest.mark.parametrize("to", sorted(DECISION_MOVES, key=str))
def test_any_other_held_message_is_refused(reason: str | None, to: State) -> None:
    msg = held(reason)
    assert not waits_for_mapping_decision(msg) and not may_move(msg, to)
    with pytest.raises(IllegalTransition, match="only after a mapping decision"):
        advance(msg, to, "because", "operator:x", NOW)


def test_the_reason_must_start_with_the_prefix() -> None:
    msg = held(f"released: {NEEDS_MAPPING_DECISION}")
    assert not may_move(msg, State.REJECTED)


def test_the_state_table_itself_is_unchanged() -> None:
    # The extra moves belong to one message's reason, never to every held message.
    assert not can_move(State.HELD, State.REJECTED) and not can_move(State.HELD, State.HELD)
    assert may_move(held(WAITING), State.QUEUED) and may_move(held(None), State.QUEUED)


def test_only_a_held_message_counts_as_waiting() -> None:
    for state in State:
        msg = dataclasses.replace(held(WAITING), state=state)
        assert waits_for_mapping_decision(msg) is (state is State.HELD)
        assert may_move(msg, State.REJECTED) is (state in (State.HELD, State.RECEIVED))
