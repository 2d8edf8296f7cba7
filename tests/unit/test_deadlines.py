"""The clocks of spec section 8: due dates in working days and their status on a given day."""

from __future__ import annotations

import datetime as dt

from gateway.core.deadlines import Clock, DeadlineStatus, Response, deadlines_for

D = dt.date


def _by_clock(message_type: str, received: dt.date, *responses: Response) -> dict[Clock, object]:
    return {d.clock: d for d in deadlines_for(message_type, received, responses)}


def test_retour_due_in_three_working_days_across_easter() -> None:
    """A JW301 received the Thursday before Easter 2025 is due Wednesday after Easter Monday."""
    (deadline,) = deadlines_for("JW301", D(2025, 4, 17))
    assert deadline.clock is Clock.RETOUR
    assert deadline.due == D(2025, 4, 23)
    assert deadline.status(D(2025, 4, 23)) is DeadlineStatus.OPEN
    assert deadline.status(D(2025, 4, 24)) is DeadlineStatus.OVERDUE


def test_retour_met_by_its_own_retour_type_only() -> None:
    """A JW302 stops the clock of a JW301; an unrelated JW306 does not."""
    (met,) = deadlines_for("JW301", D(2025, 4, 17), [Response("JW302", D(2025, 4, 22))])
    (unmet,) = deadlines_for("JW301", D(2025, 4, 17), [Response("JW306", D(2025, 4, 22))])
    assert met.status(D(2025, 6, 1)) is DeadlineStatus.MET
    assert not met.late
    assert unmet.status(D(2025, 6, 1)) is DeadlineStatus.OVERDUE


def test_request_answer_due_in_five_working_days_over_christmas() -> None:
    """A VOT received Monday 22 Dec 2025: retour by 29 Dec, answer by 31 Dec."""
    clocks = deadlines_for("JW315", D(2025, 12, 22))
    due = {d.clock: d.due for d in clocks}
    assert due == {Clock.RETOUR: D(2025, 12, 29), Clock.ANSWER: D(2025, 12, 31)}


def test_in_onderzoek_starts_eight_week_clock_met_by_allocation() -> None:
    """319(2) answers in time and starts an 8-week clock, which a later JW301 stops."""
    investigation = Response("JW319", D(2025, 12, 24), "2")
    allocation = Response("JW301", D(2026, 2, 1))
    clocks = {
        d.clock: d for d in deadlines_for("JW317", D(2025, 12, 22), [allocation, investigation])
    }
    assert clocks[Clock.ANSWER].answered == D(2025, 12, 24)
    final = clocks[Clock.FINAL_ANSWER]
    assert (final.started, final.due) == (D(2025, 12, 24), D(2026, 2, 18))
    assert final.answered == D(2026, 2, 1)
    assert final.status(D(2026, 3, 1)) is DeadlineStatus.MET


def test_final_answer_clock_overdue_without_final_answer() -> None:
    """After 'in onderzoek' another 'in onderzoek' is no final answer; a late rejection is late."""
    investigation = Response("JW319", D(2026, 1, 5), "2")
    clocks = {d.clock: d for d in deadlines_for("JW315", D(2026, 1, 2), [investigation])}
    assert clocks[Clock.FINAL_ANSWER].status(D(2026, 3, 3)) is DeadlineStatus.OVERDUE
    late = Response("JW319", D(2026, 3, 10), "1")
    clocks = {d.clock: d for d in deadlines_for("JW315", D(2026, 1, 2), [late, investigation])}
    assert clocks[Clock.FINAL_ANSWER].status(D(2026, 3, 11)) is DeadlineStatus.MET
    assert clocks[Clock.FINAL_ANSWER].late


def test_no_final_answer_clock_without_investigation() -> None:
    """A direct rejection settles the request; there is no 8-week clock."""
    clocks = deadlines_for("JW315", D(2026, 1, 2), [Response("JW319", D(2026, 1, 5), "1")])
    assert {d.clock for d in clocks} == {Clock.RETOUR, Clock.ANSWER}


def test_declaration_answer_due_in_ten_working_days_across_bevrijdingsdag() -> None:
    """A JW323 of Friday 25 April 2025 is due 12 May (5 May is a holiday); no retour clock."""
    clocks = deadlines_for("JW323", D(2025, 4, 25))
    assert [(d.clock, d.due) for d in clocks] == [(Clock.DECLARATION_ANSWER, D(2025, 5, 12))]


def test_answers_start_no_clocks_of_their_own_except_their_retour() -> None:
    """JW325 and retours start nothing; a JW319 waits only for its JW320."""
    assert deadlines_for("JW325", D(2025, 4, 25)) == ()
    assert deadlines_for("JW302", D(2025, 4, 25)) == ()
    assert [d.clock for d in deadlines_for("JW319", D(2025, 4, 25))] == [Clock.RETOUR]


def test_earliest_response_counts_whatever_the_order() -> None:
    """OP080: responses in any order; the earliest suitable one stops the clock."""
    responses = [Response("JW302", D(2025, 5, 9)), Response("JW302", D(2025, 5, 2))]
    (forward,) = deadlines_for("JW301", D(2025, 4, 30), responses)
    (backward,) = deadlines_for("JW301", D(2025, 4, 30), list(reversed(responses)))
    assert forward.answered == backward.answered == D(2025, 5, 2)
