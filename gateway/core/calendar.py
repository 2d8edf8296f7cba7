"""Dutch working days: weekends and national public holidays, computed for any year.

The holidays are the "algemeen erkende feestdagen" of the Algemene termijnenwet (art. 3):
Nieuwjaarsdag, Tweede Paasdag, Hemelvaartsdag, Tweede Pinksterdag, Eerste en Tweede Kerstdag,
the King's birthday (Koningsdag) and 5 May (Bevrijdingsdag, every year under that act, not only
in lustrum years). Eerste Paasdag and Eerste Pinksterdag are Sundays anyway. Goede Vrijdag is
*not* an algemeen erkende feestdag and so counts as a working day, as it does for the national
government and most CAOs. Saturdays count as non-working days, as the act prescribes for
deadlines.

Deadlines in iJw (spec section 8) are counted in these working days: "within 3 working days"
of a receipt on day D means due on :func:`add_working_days` (D, 3).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

_SATURDAY = 5
_SUNDAY = 6
#: From 2014 the King's birthday (27 April) replaced Queen's Day (30 April).
_FIRST_KONINGSDAG_YEAR = 2014


def easter_sunday(year: int) -> dt.date:
    """Eerste Paasdag of ``year`` by the anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_offset = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_offset) // 451
    month, day = divmod(h + weekday_offset - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def kings_day(year: int) -> dt.date:
    """The day the monarch's birthday is celebrated; moved to Saturday when it falls on a Sunday.

    27 April from 2014 (26 April when 27 is a Sunday); before that Koninginnedag on 30 April
    (29 April when 30 is a Sunday, the rule since 1980).
    """
    day = dt.date(year, 4, 27 if year >= _FIRST_KONINGSDAG_YEAR else 30)
    return day - dt.timedelta(days=1) if day.weekday() == _SUNDAY else day


@cache
def public_holidays(year: int) -> dict[dt.date, str]:
    """The algemeen erkende feestdagen of ``year``, date → Dutch name."""
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1): "Nieuwjaarsdag",
        easter: "Eerste Paasdag",
        easter + dt.timedelta(days=1): "Tweede Paasdag",
        kings_day(year): "Koningsdag",
        dt.date(year, 5, 5): "Bevrijdingsdag",
        easter + dt.timedelta(days=39): "Hemelvaartsdag",
        easter + dt.timedelta(days=49): "Eerste Pinksterdag",
        easter + dt.timedelta(days=50): "Tweede Pinksterdag",
        dt.date(year, 12, 25): "Eerste Kerstdag",
        dt.date(year, 12, 26): "Tweede Kerstdag",
    }


def is_public_holiday(day: dt.date) -> bool:
    """True on an algemeen erkende feestdag."""
    return day in public_holidays(day.year)


def is_working_day(day: dt.date) -> bool:
    """True on Monday to Friday when the day is not a public holiday."""
    return day.weekday() < _SATURDAY and not is_public_holiday(day)


def add_working_days(start: dt.date, n: int) -> dt.date:
    """The ``n``-th working day after ``start`` (before it when ``n`` is negative).

    ``start`` itself never counts, whether or not it is a working day; ``n == 0`` returns
    ``start`` unchanged.
    """
    step = dt.timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    day = start
    while remaining:
        day += step
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """The number of working days in (start, end]; negative when ``end`` is before ``start``.

    The inverse of :func:`add_working_days`: for any ``n`` and ``start``,
    ``working_days_between(start, add_working_days(start, n)) == n``.
    """
    if end < start:
        return -working_days_between(end, start)
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count
