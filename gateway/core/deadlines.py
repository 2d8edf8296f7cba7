"""The clocks of spec section 8 as data, and a pure function that evaluates them.

* every original message gets its retour within 3 working days (IV028, OP090);
* a JW315/JW317 request gets its functional answer (a JW301 or a JW319) within 5 working days;
* after a JW319 "in onderzoek" (VerzoekAntwoord 2) the final answer (a JW301, or a JW319
  "afgewezen") follows within 8 weeks (OP274, OP346). The 8 weeks run from the day the
  "in onderzoek" answer was sent; they are calendar weeks, not working days;
* a JW323 gets its JW325 within 10 working days (OP090x4); a JW323 has no separate retour.

All days are the days the messages were received (or sent) by the party whose clock runs. The
function is given every answer that exists and an ``as_of`` date; it never reads a clock itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from gateway.core.calendar import add_working_days

REJECTED = "1"
IN_ONDERZOEK = "2"

#: Original message type → its technical retour type.
RETOUR_OF: dict[str, str] = {
    "JW301": "JW302",
    "JW305": "JW306",
    "JW307": "JW308",
    "JW315": "JW316",
    "JW317": "JW318",
    "JW319": "JW320",
}
RETOUR_WORKING_DAYS = 3
ANSWER_WORKING_DAYS = 5
FINAL_ANSWER_WEEKS = 8
DECLARATION_ANSWER_WORKING_DAYS = 10
REQUEST_TYPES = frozenset({"JW315", "JW317"})
#: The days of iJw deadlines are Dutch days: a message received at 23:30 UTC in summer
#: arrived on the next day in the Netherlands.
DUTCH_TIME = ZoneInfo("Europe/Amsterdam")


class Clock(StrEnum):
    """Which obligation a deadline measures."""

    RETOUR = "retour"
    ANSWER = "answer"
    FINAL_ANSWER = "final_answer"
    DECLARATION_ANSWER = "declaration_answer"


class DeadlineStatus(StrEnum):
    """Where an obligation stands on a given day."""

    OPEN = "open"
    MET = "met"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class Response:
    """A message that may satisfy a clock: its type, the day it was sent and, for a JW319, its
    VerzoekAntwoord (1 rejected, 2 in onderzoek)."""

    message_type: str
    sent: dt.date
    verzoek_antwoord: str | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """One running or finished clock."""

    clock: Clock
    started: dt.date
    due: dt.date
    answered: dt.date | None = None

    def status(self, as_of: dt.date) -> DeadlineStatus:
        """MET once answered (even late: see :attr:`late`); OVERDUE after ``due`` unanswered."""
        if self.answered is not None:
            return DeadlineStatus.MET
        return DeadlineStatus.OVERDUE if as_of > self.due else DeadlineStatus.OPEN

    @property
    def late(self) -> bool:
        """True when the answer came after the due date."""
        return self.answered is not None and self.answered > self.due


def deadlines_for(
    message_type: str, received: dt.date, responses: Iterable[Response] = ()
) -> tuple[Deadline, ...]:
    """Every clock an original message starts, with the response that stopped each one.

    ``responses`` are the messages related to this original (its retour, the answers to a
    request); their order does not matter (OP080), the earliest suitable one counts.
    """
    ordered = sorted(responses, key=lambda r: r.sent)
    clocks: list[Deadline] = []
    retour_type = RETOUR_OF.get(message_type)
    if retour_type is not None:
        clocks.append(
            _clock(
                Clock.RETOUR,
                received,
                add_working_days(received, RETOUR_WORKING_DAYS),
                [r for r in ordered if r.message_type == retour_type],
            )
        )
    if message_type in REQUEST_TYPES:
        clocks.extend(_request_clocks(received, ordered))
    if message_type == "JW323":
        clocks.append(
            _clock(
                Clock.DECLARATION_ANSWER,
                received,
                add_working_days(received, DECLARATION_ANSWER_WORKING_DAYS),
                [r for r in ordered if r.message_type == "JW325"],
            )
        )
    return tuple(clocks)


def _request_clocks(received: dt.date, ordered: Sequence[Response]) -> list[Deadline]:
    answers = [r for r in ordered if r.message_type in ("JW301", "JW319")]
    clocks = [
        _clock(Clock.ANSWER, received, add_working_days(received, ANSWER_WORKING_DAYS), answers)
    ]
    investigation = next(
        (r for r in answers if r.message_type == "JW319" and r.verzoek_antwoord == IN_ONDERZOEK),
        None,
    )
    if investigation is not None:
        final = [
            r
            for r in answers
            if r.sent >= investigation.sent
            and (r.message_type == "JW301" or r.verzoek_antwoord == REJECTED)
        ]
        clocks.append(
            _clock(
                Clock.FINAL_ANSWER,
                investigation.sent,
                investigation.sent + dt.timedelta(weeks=FINAL_ANSWER_WEEKS),
                final,
            )
        )
    return clocks


def _clock(
    clock: Clock, started: dt.date, due: dt.date, candidates: Sequence[Response]
) -> Deadline:
    answered = candidates[0].sent if candidates else None
    return Deadline(clock=clock, started=started, due=due, answered=answered)


def dutch_day(at: dt.datetime) -> dt.date:
    """The Dutch calendar day of an aware moment (the day a deadline counts from)."""
    return at.astimezone(DUTCH_TIME).date()


def retour_due(message_type: str, received: dt.date) -> dt.date | None:
    """The last day for the retour of an original received on ``received``: 3 working days for
    a technical retour, 10 for the JW325 answering a JW323; None for a type that gets none."""
    if message_type in RETOUR_OF:
        return add_working_days(received, RETOUR_WORKING_DAYS)
    if message_type == "JW323":
        return add_working_days(received, DECLARATION_ANSWER_WORKING_DAYS)
    return None


def decision_answer_day(due: dt.date, wait_before_deadline: int) -> dt.date:
    """The day the policy stops waiting for a mapping decision on an original whose retour is
    due on ``due``: ``wait_before_deadline`` working days before it (on the deadline itself
    for 0), so the answer still goes out in time."""
    return add_working_days(due, -wait_before_deadline)
