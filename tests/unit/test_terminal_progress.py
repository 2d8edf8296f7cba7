"""The progress bar of ``gateway validate``: counted per file or per chunk of files."""

from __future__ import annotations

import io

from gateway.terminal import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _counts_drawn(stream: _Terminal) -> list[str]:
    return [frame.split()[-1] for frame in stream.getvalue().split("\r") if frame]


def test_steps_of_several_files_redraw_whenever_a_percent_is_crossed() -> None:
    """A worker's chunk of 64 files moves the bar as far as 64 single steps would."""
    stream = _Terminal()
    progress = Progress(1000, stream)
    for _ in range(3):
        progress.step(64)
    progress.step(8)
    assert _counts_drawn(stream) == ["64/1000", "128/1000", "192/1000", "200/1000"]


def test_single_steps_redraw_every_percent() -> None:
    stream = _Terminal()
    progress = Progress(200, stream)
    for _ in range(5):
        progress.step()
    assert _counts_drawn(stream) == ["2/200", "4/200"]


def test_no_bar_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(1000, stream)
    progress.step(500)
    progress.done()
    assert stream.getvalue() == ""
