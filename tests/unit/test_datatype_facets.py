"""Property tests over the data-type facets (spec §5): our schemas, the official schemas and an
independent reading of the standard must agree on every generated value."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.document import MessageDocument
from gateway.core.validate import identify, xsd_findings
from gateway.core.xmlsafe import parse_safely
from gateway.schemas import load_schema_set
from tests.paths import OFFICIAL_XSD_DIR, OUR_XSD_DIR
from tests.unit.rules.mutate import load_example

OURS = load_schema_set([OUR_XSD_DIR])
OFFICIAL = load_schema_set([OFFICIAL_XSD_DIR])

PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _xsd_valid(example: str, path: str, value: str, schemas: object) -> bool:
    xml = load_example(example).set(path, value).to_bytes()
    parsed = parse_safely(xml)
    if parsed.tree is None:
        return False
    doc = identify(parsed.tree, schemas)  # type: ignore[arg-type]
    assert isinstance(doc, MessageDocument)
    return not xsd_findings(doc)


def _date_ok(value: str) -> bool:
    # xs:date lexical space without a time zone (LDT_Datum pattern [^:Z]*), year 0001..9999.
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    year, month, day = (int(p) for p in value.split("-"))
    if year == 0 or not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


def _int_range(low: int, high: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        # xs:integer lexical form: optional sign, digits; XSD collapses surrounding blanks.
        stripped = value.strip(" \t\r\n")
        if not re.fullmatch(r"[+-]?\d+", stripped):
            return False
        return low <= int(stripped) <= high

    return check


def _text_codes(*codes: str) -> Callable[[str], bool]:
    return lambda value: value in codes


FIELDS: list[tuple[str, str, str, Callable[[str], bool], st.SearchStrategy[str]]] = [
    (
        "bsn",
        "JW305",
        "Client/Bsn",
        lambda v: re.fullmatch(r"[0-9]{9}", v) is not None,
        st.one_of(st.from_regex(r"\A[0-9]{8,10}\Z"), st.text(max_size=11)),
    ),
    (
        "agb-afzender",
        "JW305",
        "Header/Afzender",
        lambda v: re.fullmatch(r"[0-9]{8}", v) is not None,
        st.one_of(st.from_regex(r"\A[0-9]{7,9}\Z"), st.text(max_size=9)),
    ),
    (
        "gemeente-ontvanger",
        "JW305",
        "Header/Ontvanger",
        lambda v: re.fullmatch(r"[0-9]{4}", v) is not None,
        st.one_of(st.from_regex(r"\A[0-9]{3,5}\Z"), st.text(max_size=5)),
    ),
    (
        "versie",
        "JW305",
        "Header/XsdVersie/BerichtXsdVersie",
        lambda v: re.fullmatch(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", v) is not None,
        st.one_of(st.from_regex(r"\A[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}\Z"), st.text(max_size=8)),
    ),
    (
        "datum",
        "JW305",
        "Client/StartProducten/StartProduct/Begindatum",
        _date_ok,
        st.one_of(
            st.dates().map(str), st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(Z|\+01:00)?\Z")
        ),
    ),
    (
        "volume",
        "JW323",
        "Declaratie/Clienten/Client/Prestaties/Prestatie/GeleverdVolume",
        _int_range(0, 99_999_999),
        st.one_of(st.integers(-10, 100_000_010).map(str), st.text(max_size=4)),
    ),
    (
        "eenheid",
        "JW323",
        "Declaratie/Clienten/Client/Prestaties/Prestatie/Eenheid",
        _text_codes("01", "04", "14", "16", "82", "83", "84"),
        st.one_of(st.from_regex(r"\A[0-9]{2}\Z"), st.text(max_size=3)),
    ),
    (
        "status-aanlevering",
        "JW305",
        "Client/StartProducten/StartProduct/StatusAanlevering",
        _text_codes("1", "2", "3", "9"),
        st.one_of(st.from_regex(r"\A[0-9]\Z"), st.text(max_size=2)),
    ),
]


@pytest.mark.parametrize(
    ("example", "path", "expected", "values"), [f[1:] for f in FIELDS], ids=[f[0] for f in FIELDS]
)
def test_schemas_agree_with_the_standard_on_generated_values(
    example: str, path: str, expected: Callable[[str], bool], values: st.SearchStrategy[str]
) -> None:
    """For any value, our XSD, the official XSD and the standard's definition agree."""

    @PROFILE
    @given(
        values.filter(
            lambda v: (
                "\x00" not in v
                and all(c in "\t\n\r" or ord(c) >= 0x20 for c in v)
                and not any(0xD800 <= ord(c) <= 0xDFFF or ord(c) in (0xFFFE, 0xFFFF) for c in v)
            )
        )
    )
    def check(value: str) -> None:
        ours = _xsd_valid(example, path, value, OURS)
        official = _xsd_valid(example, path, value, OFFICIAL)
        assert ours == official, f"our schema and the official schema disagree on {value!r}"
        assert ours == expected(value), f"schemas say {ours} for {value!r}"

    check()
