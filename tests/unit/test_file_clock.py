"""The demo clock: the instant in a file, moved by writing the file, off unless named."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from gateway.clock import FileClock, SystemClock
from gateway.core.errors import ConfigError
from gateway.daemon.app import DEMO_CLOCK_VARIABLE, process_clock


def test_the_file_sets_the_time_and_a_new_instant_moves_it(tmp_path: Path) -> None:
    path = tmp_path / "now.txt"
    path.write_text("2018-01-05T09:00:00+01:00", encoding="utf-8")
    clock = FileClock(path)
    first = clock.now()
    assert (
        dt.timedelta(0)
        <= first - dt.datetime(2018, 1, 5, 8, 0, tzinfo=dt.UTC)
        < dt.timedelta(seconds=5)
    )
    path.write_text("2018-03-01T12:00:00+00:00", encoding="utf-8")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))  # a new stamp on coarse clocks
    assert clock.now().date() == dt.date(2018, 3, 1)


def test_an_instant_without_an_offset_or_a_missing_file_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naive = tmp_path / "naive.txt"
    naive.write_text("2018-01-05T09:00:00", encoding="utf-8")
    for path in (naive, tmp_path / "missing.txt"):
        monkeypatch.setenv(DEMO_CLOCK_VARIABLE, str(path))
        with pytest.raises(ConfigError, match=DEMO_CLOCK_VARIABLE):
            process_clock()


def test_the_wall_clock_unless_the_variable_names_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEMO_CLOCK_VARIABLE, raising=False)
    assert isinstance(process_clock(), SystemClock)
