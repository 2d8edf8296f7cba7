"""The day the mapping-decision wait ends: working days before the retour deadline."""

from __future__ import annotations

import datetime as dt

from gateway.core.deadlines import decision_answer_day, retour_due


def test_the_wait_ends_working_days_before_the_retour_deadline() -> None:
    received = dt.date(2026, 3, 5)  # a Thursday: the retour is due Tuesday 10 March
    due = retour_due("JW301", received)
    assert due == dt.date(2026, 3, 10)
    assert decision_answer_day(due, 1) == dt.date(2026, 3, 9)  # Monday
    assert decision_answer_day(due, 2) == dt.date(2026, 3, 6)  # over the weekend: Friday
    assert decision_answer_day(due, 0) == due
