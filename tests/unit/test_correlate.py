"""Which original a message opens or answers, read from the official examples' headers."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest

from gateway.core.calendar import add_working_days
from gateway.core.correlate import Correlation, CorrelationKey, Side, correlation_of
from gateway.core.deadlines import (
    DECLARATION_ANSWER_WORKING_DAYS,
    RETOUR_OF,
    RETOUR_WORKING_DAYS,
    dutch_day,
    retour_due,
)
from gateway.core.document import MessageDocument
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR


@cache
def _schemas() -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR])


def _document(raw: bytes) -> MessageDocument:
    document = validate(raw, _schemas()).document
    assert document is not None
    return document


def _example(name: str) -> bytes:
    return (EXAMPLES_DIR / f"{name}.xml").read_bytes()


def test_an_original_names_itself_by_afzender_and_identificatie() -> None:
    """JW301: the key is its own type, Afzender and Identificatie."""
    assert correlation_of(_document(_example("JW301"))) == Correlation(
        Side.ORIGINAL, CorrelationKey("JW301", "0384", "123456789012")
    )


def test_a_retour_names_its_original_from_its_copied_header() -> None:
    """JW302 copies Afzender and BerichtIdentificatie of the JW301 it answers (IV028)."""
    assert correlation_of(_document(_example("JW302"))) == Correlation(
        Side.RETOUR, CorrelationKey("JW301", "0384", "123456789012")
    )


def test_jw325_names_the_jw323_by_declaratie_identificatie_and_its_ontvanger() -> None:
    """JW325: the JW323 came from the provider (its Ontvanger), named in DeclaratieIdentificatie."""
    declaratie = correlation_of(_document(_example("JW323")))
    antwoord = correlation_of(_document(_example("JW325")))
    assert declaratie == Correlation(
        Side.ORIGINAL, CorrelationKey("JW323", "65656055", "765432198")
    )
    assert antwoord is not None and antwoord.side is Side.RETOUR
    assert antwoord.key == declaratie.key


@pytest.mark.parametrize("original", sorted(RETOUR_OF))
def test_every_retour_type_points_at_its_original_type(original: str) -> None:
    """JW306 answers JW305, JW308 JW307, ...: the key carries the original's type."""
    found = correlation_of(_document(_example(RETOUR_OF[original])))
    assert found is not None and found.side is Side.RETOUR
    assert found.key.original_type == original


def test_retour_due_counts_dutch_working_days() -> None:
    """3 working days for a retour, 10 for a JW325, none for a retour itself."""
    friday = dt.date(2026, 5, 1)  # then a weekend and Bevrijdingsdag (Tuesday 5 May)
    assert retour_due("JW305", friday) == dt.date(2026, 5, 7)
    assert retour_due("JW305", friday) == add_working_days(friday, RETOUR_WORKING_DAYS)
    # 4, 6-8, 11-13, 15, 18, 19 May: Hemelvaartsdag (Thursday 14 May) does not count either.
    assert retour_due("JW323", friday) == dt.date(2026, 5, 19)
    assert DECLARATION_ANSWER_WORKING_DAYS == 10
    assert retour_due("JW302", friday) is None


def test_the_day_counts_in_dutch_time() -> None:
    """23:30 UTC in summer is already the next day in the Netherlands."""
    assert dutch_day(dt.datetime(2026, 5, 1, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 5, 2)
    assert dutch_day(dt.datetime(2026, 1, 1, 22, 30, tzinfo=dt.UTC)) == dt.date(2026, 1, 1)
