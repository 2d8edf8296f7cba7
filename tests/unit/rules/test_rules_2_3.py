"""iJw 2.3 messages: the 3.2 rules that mean the same on the same elements run on them, no other.

Each negative case changes one thing in a 2.3 reference example (validated against our 2.3
schemas, so the rule layer really runs) and must yield exactly the rule under test.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from lxml import etree

from gateway.core.report import Level, ValidationReport
from gateway.core.rules import REGISTRY, RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR_23, OUR_XSD_DIR, OUR_XSD_DIR_23
from tests.unit.rules.mutate import Mutable

MESSAGES_2_3 = tuple(sorted(p.stem for p in EXAMPLES_DIR_23.glob("JW*.xml")))
TODAY = dt.date(2026, 11, 23)


@cache
def both_releases() -> SchemaSet:
    return load_schema_set([OUR_XSD_DIR, OUR_XSD_DIR_23])


def example(message: str) -> Mutable:
    return Mutable(etree.parse(str(EXAMPLES_DIR_23 / f"{message}.xml")))


def report_for(xml: bytes, context: RuleContext | None = None) -> ValidationReport:
    report = validate(xml, both_releases(), context or RuleContext(today=TODAY))
    assert report.release == "2.3"
    assert report.level in (Level.OK, Level.RULES, Level.EXTERNAL), [
        (f.rule, f.path, f.message) for f in report.findings
    ]
    return report


def assert_only(mutated: Mutable, *codes: str) -> None:
    report = report_for(mutated.to_bytes())
    assert set(report.rule_codes) == set(codes), [(f.rule, f.path) for f in report.findings]


@pytest.mark.parametrize("message", MESSAGES_2_3)
def test_every_2_3_example_passes_the_rules_for_2_3(message: str) -> None:
    report = report_for((EXAMPLES_DIR_23 / f"{message}.xml").read_bytes())
    assert (report.level, report.message_type) == (Level.OK, message)


def test_cs002_checks_the_bsn_of_a_2_3_declaration() -> None:
    assert_only(example("JW303").set("Clienten/Client[2]/Bsn", "123456789"), "CS002")


def test_cs139_checks_date_usage_in_2_3() -> None:
    birth = "Client/Geboortedatum/Datum"
    assert_only(example("JW305").insert_after(birth, "DatumGebruik", "1"), "CS139")


def test_tr002_checks_the_age_against_the_2_3_dagtekening() -> None:
    assert_only(example("JW315").set("Client/Geboortedatum/Datum", "1890-05-05"), "TR002")


def test_tr018_checks_a_2_3_stop() -> None:
    stop = "Client/StopProducten/StopProduct[1]"
    assert_only(example("JW307").set(f"{stop}/Einddatum", "2017-06-30"), "TR018")


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("Client/Naam/NaamGebruik", "6", "CS050"),  # the client's Naam has a Partnernaam
        ("Client/Communicatie/Vorm", "2", "CD007"),  # a Taal without a tolk taal
        ("Client/Contactgegevens/Contact[1]/Adres/Postcode", "0173TH", "CS089"),
    ],
)
def test_client_data_rules_run_on_a_2_3_allocation(path: str, value: str, code: str) -> None:
    assert_only(example("JW301").set(path, value), code)


def test_cd005_and_cd025_run_on_a_2_3_allocation() -> None:
    address = "Client/Contactgegevens/Contact[1]/Adres"
    assert_only(example("JW301").remove(f"{address}/Postcode"), "CD005", "CS089")
    assert_only(example("JW301").remove(f"{address}/Huis"), "CD025")


def test_tr135_refuses_a_2_3_message_dated_after_today() -> None:
    xml = (EXAMPLES_DIR_23 / "JW301.xml").read_bytes()
    report = report_for(xml, RuleContext(today=dt.date(2018, 7, 14)))
    assert report.rule_codes == ("TR135",)
    assert (report.level, report.findings[0].retourcode) == (Level.EXTERNAL, "8848")


def test_rules_of_3_2_only_do_not_run_on_2_3() -> None:
    """CS058 (StatusAanlevering 2 was dropped in 3.x) and TR101 (3.2 key table) stay 3.2-only."""
    start = "Client/StartProducten/StartProduct[1]"
    assert_only(example("JW305").set(f"{start}/StatusAanlevering", "2"))
    assert_only(example("JW305").duplicate(start))
    covered = {rule.code for rule in REGISTRY.for_type("JW301", "2.3")}
    assert covered == {"CS002", "CS139", "TR002", "CS050", "CD005", "CD025", "CS089", "CD007",
                       "TR135"}  # fmt: skip
    assert {rule.code for rule in REGISTRY.for_type("JW303", "2.3")} == {"CS002", "CS139", "BVO002"}


def test_a_3_2_rule_still_runs_on_3_2_messages() -> None:
    assert "CS058" in {rule.code for rule in REGISTRY.for_type("JW305", "3.2")}
    assert "CS058" not in {rule.code for rule in REGISTRY.for_type("JW305", "2.3")}


TOTAL = "Header/DeclaratieFactuurBedragen/DeclaratieFactuurTotaalBedrag"
BTW_TOTAL = "Header/DeclaratieFactuurBedragen/BtwTotaalBedrag"
LINE = "Clienten/Client[1]/Prestaties/Prestatie[1]/IngediendeBedragPrestatie"


def test_bvo002_refuses_a_jw303_whose_total_is_not_the_sum_of_its_lines() -> None:
    assert_only(example("JW303").set(f"{TOTAL}/TotaalBedrag", "3590001"), "BVO002")


def test_bvo002_refuses_a_jw303_whose_vat_total_is_not_the_sum_of_the_line_vat() -> None:
    assert_only(example("JW303").set(f"{BTW_TOTAL}/TotaalBedrag", "719999"), "BVO002")


def test_bvo002_subtracts_credit_lines() -> None:
    credited = (
        example("JW303")
        .set(f"{LINE}/DeclaratieFactuurBedrag/DebetCredit", "C")
        .set(f"{TOTAL}/TotaalBedrag", str(3_590_000 - 2 * 990_000))
    )
    assert_only(credited)
    assert_only(credited.set(f"{TOTAL}/TotaalBedrag", "3590000"), "BVO002")


def test_bvo002_without_vat_total_checks_the_invoice_total_only() -> None:
    assert_only(example("JW303").remove(BTW_TOTAL))
