"""Retour deadlines of stored originals: which exchanges still wait for their retour, until when.

Every original the gateway passed on (JW301, 305, 307, 315, 317, 319) is owed its technical
retour within 3 working days, a JW323 its JW325 within 10 (spec section 8, computed by
:mod:`gateway.core.deadlines`). The clock starts on the Dutch day the gateway received the
original, also while the recipient is held (not ready, or on hold): the sender is waiting all
the same. The party that owes the retour is the original's recipient.

Read by ``gateway deadlines``, ``gateway status``, ``/metrics`` and the housekeeping job that
logs ``retour_overdue`` once per original (the store remembers it, so a restart is silent).

Request clocks (:func:`request_deadlines`): a JW315 product or JW317 request is owed its
functional answer, a JW319 or a JW301 carrying its ReferentieAanbieder, within 5 working days;
after a JW319 "in onderzoek" (VerzoekAntwoord 2) the final answer (a JW301, or a JW319
"afgewezen") within 8 weeks. They are fed from the dossier register (requests and answers that
were not rejected) and owed by the gemeente the request was addressed to; their overdue notice
``request_answer_overdue`` is logged once per request and clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.clock import Clock
from gateway.core.deadlines import (
    Clock as DeadlineClock,
)
from gateway.core.deadlines import (
    DeadlineStatus,
    Response,
    deadlines_for,
    dutch_day,
    retour_due,
)
from gateway.core.held_answers import DecisionPolicies
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.model import Message
from gateway.logs import get_logger
from gateway.store.base import RequestExchange, Store

log = get_logger("gateway.deadlines")


@dataclass(frozen=True, slots=True)
class RetourDeadline:
    """An original waiting for its retour: when it arrived, when the retour is due."""

    message: Message
    received: dt.date
    due: dt.date
    overdue: bool
    overdue_logged_at: dt.datetime | None = None
    answer_by: dt.date | None = None
    """For an original held for a mapping decision: the day the decision wait ends."""

    @property
    def owed_by(self) -> str | None:
        """The party that has to send the retour (the original's recipient)."""
        return self.message.recipient

    def as_json(self, today: dt.date) -> dict[str, Any]:
        """The JSON shape for ``gateway deadlines --json`` (metadata only, never content)."""
        msg = self.message
        return {
            "id": msg.id,
            "message_type": msg.message_type,
            "bericht_id": msg.bericht_id,
            "sender": msg.sender,
            "owed_by": self.owed_by,
            "state": msg.state.value,
            "received": self.received.isoformat(),
            "due": self.due.isoformat(),
            "overdue": self.overdue,
            "days_overdue": max((today - self.due).days, 0),
            "decision_answer_by": self.answer_by.isoformat() if self.answer_by else None,
        }


#: No retour is due sooner than this after its original arrived (3 working days, spec
#: section 8), so an original received later cannot be overdue yet.
EARLIEST_DUE = dt.timedelta(days=3)
#: Likewise no request is due for an answer sooner than 5 working days after it arrived.
EARLIEST_ANSWER_DUE = dt.timedelta(days=5)


def retour_deadlines(
    store: Store,
    now: dt.datetime,
    party: str | None = None,
    *,
    overdue_only: bool = False,
    policies: DecisionPolicies | None = None,
) -> list[RetourDeadline]:
    """The originals waiting for their retour (sent by or addressed to ``party``), oldest
    first, each with its due date and whether it is overdue on ``now``'s Dutch day.

    ``overdue_only`` (for /metrics, ``gateway status`` and the overdue notices) leaves out
    what cannot be overdue yet, without reading it: the waiting originals of the last days
    are most of them on a busy gateway. ``policies`` give an original held for a mapping
    decision the day its generation pair's decision wait ends (``answer_by``).
    """
    policies = policies or DecisionPolicies()
    today = dutch_day(now)
    found: list[RetourDeadline] = []
    before = now - EARLIEST_DUE if overdue_only else None
    for waiting in store.open_originals(party, before):
        msg = waiting.message
        received = dutch_day(msg.received_at)
        due = retour_due(msg.message_type or "", received)
        if due is None:
            continue
        if overdue_only and not today > due:
            continue
        answer_by = _answer_by(store, msg, received, policies)
        found.append(
            RetourDeadline(msg, received, due, today > due, waiting.overdue_logged_at, answer_by)
        )
    return found


def _answer_by(
    store: Store, msg: Message, received: dt.date, policies: DecisionPolicies
) -> dt.date | None:
    if not waits_for_mapping_decision(msg):
        return None
    stored = store.translation_of(msg.id)
    if stored is None:
        return None
    return policies.answer_day(
        msg.message_type or "", received, stored.from_generation, stored.to_generation
    )


#: The request clocks: the answer within 5 working days, the final answer within 8 weeks.
REQUEST_CLOCKS = (DeadlineClock.ANSWER, DeadlineClock.FINAL_ANSWER)


@dataclass(frozen=True, slots=True)
class RequestDeadline:
    """A request still waiting for its (final) answer: which clock, since when, until when."""

    exchange: RequestExchange
    clock: DeadlineClock
    started: dt.date
    due: dt.date
    overdue: bool
    overdue_logged_at: dt.datetime | None = None

    @property
    def message(self) -> Message:
        """The request message (JW315 or JW317)."""
        return self.exchange.message

    @property
    def owed_by(self) -> str | None:
        """The party that has to answer: the gemeente the request was addressed to."""
        return self.exchange.message.recipient

    @property
    def key(self) -> str:
        """What the once-only overdue notice is remembered by."""
        return f"{self.clock.value}:{self.message.id}:{self.exchange.referentie}"

    def as_json(self, today: dt.date) -> dict[str, Any]:
        """The JSON shape for ``gateway deadlines --json`` (metadata only, never content)."""
        msg = self.message
        return {
            "id": msg.id,
            "clock": self.clock.value,
            "message_type": msg.message_type,
            "bericht_id": msg.bericht_id,
            "referentie": self.exchange.referentie,
            "sender": msg.sender,
            "owed_by": self.owed_by,
            "state": msg.state.value,
            "started": self.started.isoformat(),
            "due": self.due.isoformat(),
            "overdue": self.overdue,
            "days_overdue": max((today - self.due).days, 0),
        }


def request_deadlines(
    store: Store, now: dt.datetime, party: str | None = None, *, overdue_only: bool = False
) -> list[RequestDeadline]:
    """The requests still waiting for an answer or a final answer (sent by or addressed to
    ``party``), oldest first, each with its running clock and whether it is overdue on
    ``now``'s Dutch day. A clock that was met (even late) is not listed. ``overdue_only``
    lists only overdue clocks and does not read the requests of the last days, which cannot
    be overdue yet (5 working days to answer; the 8 weeks start after that answer)."""
    today = dutch_day(now)
    found: list[RequestDeadline] = []
    # Requests sharing a reference share their answers' tuple; equal responses (same type,
    # day and answer) stop a clock alike, so each distinct one is kept once.
    responses_of: dict[int, tuple[Response, ...]] = {}
    before = now - EARLIEST_ANSWER_DUE if overdue_only else None
    for exchange in store.request_exchanges(party, before):
        msg = exchange.message
        responses = responses_of.get(id(exchange.answers))
        if responses is None:
            responses = tuple(
                dict.fromkeys(
                    Response(a.message_type, dutch_day(a.received_at), a.verzoek_antwoord)
                    for a in exchange.answers
                )
            )
            responses_of[id(exchange.answers)] = responses
        clocks = deadlines_for(msg.message_type or "", dutch_day(msg.received_at), responses)
        for deadline in clocks:
            if deadline.clock not in REQUEST_CLOCKS or deadline.answered is not None:
                continue
            overdue = deadline.status(today) is DeadlineStatus.OVERDUE
            if overdue_only and not overdue:
                continue
            found.append(
                RequestDeadline(exchange, deadline.clock, deadline.started, deadline.due, overdue)
            )
    logged = store.logged_notices([d.key for d in found])
    return [dataclasses.replace(d, overdue_logged_at=logged.get(d.key)) for d in found]


def overdue_by_party(deadlines: Sequence[RetourDeadline | RequestDeadline]) -> dict[str, int]:
    """Owing party → how many of its retours (or answers) are overdue."""
    counts = Counter(d.owed_by for d in deadlines if d.overdue and d.owed_by is not None)
    return {party: counts[party] for party in sorted(p for p in counts if p is not None)}


class OverdueNotices:
    """The housekeeping job: log ``retour_overdue`` once per original when it becomes overdue."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def run(self) -> int:
        """Log the originals (and requests) that became overdue since the last run; returns
        how many notices were logged."""
        now = self.clock.now()
        deadlines = await asyncio.to_thread(
            functools.partial(retour_deadlines, self.store, now, overdue_only=True)
        )
        due = {d.message.id: d for d in deadlines if d.overdue and d.overdue_logged_at is None}
        requests = await self._requests(now)
        if not due:
            return requests
        # Only what this call marked is logged: another process that got there first logs it.
        marked = await asyncio.to_thread(self.store.mark_overdue_logged, sorted(due), now)
        for message_id in marked:
            item = due[message_id]
            log.warning(
                "retour_overdue",
                message_id=message_id,
                message_type=item.message.message_type,
                party=item.owed_by,
                sender=item.message.sender,
                received=item.received.isoformat(),
                due=item.due.isoformat(),
            )
        return len(marked) + requests

    async def _requests(self, now: dt.datetime) -> int:
        """Log ``request_answer_overdue`` once per request and clock; returns how many."""
        deadlines = await asyncio.to_thread(
            functools.partial(request_deadlines, self.store, now, overdue_only=True)
        )
        due = {d.key: d for d in deadlines if d.overdue and d.overdue_logged_at is None}
        if not due:
            return 0
        marked = await asyncio.to_thread(self.store.mark_notices_logged, sorted(due), now)
        for key in marked:
            item = due[key]
            log.warning(
                "request_answer_overdue",
                message_id=item.message.id,
                message_type=item.message.message_type,
                clock=item.clock.value,
                referentie=item.exchange.referentie,
                party=item.owed_by,
                sender=item.message.sender,
                started=item.started.isoformat(),
                due=item.due.isoformat(),
            )
        return len(marked)
