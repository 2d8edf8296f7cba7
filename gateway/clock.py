"""Time as a dependency: the daemon asks a clock, tests hand it a fake one they move by hand."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Something that says what time it is (always timezone-aware UTC)."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """Always the same moment: a prepare worker answers as of its parent's moment."""

    def __init__(self, moment: dt.datetime) -> None:
        self._moment = moment

    def now(self) -> dt.datetime:
        return self._moment


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        """Move forward by ``delta`` (or ``seconds=``, ``days=``, ...) and return the new time."""
        self._now += delta if delta is not None else dt.timedelta(**kwargs)
        return self._now

    def set(self, moment: dt.datetime) -> None:
        """Jump to a moment (forwards or backwards)."""
        self._now = moment
