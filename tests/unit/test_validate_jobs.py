"""``gateway validate --jobs``: the worker pool reads ahead a bounded number of files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from gateway.cli.validate import (
    _TASKS_PER_WORKER,
    _check_in_workers,
    _Checker,
    _Settings,
    _Unreadable,
)
from gateway.core.xmlsafe import DEFAULT_MAX_BYTES
from tests.paths import EXAMPLES_DIR, OUR_XSD_DIR


def _settings() -> _Settings:
    return _Settings(
        schema_folders=(OUR_XSD_DIR,),
        today=None,
        max_bytes=DEFAULT_MAX_BYTES,
        retour_dir=None,
        as_json=True,
        colour=False,
    )


def _folder(tmp_path: Path, count: int) -> list[Path | _Unreadable]:
    source = (EXAMPLES_DIR / "JW301.xml").read_bytes()
    files: list[Path | _Unreadable] = []
    for i in range(count):
        path = tmp_path / f"m{i:04d}.xml"
        path.write_bytes(source)
        files.append(path)
    return files


def test_workers_read_ahead_a_bounded_number_of_files(tmp_path: Path) -> None:
    """However long the input, only jobs x tasks-per-worker chunks are taken ahead of the
    results printed, so a folder of any size runs in constant memory."""
    files = _folder(tmp_path, 400)
    pulled = 0

    def counted() -> Iterator[Path | _Unreadable]:
        nonlocal pulled
        for item in files:
            pulled += 1
            yield item

    jobs, chunk = 2, 5
    results = _check_in_workers(counted(), _Checker(_settings()), jobs, chunk)
    first = next(results)
    assert first.files == chunk
    assert pulled <= chunk * (jobs * _TASKS_PER_WORKER + 1)
    rest = list(results)
    assert pulled == len(files)
    assert first.files + sum(c.files for c in rest) == len(files)
    lines = "".join(c.stdout for c in [first, *rest]).splitlines()
    assert [line.split('"')[3] for line in lines] == [str(p) for p in files]


def test_workers_start_without_fork_when_threads_run(tmp_path: Path) -> None:
    """With another thread running, workers come from a fork server and load the schemas
    themselves; the output is the same as in one process."""
    files = _folder(tmp_path, 12)
    files.append(_Unreadable(tmp_path / "gone.xml", "no such file or folder"))
    checker = _Checker(_settings())
    in_process = checker.check(files)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        parallel = list(_check_in_workers(iter(files), checker, 2, 3))
    finally:
        stop.set()
        other.join()
    assert "".join(c.stdout for c in parallel) == in_process.stdout
    assert "".join(c.stderr for c in parallel) == in_process.stderr
    assert any(c.unreadable for c in parallel) and not any(c.findings for c in parallel)
