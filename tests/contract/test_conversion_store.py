"""Declared conversions in the store: a ledger pair keeps its conversion and the source side's
Omvang, and converted declaration lines are kept for their answer, first record wins, on every
backend (SQLite always, PostgreSQL when GATEWAY_TEST_PG_DSN is set)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import text

from gateway.core.ledger import ClaimAmounts, ClaimLine, LedgerEntry, LedgerKey, Omvang
from gateway.core.mapping_tables import ClaimRule, Conversion, Product
from gateway.store.sql import SqlStore
from tests.contract.test_translation_store import _translated
from tests.contract.test_write_batch import _queued, _raw

HOURS, TRAJECTORY = Product("45", "45A50"), Product("45", "45Q02")
CONVERSION = Conversion(
    from_generation="old",
    to_generation="new",
    gemeenten=frozenset(),  # not stored: a recorded pair keeps its conversion whatever its scope
    source=HOURS,
    target=TRAJECTORY,
    source_eenheid="04",
    target_eenheid="82",
    source_frequentie="2",
    target_frequentie="4",
    fixed_volume=1,
    claim=ClaimRule.PER_MONTH,
    origin="conversions/old_to_new.csv:5",
)
REQUEST = LedgerEntry(
    key=LedgerKey.request("0384", "REF-9"),
    original=HOURS,
    translated=TRAJECTORY,
    original_generation="old",
    translated_generation="new",
    unit_original="04",
    unit_translated="82",
    conversion=CONVERSION,
    source_omvang=Omvang(4, "04", "2"),
)
LINE = ClaimLine(
    gemeente="0384",
    aanbieder="65656055",
    declaratie="DN-9",
    referentie="RN-1",
    toewijzing="70001",
    debet_credit="D",
    sent=ClaimAmounts(HOURS, 17, "04", 7500, 127500),
    delivered=ClaimAmounts(TRAJECTORY, 1, "82", 245000, 245000),
)


def test_a_pair_keeps_its_conversion_and_source_omvang(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    store.record_ledger([REQUEST], "M1")
    assert make_store().ledger_entry(REQUEST.key) == REQUEST


def test_converted_lines_are_kept_per_declaration_first_record_wins(store: SqlStore) -> None:
    second = dataclasses.replace(LINE, referentie="RN-2", debet_credit="C")
    other_declaration = dataclasses.replace(LINE, declaratie="DN-10")
    record = _translated(claim_lines=(LINE, second, other_declaration))
    store.write_batch([_queued(store, _raw(11), bericht="B11", translation=record)])
    changed = dataclasses.replace(LINE, delivered=ClaimAmounts(TRAJECTORY, 2, "82", 1, 2))
    again = _translated(claim_lines=(changed,))
    store.write_batch([_queued(store, _raw(12), bericht="B12", translation=again)])
    assert store.ledger_claim_lines("0384", "65656055", "DN-9") == (LINE, second)
    assert store.ledger_claim_lines("0384", "99999999", "DN-9") == ()


def test_a_2_3_line_keeps_its_vat_and_invoice_amount(store: SqlStore) -> None:
    """A JW303 line: its BtwBedrag (none when the line has none) and DeclaratieFactuurBedrag
    on both sides, for its JW304 to go back as declared."""
    with_vat = dataclasses.replace(
        LINE,
        declaratie="HOR202603",
        sent=ClaimAmounts(HOURS, 17, "04", 7500, 127500, 26775, 154275),
        delivered=ClaimAmounts(TRAJECTORY, 1, "82", 245000, 245000, 51450, 296450),
    )
    exempt = dataclasses.replace(
        with_vat,
        referentie="RN-2",
        sent=ClaimAmounts(HOURS, 17, "04", 7500, 127500, None, 127500),
        delivered=ClaimAmounts(TRAJECTORY, 1, "82", 245000, 245000, None, 245000),
    )
    record = _translated(claim_lines=(with_vat, exempt))
    store.write_batch([_queued(store, _raw(13), bericht="B13", translation=record)])
    assert store.ledger_claim_lines("0384", "65656055", "HOR202603") == (with_vat, exempt)


def test_migration_11_adds_conversions_to_an_older_ledger(
    make_store: Callable[[], SqlStore],
) -> None:
    store = make_store()
    store.migrate()
    plain = dataclasses.replace(REQUEST, conversion=None, source_omvang=None)
    store.record_ledger([plain], "M1")
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE translation_ledger DROP COLUMN conversion"))
        conn.execute(text("DROP TABLE translation_claim_lines"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 11"))
    upgraded = make_store()
    upgraded.migrate()
    assert upgraded.schema_version() >= 11
    assert upgraded.ledger_entry(plain.key) == plain
    converted = dataclasses.replace(REQUEST, key=LedgerKey.request("0384", "REF-10"))
    upgraded.record_ledger([converted], "M2")
    assert make_store().ledger_entry(converted.key) == converted
