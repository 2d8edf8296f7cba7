"""Validation from many threads at once (the daemon validates in worker threads) gives every
message its own, complete verdict."""

from __future__ import annotations

import concurrent.futures as cf

from gateway.core.report import Level
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OUR_XSD_DIR


def test_threads_never_see_each_others_schema_errors() -> None:
    """An XSD-invalid message is never judged valid, nor given another message's errors."""
    schemas = load_schema_set([OUR_XSD_DIR])
    good = (EXAMPLES_DIR / "JW301.xml").read_bytes()
    bad = good.replace(b"999900006", b"99990000X")
    expected_bad = validate(bad, schemas)
    assert expected_bad.level is Level.XSD

    def run(i: int) -> tuple[bool, Level, int]:
        report = validate(good if i % 2 else bad, schemas)
        return bool(i % 2), report.level, len(report.findings)

    with cf.ThreadPoolExecutor(8) as pool:
        outcomes = set(pool.map(run, range(4000)))
    assert outcomes == {(True, Level.OK, 0), (False, Level.XSD, len(expected_bad.findings))}
