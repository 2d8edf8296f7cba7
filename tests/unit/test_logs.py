"""The log format: the scrubber sees formatted tracebacks and every field; stdlib lines are JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.logs import about_message, configure_logging, get_logger, reset_logging

BSN = "999912347"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        yield out
    finally:
        reset_logging()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_bsn_in_a_traceback_is_masked(stream: io.StringIO) -> None:
    """``log.exception`` over an exception that names a BSN: the traceback is there, masked."""
    try:
        raise ValueError(f"no client {BSN} in the register")
    except ValueError:
        get_logger("test").exception("lookup_failed")
    [entry] = _lines(stream)
    assert BSN not in stream.getvalue()
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "ValueError: no client ******347 in the register" in entry["exception"]


def test_every_field_is_scrubbed_nested_and_non_string(stream: io.StringIO) -> None:
    """Nested dicts and lists, numbers and objects are scrubbed; personal keys are withheld
    at any depth."""
    get_logger("test").warning(
        "odd_values",
        nested={"clients": [BSN, {"Postcode": "QZ7788"}], "count": 3},
        number=int(BSN),
        path=Path(f"/inbox/{BSN}.xml"),
        error=KeyError(BSN),
    )
    [entry] = _lines(stream)
    assert BSN not in stream.getvalue() and "QZ7788" not in stream.getvalue()
    assert entry["nested"] == {"clients": ["******347", {"Postcode": "(withheld)"}], "count": 3}
    assert entry["number"] == "******347"
    assert entry["path"] == "/inbox/******347.xml"


def test_stdlib_lines_come_out_as_scrubbed_json(stream: io.StringIO) -> None:
    """apscheduler's, aiohttp's and SQLAlchemy's lines: one JSON object each, same scrubbing,
    bound context included; apscheduler's INFO chatter stays out."""
    with about_message("20260501-000001"):
        logging.getLogger("apscheduler.scheduler").warning("job %s missed by %s", BSN, "1s")
        logging.getLogger("apscheduler.executors.default").info("Running job every second")
    try:
        raise RuntimeError(f"constraint failed for {BSN}")
    except RuntimeError:
        logging.getLogger("sqlalchemy.pool").exception("connection invalidated")
    logging.getLogger("aiohttp.server").error("Error handling request")
    entries = _lines(stream)
    assert [(e["logger"], e["level"]) for e in entries] == [
        ("apscheduler.scheduler", "warning"),
        ("sqlalchemy.pool", "error"),
        ("aiohttp.server", "error"),
    ]
    assert entries[0]["event"] == "job ******347 missed by 1s"
    assert entries[0]["message_id"] == "20260501-000001"
    assert "RuntimeError: constraint failed for ******347" in entries[1]["exception"]
    assert BSN not in stream.getvalue()
    assert all("timestamp" in e for e in entries)


def test_reset_leaves_other_root_handlers_alone() -> None:
    """Configuring twice keeps one handler of ours; resetting removes only ours."""
    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging(json=True, stream=io.StringIO())
    configure_logging(json=True, stream=io.StringIO())
    assert len(root.handlers) == len(before) + 1
    reset_logging()
    assert root.handlers == before
