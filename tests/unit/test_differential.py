"""Validation reports what it reported before the speed work, on a sample of the corpus.

The digests in ``tests/data/differential_digests.json`` were recorded with the code before the
change (see ``bench/differential.py``, which checks all 6,024 messages); every tenth message is
checked here, each with every field of every finding and every in-message rule run alone.
The check runs twice: with the document index built in C (gateway/core/_cdoc.pyx) and with the
pure-Python builders.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import pytest

from gateway.core import document
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.differential import DIGESTS_FILE, compared_registry, corpus, digest
from tests.paths import EXAMPLES_DIR, OUR_XSD_DIR

EVERY = 10


@cache
def _recorded() -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(DIGESTS_FILE.read_text())
    return recorded


@cache
def _schemas() -> SchemaSet:
    return load_schema_set([OUR_XSD_DIR])


def test_the_corpus_is_the_one_the_digests_were_recorded_for() -> None:
    recorded = _recorded()
    messages = list(corpus(EXAMPLES_DIR, recorded["mutations"]))
    assert len(messages) == len(recorded["digests"])
    # The corpus reaches every verdict level, so the digests cover more than one layer.
    assert len(set(recorded["digests"])) > len(messages) // 2


@pytest.fixture(params=["c", "python"])
def index_builders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which builders MessageDocument's index uses in the test (document.py's switch)."""
    if request.param == "python":
        monkeypatch.setattr(document, "_cdoc", None)
    elif not document.c_index_enabled():
        if os.environ.get("GATEWAY_BUILD_C", "0") not in ("", "0"):
            pytest.fail(f"GATEWAY_BUILD_C is set, but: {document.C_INDEX_STATUS}")
        pytest.skip(document.C_INDEX_STATUS)
    return str(request.param)


@pytest.mark.parametrize("part", range(EVERY // 2))
def test_validation_reports_what_it_reported_before(part: int, index_builders: str) -> None:
    recorded = _recorded()
    registry = compared_registry(recorded["rules"])
    sample = [
        (index, raw)
        for index, raw in enumerate(corpus(EXAMPLES_DIR, recorded["mutations"]))
        if index % EVERY == 0 and (index // EVERY) % (EVERY // 2) == part
    ]
    assert sample
    different = [
        index
        for index, raw in sample
        if digest(raw, _schemas(), registry) != recorded["digests"][index]
    ]
    assert different == [], f"messages whose findings changed (bench/differential.py): {different}"


def test_a_missing_finding_changes_the_digest() -> None:
    recorded = _recorded()
    registry = compared_registry(recorded["rules"])
    example = next(raw for raw in corpus(EXAMPLES_DIR, 0) if b"Bsn>999900006<" in raw)
    bad_bsn = example.replace(b"Bsn>999900006<", b"Bsn>999900007<", 1)
    (finding,) = validate(bad_bsn, _schemas(), rules=registry).findings
    without_that_rule = compared_registry([c for c in recorded["rules"] if c != finding.rule])
    assert digest(bad_bsn, _schemas(), registry) != digest(bad_bsn, _schemas(), without_that_rule)
