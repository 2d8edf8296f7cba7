"""Dutch working days: holidays computed per year, checked against independently known dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.calendar import (
    add_working_days,
    easter_sunday,
    is_working_day,
    kings_day,
    public_holidays,
    working_days_between,
)

D = dt.date
days = st.dates(min_value=D(1990, 1, 1), max_value=D(2100, 12, 31))


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, D(2000, 4, 23)),
        (2008, D(2008, 3, 23)),
        (2019, D(2019, 4, 21)),
        (2024, D(2024, 3, 31)),
        (2025, D(2025, 4, 20)),
        (2026, D(2026, 4, 5)),
        (2038, D(2038, 4, 25)),
        (2285, D(2285, 3, 22)),
    ],
)
def test_easter_matches_published_dates(year: int, easter: dt.date) -> None:
    """Easter Sunday agrees with published dates, including the earliest and latest possible."""
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(
    ("year", "day"),
    [
        (2014, D(2014, 4, 26)),
        (2024, D(2024, 4, 27)),
        (2025, D(2025, 4, 26)),
        (2013, D(2013, 4, 30)),
    ],
)
def test_kings_day_moves_to_saturday_when_27_april_is_a_sunday(year: int, day: dt.date) -> None:
    """Koningsdag is 27 April, 26 April when the 27th is a Sunday; Koninginnedag before 2014."""
    assert kings_day(year) == day


def test_holidays_of_2025_are_the_algemene_termijnenwet_days() -> None:
    """2025: the movable feasts fall on their known dates and Good Friday is not a holiday."""
    holidays = public_holidays(2025)
    assert holidays[D(2025, 4, 21)] == "Tweede Paasdag"
    assert holidays[D(2025, 5, 29)] == "Hemelvaartsdag"
    assert holidays[D(2025, 6, 9)] == "Tweede Pinksterdag"
    assert holidays[D(2025, 5, 5)] == "Bevrijdingsdag"
    assert D(2025, 4, 18) not in holidays  # Goede Vrijdag
    assert is_working_day(D(2025, 4, 18))


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (D(2025, 4, 17), 1, D(2025, 4, 18)),  # Thursday → Good Friday is a working day
        (D(2025, 4, 17), 2, D(2025, 4, 22)),  # weekend + Tweede Paasdag
        (D(2024, 3, 28), 1, D(2024, 3, 29)),
        (D(2024, 3, 29), 1, D(2024, 4, 2)),  # Easter 2024: Monday 1 April is off
        (D(2023, 4, 26), 1, D(2023, 4, 28)),  # Koningsdag on a Thursday
        (D(2025, 4, 25), 1, D(2025, 4, 28)),  # Koningsdag 2025 on Saturday 26 April: no effect
        (D(2025, 5, 2), 1, D(2025, 5, 6)),  # Bevrijdingsdag on a Monday
        (D(2025, 5, 28), 1, D(2025, 5, 30)),  # Hemelvaartsdag
        (D(2025, 6, 6), 1, D(2025, 6, 10)),  # Pinksteren
        (D(2024, 12, 24), 1, D(2024, 12, 27)),  # both Christmas days
        (D(2024, 12, 24), 4, D(2025, 1, 2)),  # across the year end and Nieuwjaarsdag
        (D(2025, 12, 31), 1, D(2026, 1, 2)),
        (D(2026, 1, 3), 0, D(2026, 1, 3)),
    ],
)
def test_add_working_days_skips_weekends_and_holidays(start: dt.date, n: int, due: dt.date) -> None:
    """Counting working days across Easter, King's Day, Ascension, Christmas and year end."""
    assert add_working_days(start, n) == due


def test_add_working_days_backwards() -> None:
    """A negative count goes back over the same holidays."""
    assert add_working_days(D(2025, 1, 2), -2) == D(2024, 12, 30)


def test_working_days_between_counts_half_open_interval() -> None:
    """(start, end]: Christmas week 2024 has three working days after the 24th up to the 31st."""
    assert working_days_between(D(2024, 12, 24), D(2024, 12, 31)) == 3
    assert working_days_between(D(2024, 12, 31), D(2024, 12, 24)) == -3
    assert working_days_between(D(2024, 12, 24), D(2024, 12, 24)) == 0


@given(st.integers(min_value=1990, max_value=2300))
def test_easter_is_a_sunday_in_its_window(year: int) -> None:
    """Easter always falls on a Sunday between 22 March and 25 April."""
    easter = easter_sunday(year)
    assert easter.weekday() == 6
    assert D(year, 3, 22) <= easter <= D(year, 4, 25)


@given(st.integers(min_value=1990, max_value=2300))
def test_every_year_has_ten_holidays_unless_ascension_is_on_5_may(year: int) -> None:
    """Ten days in the year; only Hemelvaartsdag on 5 May (as in 2005) makes them nine."""
    holidays = public_holidays(year)
    ascension_on_5_may = easter_sunday(year) + dt.timedelta(days=39) == D(year, 5, 5)
    assert len(holidays) == (9 if ascension_on_5_may else 10)
    assert all(day.year == year for day in holidays)


def test_ascension_on_liberation_day_2005_is_one_day_off() -> None:
    """5 May 2005 was both Hemelvaartsdag and Bevrijdingsdag: still just one day off."""
    assert not is_working_day(D(2005, 5, 5))
    assert add_working_days(D(2005, 5, 4), 1) == D(2005, 5, 6)


@given(days, st.integers(min_value=0, max_value=60))
def test_working_days_between_inverts_add(start: dt.date, n: int) -> None:
    """Adding n working days and counting them back gives n."""
    assert working_days_between(start, add_working_days(start, n)) == n


@given(days, st.integers(min_value=1, max_value=60))
def test_added_days_land_on_a_working_day_after_start(start: dt.date, n: int) -> None:
    """The due day is a working day, later than the start, and at least n calendar days on."""
    due = add_working_days(start, n)
    assert is_working_day(due)
    assert (due - start).days >= n


@given(days, st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=30))
def test_adding_is_additive(start: dt.date, a: int, b: int) -> None:
    """Adding a then b working days equals adding a + b."""
    assert add_working_days(add_working_days(start, a), b) == add_working_days(start, a + b)
