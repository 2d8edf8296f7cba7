"""Request clocks fed from the store, on every backend: requests with their answers from the
dossier register, the 5-working-day and 8-week clocks across King's Day and a weekend, and the
once-only overdue notice."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from structlog.testing import capture_logs

from gateway.core.deadlines import DUTCH_TIME, Clock
from gateway.core.dossier import Allocation, Answer, Entry, RegisterUpdate, Request, Verdict
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.service.retour_deadlines import OverdueNotices, overdue_by_party, request_deadlines
from gateway.store.base import IntakeRecord
from gateway.store.sql import SqlStore

GEMEENTE, AANBIEDER, BSN = "0384", "65656055", "999900006"
# Thursday 23 April 2026; King's Day is Monday 27 April, so 5 working days end Friday 1 May.
THURSDAY = dt.datetime(2026, 4, 23, 10, 0, tzinfo=DUTCH_TIME)
ANSWER_DUE = dt.date(2026, 5, 1)
_numbers = iter(range(1, 10_000))


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=DUTCH_TIME)


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.current = now

    def now(self) -> dt.datetime:
        return self.current


def _store_message(
    store: SqlStore, message_type: str, sender: str, recipient: str, at: dt.datetime
) -> Message:
    raw = f"<{message_type} n='{next(_numbers)}'/>".encode()
    received = Message(
        id=store.new_message_id(at),
        state=State.RECEIVED,
        sender=sender,
        recipient=None,
        message_type=message_type,
        bericht_id=f"B{next(_numbers)}",
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=at,
        updated_at=at,
    )
    moved, event = advance(received, State.QUEUED, "routed", "pipeline", at, recipient=recipient)
    store.write_batch([IntakeRecord(moved, raw, f"party:{sender}", (event,))])
    return moved


def request(
    store: SqlStore,
    referentie: str = "REF1",
    at: dt.datetime = THURSDAY,
    verdict: Verdict = Verdict.PENDING,
    message_type: str = "JW315",
) -> Message:
    """A JW315 from provider-a to diemen asking for ``referentie``."""
    msg = _store_message(store, message_type, "provider-a", "diemen", at)
    entry = Request(message_type, AANBIEDER, GEMEENTE, BSN, referentie, at.date())
    store.record_register(msg.id, RegisterUpdate((entry,), verdict))
    return msg


def antwoord(
    store: SqlStore, verzoek_antwoord: str, at: dt.datetime, referentie: str = "REF1"
) -> Message:
    """A JW319 from diemen answering ``referentie``."""
    msg = _store_message(store, "JW319", "diemen", "provider-a", at)
    entry = Answer(GEMEENTE, AANBIEDER, referentie, verzoek_antwoord, at.date())
    store.record_register(msg.id, RegisterUpdate((entry,), Verdict.PENDING))
    return msg


def toewijzing(store: SqlStore, at: dt.datetime, referentie: str | None = "REF1") -> Message:
    """A JW301 from diemen with two products honouring ``referentie``."""
    msg = _store_message(store, "JW301", "diemen", "provider-a", at)
    entries: tuple[Entry, ...] = tuple(
        Allocation(
            gemeente=GEMEENTE,
            aanbieder=AANBIEDER,
            bsn=BSN,
            toewijzing_nummer=number,
            toewijzingsdatum=at.date(),
            toewijzingstijd=dt.time(9),
            ingangsdatum=at.date(),
            referentie_aanbieder=referentie,
        )
        for number in (1001, 1002)
    )
    store.record_register(msg.id, RegisterUpdate(entries, Verdict.PENDING))
    return msg


def test_a_request_without_answers(store: SqlStore) -> None:
    """The exchange names the request message, its reference and both parties."""
    sent = request(store)
    (exchange,) = store.request_exchanges()
    assert (exchange.message.id, exchange.referentie, exchange.answers) == (sent.id, "REF1", ())
    assert (exchange.gemeente, exchange.aanbieder) == (GEMEENTE, AANBIEDER)


def test_answers_are_linked_by_reference(store: SqlStore) -> None:
    """A JW319 and a JW301 carrying the reference count (the JW301 once); others do not."""
    request(store)
    request(store, "REF2")
    investigating = antwoord(store, "2", _at(dt.date(2026, 4, 28)))
    honoured = toewijzing(store, _at(dt.date(2026, 5, 4)))
    toewijzing(store, _at(dt.date(2026, 5, 4)), referentie=None)
    first, second = store.request_exchanges()
    assert [(a.message_id, a.message_type, a.verzoek_antwoord) for a in first.answers] == [
        (investigating.id, "JW319", "2"),
        (honoured.id, "JW301", None),
    ]
    assert second.answers == ()


def test_rejected_requests_and_answers_do_not_count(store: SqlStore) -> None:
    """OP286: a rejected request waits for nothing; a rejected answer answers nothing."""
    request(store, "GONE", verdict=Verdict.REJECTED)
    request(store)
    rejected = _store_message(store, "JW319", "diemen", "provider-a", _at(dt.date(2026, 4, 24)))
    entry = Answer(GEMEENTE, AANBIEDER, "REF1", "1", dt.date(2026, 4, 24))
    store.record_register(rejected.id, RegisterUpdate((entry,), Verdict.REJECTED))
    (exchange,) = store.request_exchanges()
    assert (exchange.referentie, exchange.answers) == ("REF1", ())


def test_party_filter(store: SqlStore) -> None:
    """Requests sent by or addressed to the party only."""
    request(store)
    assert len(store.request_exchanges("diemen")) == 1
    assert len(store.request_exchanges("provider-a")) == 1
    assert store.request_exchanges("provider-b") == []


def test_answer_clock_across_kings_day_and_the_weekend(store: SqlStore) -> None:
    """Received Thursday 23 April: due Friday 1 May, overdue from Saturday 2 May."""
    sent = request(store)
    (open_,) = request_deadlines(store, _at(ANSWER_DUE))
    assert (open_.message.id, open_.clock, open_.due, open_.overdue) == (
        sent.id,
        Clock.ANSWER,
        ANSWER_DUE,
        False,
    )
    assert open_.owed_by == "diemen"
    (late,) = request_deadlines(store, _at(dt.date(2026, 5, 2)))
    assert late.overdue
    assert late.as_json(dt.date(2026, 5, 4))["days_overdue"] == 3
    assert overdue_by_party([late]) == {"diemen": 1}
    # Overdue only: nothing on the due day, the late one after it; requests of the last five
    # days are not even read.
    assert request_deadlines(store, _at(ANSWER_DUE), overdue_only=True) == []
    assert request_deadlines(store, _at(dt.date(2026, 5, 2)), overdue_only=True) == [late]
    assert store.request_exchanges(received_before=THURSDAY - dt.timedelta(seconds=1)) == []


def test_a_jw301_honouring_the_request_ends_the_clock(store: SqlStore) -> None:
    """Once allocated, nothing waits (even when the allocation came late)."""
    request(store)
    toewijzing(store, _at(dt.date(2026, 5, 6)))
    assert request_deadlines(store, _at(dt.date(2026, 5, 20))) == []


def test_in_onderzoek_starts_the_8_week_clock(store: SqlStore) -> None:
    """A JW319 "in onderzoek" on 28 April meets the answer clock and starts 8 weeks."""
    request(store, message_type="JW317")
    antwoord(store, "2", _at(dt.date(2026, 4, 28)))
    (waiting,) = request_deadlines(store, _at(dt.date(2026, 6, 23)))
    assert (waiting.clock, waiting.started, waiting.due, waiting.overdue) == (
        Clock.FINAL_ANSWER,
        dt.date(2026, 4, 28),
        dt.date(2026, 6, 23),
        False,
    )
    assert request_deadlines(store, _at(dt.date(2026, 6, 24)))[0].overdue
    antwoord(store, "1", _at(dt.date(2026, 6, 30)))
    assert request_deadlines(store, _at(dt.date(2026, 7, 1))) == []


def test_notice_keys_are_marked_once(store: SqlStore) -> None:
    """The first mark wins; later marks (a restart, a second process) return nothing."""
    at = _at(dt.date(2026, 5, 2))
    assert store.mark_notices_logged(["answer:x:R", "answer:y:R"], at) == [
        "answer:x:R",
        "answer:y:R",
    ]
    assert store.mark_notices_logged(["answer:x:R", "answer:z:R"], at) == ["answer:z:R"]
    logged = store.logged_notices(["answer:x:R", "answer:q:R"])
    assert list(logged) == ["answer:x:R"]
    assert logged["answer:x:R"] == at


def test_overdue_request_is_logged_once(store: SqlStore) -> None:
    """request_answer_overdue appears when the clock passes, once, also after a restart."""
    request(store)
    clock = _Clock(_at(ANSWER_DUE))
    with capture_logs() as before:
        assert asyncio.run(OverdueNotices(store, clock).run()) == 0  # type: ignore[arg-type]
    clock.current = _at(dt.date(2026, 5, 4))
    with capture_logs() as logs:
        assert asyncio.run(OverdueNotices(store, clock).run()) == 1  # type: ignore[arg-type]
        assert asyncio.run(OverdueNotices(store, clock).run()) == 0  # type: ignore[arg-type]
    events = [e for e in before + logs if e["event"] == "request_answer_overdue"]
    assert len(events) == 1
    assert (events[0]["party"], events[0]["clock"], events[0]["due"]) == (
        "diemen",
        "answer",
        ANSWER_DUE.isoformat(),
    )
    assert BSN not in repr(events)
    (item,) = request_deadlines(store, clock.now())
    assert item.overdue_logged_at is not None


def test_requests_sharing_a_reference_share_their_answers(store: SqlStore) -> None:
    """Many requests reusing one reference (a sender that never varies it) with many answers
    cost requests + answers, not requests x answers: one answers tuple serves them all, and
    the clocks still see each answer."""
    for _ in range(3):
        request(store)
    for day in (28, 29, 30):
        antwoord(store, "2", _at(dt.date(2026, 4, day)))
    exchanges = store.request_exchanges()
    assert len(exchanges) == 3 and len(exchanges[0].answers) == 3
    assert all(e.answers is exchanges[0].answers for e in exchanges)
    deadlines = request_deadlines(store, _at(dt.date(2026, 5, 4)))
    # Answered "in onderzoek" on the 28th: each request's 8-week clock runs from then.
    assert [(d.clock, d.started) for d in deadlines] == [
        (Clock.FINAL_ANSWER, dt.date(2026, 4, 28))
    ] * 3
