"""Intake processes before its first commit and stores the outcome in one transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.core.errors import StoreError
from gateway.core.model import State
from gateway.service.reprocessing import STUCK_AFTER, STUCK_SCAN_SECONDS
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example, variant


def _batches(harness: Harness) -> float:
    return harness.service.commits.counters()["gateway_write_batches_total"]


async def test_message_and_its_retour_are_one_transaction(harness: Harness) -> None:
    """JW305 for Amsterdam (answered by the BVO): message, move and retour in one commit."""
    before = _batches(harness)
    data = await harness.submit("provider-b", example("JW305"))
    assert _batches(harness) == before + 1
    history = harness.store.history(str(data["id"]))
    assert [(e.from_state, e.to_state) for e in history] == [
        (None, State.RECEIVED),
        (State.RECEIVED, State.QUEUED),
    ]
    (retour,) = harness.store.query(MessageQuery(recipient="provider-b"))
    assert retour.in_reply_to == data["id"]
    assert [e.to_state for e in harness.store.history(retour.id)] == [
        State.RECEIVED,
        State.QUEUED,
    ]


async def test_concurrent_distinct_submissions_are_each_stored_once(harness: Harness) -> None:
    """Twenty submissions at once: twenty messages, each received then queued, nothing shared."""
    bodies = [variant(example("JW301"), n) for n in range(20)]
    answers = await asyncio.gather(*(harness.submit("diemen", body) for body in bodies))
    ids = [str(a["id"]) for a in answers]
    assert len(set(ids)) == 20 and not any(a["duplicate"] for a in answers)
    for message_id, body in zip(ids, bodies, strict=True):
        assert harness.store.payload(message_id) == body
        assert [e.to_state for e in harness.store.history(message_id)] == [
            State.RECEIVED,
            State.QUEUED,
        ]
    assert _batches(harness) <= 20


async def test_the_same_message_sent_concurrently_is_stored_once(harness: Harness) -> None:
    """Ten copies at once (likely in one batch): one id, one message, one history."""
    answers = await asyncio.gather(*(harness.submit("diemen", example("JW301")) for _ in range(10)))
    assert len({a["id"] for a in answers}) == 1
    assert sorted(bool(a["duplicate"]) for a in answers) == [False] + [True] * 9
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 1
    assert len(harness.store.history(str(answers[0]["id"]))) == 2


async def test_a_processing_failure_stores_the_message_as_received(
    harness: Harness, monkeypatch: Any
) -> None:
    """Validation crashing: still 202 with the bytes kept as received; housekeeping queues it."""

    def crash(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("validator bug")

    monkeypatch.setattr("gateway.service.preparation.validate", crash)
    data = await harness.submit("diemen", example("JW301"))
    assert data["state"] == "received"
    monkeypatch.undo()
    assert harness.store.payload(str(data["id"])) == example("JW301")
    harness.clock.advance(seconds=120)
    assert await harness.service.reprocessing.process_stuck() == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.QUEUED


async def test_a_message_left_received_is_taken_up_within_the_minute(
    harness: Harness, monkeypatch: Any
) -> None:
    """Not while younger than STUCK_AFTER; at the first pass after it: under 60 s in all."""

    def crash(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("prepare worker died")

    monkeypatch.setattr("gateway.service.preparation.validate", crash)
    data = await harness.submit("diemen", example("JW301"))
    monkeypatch.undo()
    harness.clock.advance(seconds=STUCK_AFTER.total_seconds() - 1)
    assert await harness.service.reprocessing.process_stuck() == 0
    harness.clock.advance(seconds=1)
    assert await harness.service.reprocessing.process_stuck() == 1
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.QUEUED
    # A pass may run just before the message comes of age: the next one takes it.
    assert STUCK_AFTER.total_seconds() + STUCK_SCAN_SECONDS < 60


async def test_a_store_failure_mid_burst_answers_503_and_keeps_nothing(
    harness: Harness, monkeypatch: Any
) -> None:
    """Every batch failing: every submission of the burst gets 503, none 202, nothing stored."""

    def broken(*_args: object) -> object:
        raise StoreError("disk full while saving received messages")

    monkeypatch.setattr(harness.store, "write_batch", broken)
    responses = await asyncio.gather(
        *(harness.post("diemen", variant(example("JW301"), n)) for n in range(8))
    )
    assert [r.status for r in responses] == [503] * 8
    monkeypatch.undo()
    assert harness.store.query(MessageQuery()) == []


@pytest.mark.parametrize("state", [State.QUEUED, State.HELD])
async def test_operator_moves_go_through_the_group_commit(harness: Harness, state: State) -> None:
    """A hold and a release are recorded moves, written through the shared writer."""
    data = await harness.submit("diemen", example("JW301"))
    before = harness.service.commits.counters()["gateway_write_batch_moves_total"]
    await harness.service.steering.hold_party("provider-a", "operator:test")
    if state is State.QUEUED:
        await harness.service.steering.release_party("provider-a", "operator:test")
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is state
    moves = harness.service.commits.counters()["gateway_write_batch_moves_total"] - before
    assert moves == (1 if state is State.HELD else 2)
    assert harness.store.history(msg.id)[-1].to_state is state


async def test_housekeeping_answers_a_reprocessed_message_once(
    harness: Harness, monkeypatch: Any
) -> None:
    """A JW305 left as received is later queued with its JW306 retour, however often it runs."""

    def crash(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("validator bug")

    monkeypatch.setattr("gateway.service.preparation.validate", crash)
    data = await harness.submit("provider-b", example("JW305"))
    monkeypatch.undo()
    assert harness.store.query(MessageQuery(recipient="provider-b")) == []
    harness.clock.advance(seconds=120)
    assert await harness.service.reprocessing.process_stuck() == 1
    assert await harness.service.reprocessing.process_stuck() == 0
    original = harness.store.get(str(data["id"]))
    assert original is not None and original.state is State.QUEUED
    (retour,) = harness.store.query(MessageQuery(recipient="provider-b"))
    assert retour.in_reply_to == data["id"]
    assert retour.message_type == "JW306"
    assert retour.state is State.QUEUED
