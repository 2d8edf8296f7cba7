"""``claimed_products``: submitted JW323 lines counted per product and begin date, on every
backend (the query behind ``gateway contracts coverage``)."""

from __future__ import annotations

import datetime as dt

from gateway.core.document import MessageDocument
from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from gateway.store.base import ClaimedProduct
from gateway.store.sql import SqlStore
from tests.contract.test_register_history import SqlRecordingHistory
from tests.unit.dossier.scenario import AANBIEDER, GEMEENTE, Line, declaratie
from tests.unit.rules.mutate import official_schema_set

APRIL, MAY = ("2026-04-01", "2026-04-30"), ("2026-05-12", "2026-05-31")


def parsed(raw: bytes) -> MessageDocument:
    """The document of a valid generated message."""
    document = validate(raw, official_schema_set(), RuleContext()).document
    assert document is not None
    return document


def test_every_submitted_line_counts_once_whatever_its_verdict(store: SqlStore) -> None:
    """An accepted claim and a claim rejected as a whole both count; the same claim stored
    again (an operator replay) counts once; dates and aanbieder filter."""
    history = SqlRecordingHistory(store)
    accepted = declaratie(
        "D1", APRIL, "2026-05-05", Line("R1", *APRIL), Line("R2", *APRIL, toewijzing="300202")
    )
    history.record(parsed(accepted))
    rejected = declaratie(
        "D2",
        ("2026-05-01", "2026-05-31"),
        "2026-06-02",
        Line("R3", *MAY, code="55A12", eenheid="16"),
    )
    history.remember_submission(parsed(rejected))
    history.remember_submission(parsed(rejected))
    april, may = dt.date(2026, 4, 1), dt.date(2026, 5, 12)
    everything = [
        ClaimedProduct(GEMEENTE, AANBIEDER, "55", "55A11", "04", april, 2),
        ClaimedProduct(GEMEENTE, AANBIEDER, "55", "55A12", "16", may, 1),
    ]
    assert store.claimed_products() == everything
    assert store.claimed_products(first=dt.date(2026, 5, 1)) == everything[1:]
    assert store.claimed_products(last=dt.date(2026, 4, 30)) == everything[:1]
    assert store.claimed_products(aanbieder=AANBIEDER) == everything
    assert store.claimed_products(aanbieder="65656055") == []
