"""Every original the BVO answers for gets exactly one retour, also without a mapping decision.

The mixed region of test_translation_daemon.py on a real service and SQLite store: provider-b
("old" codes) asks Diemen (0384, "new" codes, answered by the BVO) for 45A48, which maps
one-to-many, so the request is held for a decision. Nobody decides: once the decision wait is
over the housekeeping job answers the provider with a JW316 carrying S329, rejects the request
and tells the operator. Cancel, a second run, a restart and a crash between the retour and the
move never make a second retour or leave none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lxml import etree
from structlog.testing import capture_logs

from gateway.core.held_answers import ANSWERED_UNTRANSLATED
from gateway.core.model import State
from gateway.service.held_answers import AUDIT_ACTION
from gateway.service.operator import Operator, OperatorError
from gateway.service.retour_deadlines import retour_deadlines
from gateway.store.base import AuditQuery
from gateway.translator import NEEDS_MAPPING_DECISION, DecisionError, decide_mapping
from tests.integration import test_mapping_decision_pipeline as decisions
from tests.integration import test_translation_daemon as daemon
from tests.integration.conftest import START, Harness
from tests.unit.translation.builders import set_text, to_bytes

ACTOR = "operator:test"
_request = decisions._request
_retours_of = decisions._retours_of
_retourcodes = decisions._retourcodes


async def _region(tmp_path: Path, extra: str = "") -> AsyncIterator[Callable[[], object]]:
    async for factory in daemon.mixed_region(tmp_path, answered=True, extra=extra):
        yield factory


@pytest.fixture
async def make_region(tmp_path: Path) -> AsyncIterator[Callable[[], object]]:
    async for factory in _region(tmp_path):
        yield factory


async def _start(factory: Callable[[], object]) -> Harness:
    harness = await factory()  # type: ignore[operator]
    assert isinstance(harness, Harness)
    return harness


def _assert_answered_once(harness: Harness, message_id: str) -> None:
    msg = harness.store.get(message_id)
    assert msg is not None and msg.state is State.REJECTED
    assert (msg.reason or "").startswith(ANSWERED_UNTRANSLATED)
    (retour,) = _retours_of(harness, message_id)
    assert (retour.message_type, retour.recipient, retour.sender) == (
        "JW316",
        "provider-b",
        "diemen",
    )
    answer = harness.store.delivery_payload(retour.id)
    assert answer is not None and daemon._schema_valid(answer)
    assert _retourcodes(answer) == {
        "Header": {"0200"},
        "Client": {"0200"},
        "AangevraagdProduct": {"S329"},
    }
    assert harness.store.linked_message(message_id) == retour.id
    assert message_id not in {o.message.id for o in harness.store.open_originals()}


async def test_the_decision_wait_ends_with_one_s329_retour_and_tells_the_operator(
    make_region: Callable[[], object],
) -> None:
    harness = await _start(make_region)
    message_id = await decisions._held_request(harness, "REF-W1", "REQ000000101")
    # Received Friday 2026-05-01: the JW316 is due 3 working days later (5 May is a public
    # holiday in core/calendar.py), on Thursday 05-07; with the default wait (1 working day
    # before) the gateway answers on Wednesday 05-06.
    (deadline,) = retour_deadlines(harness.store, harness.clock.now())
    assert deadline.due == dt.date(2026, 5, 7)
    assert deadline.answer_by == dt.date(2026, 5, 6)

    harness.clock.set(dt.datetime(2026, 5, 5, 21, 59, tzinfo=dt.UTC))
    assert await harness.service.held_answers.run() == 0
    assert _retours_of(harness, message_id) == []

    harness.clock.set(dt.datetime(2026, 5, 5, 22, 1, tzinfo=dt.UTC))  # 00:01 Dutch time
    with capture_logs() as logs:
        assert await harness.service.held_answers.run() == 1
    _assert_answered_once(harness, message_id)
    (event,) = [e for e in logs if e["event"] == "held_original_answered"]
    assert event["message_id"] == message_id and event["retourcode"] == "S329"
    assert set(event) <= {
        "event",
        "log_level",
        "message_id",
        "message_type",
        "party",
        "sender",
        "retourcode",
        "products",
        "actor",
    }
    (audit,) = harness.store.audit_entries(AuditQuery(target=message_id))
    assert audit.action == AUDIT_ACTION and "S329" in (audit.reason or "")

    # Again, and after a restart on the same store: nothing more.
    assert await harness.service.held_answers.run() == 0
    again = await _start(make_region)
    assert await again.service.held_answers.run() == 0
    _assert_answered_once(again, message_id)


async def test_cancel_answers_a_held_original_instead_of_ending_it_dead(
    make_region: Callable[[], object],
) -> None:
    harness = await _start(make_region)
    message_id = await decisions._held_request(harness, "REF-C1", "REQ000000102")

    moved = await Operator(harness.service, ACTOR).cancel(message_id, "wrong product")

    assert moved.state is State.REJECTED and "wrong product" in (moved.reason or "")
    _assert_answered_once(harness, message_id)
    assert await harness.service.held_answers.run() == 0
    (audit,) = harness.store.audit_entries(AuditQuery(target=message_id))
    assert audit.actor == ACTOR


async def test_a_crash_after_the_retour_is_stored_never_makes_a_second_one(
    make_region: Callable[[], object],
) -> None:
    harness = await _start(make_region)
    message_id = await decisions._held_request(harness, "REF-X1", "REQ000000103")
    harness.clock.set(dt.datetime(2026, 5, 6, 8, tzinfo=dt.UTC))
    service = harness.service
    write = service.reprocessing.write

    async def crash_after_retour(*args: object, **kwargs: object) -> object:
        msg, record = args[0], args[1]
        await service.commits.save(record.retour)  # type: ignore[attr-defined]
        raise RuntimeError(f"crash before moving {msg.id}")  # type: ignore[attr-defined]

    service.reprocessing.write = crash_after_retour  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await service.held_answers.run()
    service.reprocessing.write = write  # type: ignore[method-assign]
    assert len(_retours_of(harness, message_id)) == 1
    # The next day, after a restart: the retour would differ (DagtekeningRetour); still one.
    harness.clock.set(dt.datetime(2026, 5, 7, 8, tzinfo=dt.UTC))
    again = await _start(make_region)
    assert await again.service.held_answers.run() == 1
    _assert_answered_once(again, message_id)


async def test_a_pair_answered_at_once_is_never_held(tmp_path: Path) -> None:
    extra = '[translation.pairs."old->new"]\npolicy = "answer"\n'
    async for factory in _region(tmp_path, extra):
        harness = await _start(factory)
        data = await harness.submit("provider-b", _request("REF-N1", "45A48", "REQ000000104"))
        _assert_answered_once(harness, str(data["id"]))
        assert harness.store.history(str(data["id"]))[-1].from_state is State.RECEIVED


async def test_a_closed_dbc_is_refused_at_once_not_held(
    make_region: Callable[[], object],
) -> None:
    """Translation.refused: a request continuing a DBC opened 2018-06-01 (closed before the
    demo transition, 2020-01-01) cannot be fixed by any decision: answered S329 at once."""
    harness = await _start(make_region)
    tree = etree.fromstring(_request("REF-D1", "54001", "REQ000000105")).getroottree()
    product = next(tree.getroot().iter("{*}AangevraagdProduct"))
    set_text(product, "ToewijzingIngangsdatum", "2018-06-01")
    set_text(product, "BeschikkingIngangsdatum", "2018-06-01")
    data = await harness.submit("provider-b", to_bytes(tree))
    message_id = str(data["id"])
    msg = harness.store.get(message_id)
    assert msg is not None and not (msg.reason or "").startswith(NEEDS_MAPPING_DECISION)
    assert "refused" in (msg.reason or "")
    _assert_answered_once(harness, message_id)


async def test_retention_never_drops_the_bytes_of_an_original_waiting_for_its_retour(
    make_region: Callable[[], object],
) -> None:
    harness = await _start(make_region)
    message_id = await decisions._held_request(harness, "REF-R1", "REQ000000106")
    # Rejected without its retour (as a crash between the two would leave it, or a path that
    # forgot the answer): retention must keep what the retour is built from.
    msg = harness.store.get(message_id)
    assert msg is not None
    await harness.service.move(
        dataclasses.replace(msg), State.REJECTED, "test: rejected unanswered", "test"
    )
    harness.clock.set(START + dt.timedelta(days=400))
    settings = harness.gateway.settings.retention.model_copy(update={"rejected_days": 1})
    await Operator(harness.service, ACTOR).purge(
        settings, dry_run=False, full_vacuum=False, reason="test"
    )
    assert harness.store.payload(message_id) is not None


# -- a model-based walk over the lifecycle --------------------------------------------------

_ACTIONS = ("decide", "cancel", "expire", "purge", "restart", "crash", "hold-diemen")


async def _walk_step(
    harness: Harness, factory: Callable[[], object], action: str, target: str
) -> Harness:
    service = harness.service
    operator = Operator(service, ACTOR)
    if action == "decide":
        with contextlib.suppress(DecisionError):
            await decide_mapping(service.decisions, target, "45/45P01", reason="walk", actor=ACTOR)
    elif action == "cancel":
        with contextlib.suppress(OperatorError):
            await operator.cancel(target, "walk")
    elif action == "expire":
        harness.clock.advance(dt.timedelta(hours=19))
        await service.held_answers.run()
    elif action == "purge":
        settings = harness.gateway.settings.retention.model_copy(
            update={"rejected_days": 1, "delivered_days": 1}
        )
        await operator.purge(settings, dry_run=False, full_vacuum=False, reason="walk")
    elif action == "restart":
        return await _start(factory)
    elif action == "crash":
        await _crash_after_retour(harness)
    elif action == "hold-diemen":
        if "diemen" in service.holds:
            await operator.release_party("diemen", "walk")
        else:
            await operator.hold_party("diemen", "walk")
    return harness


async def _crash_after_retour(harness: Harness) -> None:
    """A decision-wait run that dies after storing a retour, before the move."""
    service = harness.service
    write = service.reprocessing.write

    async def crash(*args: object, **kwargs: object) -> object:
        record = args[1]
        if record.retour is not None:  # type: ignore[attr-defined]
            await service.commits.save(record.retour)  # type: ignore[attr-defined]
        raise RuntimeError("crash before the move")

    service.reprocessing.write = crash
    try:
        harness.clock.advance(dt.timedelta(hours=19))
        with contextlib.suppress(RuntimeError):
            await service.held_answers.run()
    finally:
        service.reprocessing.write = write


def _check_retours(harness: Harness, originals: list[str], *, final: bool) -> None:
    for message_id in originals:
        msg = harness.store.get(message_id)
        assert msg is not None
        count = len(_retours_of(harness, message_id))
        waiting = msg.state is State.HELD and (msg.reason or "").startswith(NEEDS_MAPPING_DECISION)
        assert count <= 1, f"{message_id} has {count} retours"
        if final or not waiting:
            assert count == 1, f"{message_id} ({msg.state.value}: {msg.reason}) has no retour"


@pytest.mark.parametrize("seed", range(6))
async def test_every_original_ends_with_exactly_one_retour_whatever_happens(
    tmp_path: Path, seed: int
) -> None:
    """A seeded random walk of decide / cancel / decision-wait expiry / retention / restart /
    crash between retour and move / party hold over held requests: after every step no
    original has two retours and every original that no longer waits has one; once every
    decision wait is over, every original has exactly one."""
    rng = random.Random(seed)
    async for factory in _region(tmp_path):
        harness = await _start(factory)
        originals = [
            await decisions._held_request(harness, f"REF-M{i}", f"REQ00000{seed}{i:03d}")
            for i in range(5)
        ]
        for _ in range(14):
            action = rng.choice(_ACTIONS)
            harness = await _walk_step(harness, factory, action, rng.choice(originals))
            _check_retours(harness, originals, final=False)
        harness.clock.advance(dt.timedelta(days=14))
        await harness.service.held_answers.run()
        _check_retours(harness, originals, final=True)
