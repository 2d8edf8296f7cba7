"""Time as a dependency: the daemon asks a clock, tests hand it a fake one they move by hand."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
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


class FileClock:
    """A test and demo clock: the instant written in a file, ticking on from when it was read.

    Whoever writes the file (ISO 8601 with a UTC offset) moves the daemon's time there at once;
    between writes the clock runs at wall-clock pace, so leases and intervals still pass. The
    file is re-read when its modification time changes (one ``stat`` per reading). Only the
    composition root builds one, from ``GATEWAY_DEMO_CLOCK_FILE`` (docs/configuration.md).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: int | None = None
        self._instant = dt.datetime.now(dt.UTC)
        self._read_at = time.monotonic()
        self.now()  # a missing or unreadable file fails at start-up, not on the first message

    def now(self) -> dt.datetime:
        stamp = self._path.stat().st_mtime_ns
        if stamp != self._stamp:
            instant = dt.datetime.fromisoformat(self._path.read_text(encoding="utf-8").strip())
            if instant.tzinfo is None:
                raise ValueError(f"{self._path}: the instant needs a UTC offset: {instant}")
            self._instant, self._stamp = instant.astimezone(dt.UTC), stamp
            self._read_at = time.monotonic()
        return self._instant + dt.timedelta(seconds=time.monotonic() - self._read_at)
