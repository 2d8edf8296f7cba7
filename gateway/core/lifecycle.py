"""The message lifecycle: which state moves are allowed, and the one function that makes them.

Every state change in the gateway goes through :func:`advance`. It only computes the moved
message and its event; the store then writes both in one transaction with a compare-and-set on
the old state, so the table below is the single place that decides what may happen to a message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from gateway.core.errors import IllegalTransition
from gateway.core.model import Event, Message, State
from gateway.core.translation import NEEDS_MAPPING_DECISION

ALLOWED_MOVES: Mapping[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.REJECTED, State.QUEUED, State.HELD}),
    State.QUEUED: frozenset({State.SENDING, State.HELD, State.DEAD}),
    State.HELD: frozenset({State.QUEUED, State.DEAD}),
    State.SENDING: frozenset({State.DELIVERED, State.QUEUED, State.DEAD}),
    # Only an operator moves a dead message back; delivery never resurrects one by itself.
    State.DEAD: frozenset({State.QUEUED}),
    State.REJECTED: frozenset(),
    State.DELIVERED: frozenset(),
}
"""From-state → the states any message may move to from there (see also DECISION_MOVES)."""

TERMINAL_STATES: frozenset[State] = frozenset(s for s, to in ALLOWED_MOVES.items() if not to)
"""States a message never leaves (``rejected`` and ``delivered``)."""

WAITING_STATES: frozenset[State] = frozenset({State.QUEUED, State.HELD})
"""States in which a message waits for its recipient."""

DECISION_MOVES: frozenset[State] = frozenset({State.REJECTED, State.HELD})
"""Extra moves out of ``held`` for a message held with ``needs mapping decision`` only: it was
held before the cross-message and list rules ran, so once an operator decides they may reject
it, or its recipient may not be ready (it stays held, now waiting for the recipient)."""

CHANGEABLE_FIELDS: frozenset[str] = frozenset(
    {"recipient", "message_type", "next_attempt_at", "lease_until", "in_reply_to"}
)
"""Fields a caller may change together with a move; the rest is owned by :func:`advance`."""

FETCHED = "fetched"
"""The reason of the history entry a mailbox GET leaves: a note, not a move (its from and to
state are the message's state then)."""

ACKNOWLEDGED = "acknowledged"
"""The reason of the move to ``delivered`` when a mailbox party acknowledges a message."""

CANCELLED = "cancelled"
"""The reason to give when an operator cancels a waiting message (it goes to ``dead``)."""


def can_move(from_state: State, to_state: State) -> bool:
    """True when the lifecycle allows any message in ``from_state`` to move to ``to_state``.

    :func:`may_move` also knows the :data:`DECISION_MOVES` of one particular message.
    """
    return to_state in ALLOWED_MOVES[from_state]


def visible_to(msg: Message, party_id: str) -> bool:
    """True when party ``party_id`` may see ``msg``: its sender, or its recipient unless the
    message was rejected (a rejected message keeps the recipient its header names, for the
    operator's searches, but it never reached that party)."""
    if party_id == msg.sender:
        return True
    return party_id == msg.recipient and msg.state is not State.REJECTED


def waits_for_mapping_decision(msg: Message) -> bool:
    """True for a message held until an operator picks a product-code mapping target."""
    return msg.state is State.HELD and (msg.reason or "").startswith(NEEDS_MAPPING_DECISION)


def may_move(msg: Message, to_state: State) -> bool:
    """True when the lifecycle allows this message, in its state and for its reason, to move
    to ``to_state``."""
    if can_move(msg.state, to_state):
        return True
    return to_state in DECISION_MOVES and waits_for_mapping_decision(msg)


def advance(
    msg: Message,
    to: State,
    reason: str,
    actor: str,
    now: dt.datetime,
    **changes: object,
) -> tuple[Message, Event]:
    """Move ``msg`` to state ``to``: return the moved message and the event that records it.

    ``changes`` may set the fields in :data:`CHANGEABLE_FIELDS` at the same time (the
    recipient when routing queues a message, ``lease_until`` when claiming, ``next_attempt_at``
    when a failed delivery is retried). The move itself keeps the bookkeeping consistent:

    - ``updated_at`` becomes ``now`` and ``reason`` becomes ``reason``;
    - a move out of ``sending`` other than to ``delivered`` is a failed attempt, so ``attempts``
      goes up by one (except through :func:`return_unattempted`); the lease always ends when a
      message leaves ``sending``;
    - a move to ``sending`` needs a ``lease_until`` after ``now``; a move to ``queued``,
      ``held`` or ``sending`` needs a recipient;
    - an operator's ``dead`` → ``queued`` starts over: attempts 0 and due at once unless
      ``next_attempt_at`` is given.

    Raises ``IllegalTransition`` when the lifecycle does not allow the move or the result would
    be inconsistent, and ``TypeError`` for a change to a field the caller does not own.
    """
    return _advance(msg, to, reason, actor, now, changes=changes, attempted=True)


def return_unattempted(
    msg: Message, reason: str, actor: str, now: dt.datetime
) -> tuple[Message, Event]:
    """Hand a claimed (``sending``) message back to ``queued`` without having tried it.

    Unlike a failed attempt this leaves ``attempts`` and ``next_attempt_at`` as they were: a
    worker that stops before trying a message must not bring its backoff or dead-lettering
    any closer. Raises ``IllegalTransition`` for a message that is not ``sending``.
    """
    if msg.state is not State.SENDING:
        raise IllegalTransition(f"message {msg.id} is {msg.state}, not a claim to return")
    return _advance(msg, State.QUEUED, reason, actor, now, changes={}, attempted=False)


def _advance(
    msg: Message,
    to: State,
    reason: str,
    actor: str,
    now: dt.datetime,
    *,
    changes: Mapping[str, object],
    attempted: bool,
) -> tuple[Message, Event]:
    if not may_move(msg, to):
        only = " (only after a mapping decision)" if msg.state is State.HELD else ""
        raise IllegalTransition(f"message {msg.id} cannot move from {msg.state} to {to}{only}")
    unknown = set(changes) - CHANGEABLE_FIELDS
    if unknown:
        raise TypeError(f"advance() cannot change {', '.join(sorted(unknown))}")
    if not reason.strip():
        raise ValueError("a state move needs a reason")

    attempts = msg.attempts
    next_attempt_at = msg.next_attempt_at
    lease_until = msg.lease_until
    if msg.state is State.SENDING:
        lease_until = None
        if to is not State.DELIVERED and attempted:
            attempts += 1
    if msg.state is State.DEAD and to is State.QUEUED:
        attempts = 0
        next_attempt_at = None
    if to in TERMINAL_STATES:
        next_attempt_at = None

    moved = dataclasses.replace(
        msg,
        state=to,
        updated_at=now,
        reason=reason,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        lease_until=lease_until,
    )
    if changes:
        moved = dataclasses.replace(moved, **changes)  # type: ignore[arg-type]
    _check_consistent(moved, now)
    event = Event(
        message_id=msg.id, at=now, from_state=msg.state, to_state=to, reason=reason, actor=actor
    )
    return moved, event


def _check_consistent(moved: Message, now: dt.datetime) -> None:
    if moved.state in {State.QUEUED, State.HELD, State.SENDING} and not moved.recipient:
        raise IllegalTransition(f"message {moved.id} cannot be {moved.state} without a recipient")
    if moved.state is State.SENDING and (moved.lease_until is None or moved.lease_until <= now):
        raise IllegalTransition(f"message {moved.id} needs a lease in the future to be sending")
    if moved.state is not State.SENDING and moved.lease_until is not None:
        raise IllegalTransition(f"message {moved.id} can only hold a lease while sending")
