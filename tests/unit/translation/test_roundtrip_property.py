"""Properties over every shipped mapping row: out and back restores the code, never S329."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.ledger import InMemoryLedger, LedgerEntry, LedgerKey, Origin
from gateway.core.mapping_tables import MappingRow, MappingTable, Product, SourceKind
from gateway.core.schemaset import SchemaSet
from gateway.core.translation import translate
from gateway.core.validate import validate
from gateway.mapping_files import load_mappings
from gateway.schemas import load_schema_set
from gateway.shipped import SHIPPED_MAPPINGS
from tests.paths import OFFICIAL_XSD_DIR
from tests.unit.translation.builders import follow_up, jw301, jw323, products

TABLE: MappingTable = load_mappings(SHIPPED_MAPPINGS)
PRODUCT_ROWS = [r for r in TABLE.rows if r.source_kind is SourceKind.PRODUCT]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR])


def _decide(ledger: InMemoryLedger, key: LedgerKey, row: MappingRow) -> None:
    """What an operator does for a held one-to-many or unit change: pin the row's target."""
    ledger.record(
        LedgerEntry(
            key,
            row.source,
            row.target,
            row.from_generation,
            row.to_generation,
            origin=Origin.OPERATOR,
            decided_by="test",
        )
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    row=st.sampled_from(PRODUCT_ROWS),
    days_after=st.integers(min_value=0, max_value=2000),
    nummer=st.integers(min_value=0, max_value=999_999_999).map(str),
    gemeente_index=st.integers(min_value=0, max_value=10),
)
def test_every_row_round_trips_and_stays_valid(
    schemas: SchemaSet, row: MappingRow, days_after: int, nummer: str, gemeente_index: int
) -> None:
    """JW301 out, then its start, stop and declaration back, restore the original code."""
    gemeenten = sorted(row.gemeenten)
    gemeente = gemeenten[gemeente_index % len(gemeenten)]
    day = row.valid_from + dt.timedelta(days=days_after)
    ledger = InMemoryLedger()
    key = LedgerKey.allocation(gemeente, nummer)
    message = jw301(
        gemeente, nummer, row.source.categorie, row.source.code, day, eenheid=row.unit_from or "04"
    )
    out = translate(message, TABLE, to_generation=row.to_generation, ledger=ledger)
    if out.needs_decision:
        assert row.needs_decision or row.changes_unit
        _decide(ledger, key, row)
        out = translate(message, TABLE, to_generation=row.to_generation, ledger=ledger)
    assert not out.needs_decision, out.undecided
    ledger.record_all(out.new_entries)
    (sent,) = products(out.xml)
    assert sent == (row.target.categorie, row.target.code)
    assert TABLE.speaks(row.to_generation, Product(*sent))  # never causes S329
    assert validate(out.xml, schemas).level.value in ("ok", "rules")  # XSD-valid
    answers = [
        follow_up("JW305", gemeente, nummer, *sent, day),
        follow_up("JW307", gemeente, nummer, *sent, day),
        jw323(gemeente, nummer, *sent, eenheid=row.unit_from or "04"),
        out.xml,  # the retour repeats what was sent
    ]
    for answer in answers:
        back = translate(answer, TABLE, to_generation=row.from_generation, ledger=ledger)
        assert not back.needs_decision, back.undecided
        assert set(products(back.xml)) == {(row.source.categorie, row.source.code)}


def test_every_product_row_is_covered_by_the_strategy() -> None:
    """The property samples from all shipped product rows (guards against an empty list)."""
    assert (
        len(PRODUCT_ROWS)
        == sum(1 for s in TABLE.sets for r in s.rows if r.source_kind is SourceKind.PRODUCT)
        > 60
    )
