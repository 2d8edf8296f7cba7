"""A message's dossier lines are read from its tree once, however many readers ask.

The register update (entries and the submitted declaration), the partial-acceptance check and
several cross-message rules all ask one document for its claim lines, allocations, deliveries
and requests; reading those elements was a large part of intake's cost outside validation.
"""

from __future__ import annotations

import pytest

from gateway.core import dossier
from gateway.core.document import MessageDocument
from gateway.core.dossier import reading
from gateway.core.model import State
from gateway.core.pipeline import Decision, register_update, rejected_claim_lines
from gateway.core.report import ValidationReport
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

_SCHEMAS = load_schema_set([OFFICIAL_XSD_DIR])
_QUEUED = Decision(State.QUEUED, "routed")


def _report(name: str) -> tuple[ValidationReport, MessageDocument]:
    report = validate((EXAMPLES_DIR / f"{name}.xml").read_bytes(), _SCHEMAS)
    assert report.document is not None, report.findings
    return report, report.document


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    # The readers live in dossier.reading and call each other there.
    original = getattr(reading, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(reading, name, counted)
    return calls


def test_a_claims_prestaties_are_read_once_for_every_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report, doc = _report("JW323")
    prestaties = len(doc.all_local("Prestatie"))
    assert prestaties >= 2
    reads = _count_calls(monkeypatch, "_claim_line")

    update = register_update(report, _QUEUED)
    partial = rejected_claim_lines(report)
    lines = dossier.claim_lines_in(doc)
    submitted = dossier.submitted_declaration_in(doc)

    assert reads[0] == prestaties
    assert update is not None and update.submitted == submitted
    assert partial == frozenset()
    assert [line for line in update.entries if isinstance(line, dossier.ClaimLine)] == [
        line for _, line in lines
    ]


@pytest.mark.parametrize(
    ("name", "reader", "element"),
    [
        ("JW301", dossier.allocations_in, "ToegewezenProduct"),
        ("JW305", dossier.deliveries_in, "StartProduct"),
        ("JW307", dossier.deliveries_in, "StopProduct"),
    ],
)
def test_products_are_read_once_for_every_reader(
    monkeypatch: pytest.MonkeyPatch, name: str, reader: object, element: str
) -> None:
    report, doc = _report(name)
    products = len(doc.all_local(element))
    assert products >= 1
    reads = _count_calls(monkeypatch, "_product")

    update = register_update(report, _QUEUED)
    assert callable(reader)
    again = reader(doc)

    assert reads[0] == products
    assert update is not None and len(update.entries) == 1 + len(again)


def test_requests_are_read_once_for_every_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    report, doc = _report("JW315")
    reads = _count_calls(monkeypatch, "_requests")

    update = register_update(report, _QUEUED)
    requests = dossier.requests_in(doc)

    assert reads[0] == 1
    assert requests
    assert update is not None and list(update.entries[1:]) == [r for _, r in requests]


def test_every_reader_gets_its_own_list() -> None:
    """The lines are shared per document, the lists handed out are not: a caller that changes
    its list changes nothing another reader sees."""
    _, claim = _report("JW323")
    first = dossier.claim_lines_in(claim)
    first.clear()
    assert dossier.claim_lines_in(claim)

    _, allocation = _report("JW301")
    taken = dossier.allocations_in(allocation)
    taken.pop()
    assert len(dossier.allocations_in(allocation)) == len(taken) + 1
