"""Terminal niceties shared by commands: colours only on a terminal, a quiet progress bar."""

from __future__ import annotations

import os
from typing import TextIO

_COLOURS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}


def style(text: str, colour: str, enabled: bool) -> str:
    """Wrap text in an ANSI colour when writing to a terminal (and NO_COLOR is not set)."""
    if not enabled or os.environ.get("NO_COLOR"):
        return text
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and for longer runs."""

    def __init__(
        self, total: int, stream: TextIO, *, enabled: bool = True, minimum: int = 50
    ) -> None:
        self._total = total
        self._stream = stream
        self._done = 0
        self._enabled = enabled and total >= minimum and stream.isatty()

    def step(self, count: int = 1) -> None:
        """Count ``count`` items and redraw every 1 % or so."""
        every = max(1, self._total // 100)
        before, self._done = self._done, self._done + count
        if self._enabled and self._done // every != before // every:
            width = 30
            filled = width * self._done // self._total
            bar = "#" * filled + "-" * (width - filled)
            self._stream.write(f"\r[{bar}] {self._done}/{self._total}")
            self._stream.flush()

    def clear(self) -> None:
        """Erase the bar before other output is written to the terminal."""
        if self._enabled:
            self._stream.write("\r\x1b[K")

    def done(self) -> None:
        """Finish the bar."""
        if self._enabled:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
