"""Rules that apply wherever their element occurs: CS002, CS139, TR002, TR101, CS003.

Every negative case is a single change to an official example that stays XSD-valid and must
yield exactly the rule under test (retourcode 0001).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.rules import REGISTRY
from gateway.core.rules.common import bsn_passes_eleven_proof
from tests.unit.rules.mutate import VALID_EXAMPLES, assert_only, example_bytes, load_example

BIRTH = "Client/Geboortedatum"


def _weighted_sum(bsn: str) -> int:
    weights = [9, 8, 7, 6, 5, 4, 3, 2, -1]
    return sum(w * int(d) for d, w in zip(bsn, weights, strict=True))


@pytest.mark.parametrize("message_type", VALID_EXAMPLES)
def test_official_examples_pass_every_registered_rule(message_type: str) -> None:
    assert_only(example_bytes(message_type))


def test_rules_of_this_set_are_registered_once_with_retourcode_0001() -> None:
    codes = ["CS002", "CS139", "TR002", "TR101", "CS003"]
    for code in codes:
        assert REGISTRY[code].retourcode == "0001"
        assert REGISTRY[code].summary


# --- CS002 -------------------------------------------------------------------------------------


def test_cs002_flags_a_client_bsn_without_printing_it() -> None:
    report = assert_only(load_example("JW301").set("Client/Bsn", "123456789").to_bytes(), "CS002")
    assert all("123456789" not in f.message for f in report.findings)
    assert report.findings[0].path == "/Bericht/Client/Bsn"


def test_cs002_checks_bsns_in_retours_too() -> None:
    assert_only(load_example("JW316").set("Client/Bsn", "999900007").to_bytes(), "CS002")


def test_cs002_checks_every_client_of_a_declaration() -> None:
    example = load_example("JW323")
    clients = example.elements("Declaratie/Clienten/Client")
    assert len(clients) >= 2, "the JW323 example holds several clients"
    report = assert_only(
        example.set("Declaratie/Clienten/Client[2]/Bsn", "111111111").to_bytes(), "CS002"
    )
    assert len(report.findings) == 1


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_cs002_eleven_proof_matches_independent_formula(bsn: str) -> None:
    assert bsn_passes_eleven_proof(bsn) is (_weighted_sum(bsn) % 11 == 0)


@given(st.lists(st.integers(0, 9), min_size=8, max_size=8))
def test_cs002_generated_valid_bsns_are_never_flagged(first_eight: list[int]) -> None:
    partial = sum(w * d for w, d in zip(range(9, 1, -1), first_eight, strict=True))
    last = partial % 11  # the check digit makes the weighted sum a multiple of 11
    if last == 10:
        return  # no digit completes this prefix; such numbers do not exist
    bsn = "".join(map(str, first_eight)) + str(last)
    assert _weighted_sum(bsn) % 11 == 0
    assert bsn_passes_eleven_proof(bsn)
    assert_only(load_example("JW305").set("Client/Bsn", bsn).to_bytes())


# --- CS139 -------------------------------------------------------------------------------------


def test_cs139_date_usage_1_needs_day_01() -> None:
    xml = load_example("JW301").insert_after(f"{BIRTH}/Datum", "DatumGebruik", "1").to_bytes()
    assert_only(xml, "CS139")


@pytest.mark.parametrize(
    ("usage", "date"), [("1", "2010-02-01"), ("2", "2010-01-01"), ("3", "1900-01-01")]
)
def test_cs139_consistent_date_usage_passes(usage: str, date: str) -> None:
    example = load_example("JW301").set(f"{BIRTH}/Datum", date)
    assert_only(example.insert_after(f"{BIRTH}/Datum", "DatumGebruik", usage).to_bytes())


@pytest.mark.parametrize(("usage", "date"), [("2", "2010-02-01"), ("3", "1950-01-01")])
def test_cs139_inconsistent_month_or_year_fails(usage: str, date: str) -> None:
    example = load_example("JW305").set(f"{BIRTH}/Datum", date)
    xml = example.insert_after(f"{BIRTH}/Datum", "DatumGebruik", usage).to_bytes()
    assert_only(xml, "CS139")


# --- TR002 -------------------------------------------------------------------------------------


def test_tr002_exactly_120_years_before_dagtekening_passes() -> None:
    example = load_example("JW301")
    assert example.text("Header/BerichtIdentificatie/Dagtekening") == "2026-04-01"
    assert_only(example.set(f"{BIRTH}/Datum", "1906-04-01").to_bytes())


def test_tr002_one_day_more_than_120_years_fails() -> None:
    report = assert_only(
        load_example("JW301").set(f"{BIRTH}/Datum", "1906-03-31").to_bytes(), "TR002"
    )
    assert "1906" not in report.findings[0].message


def test_tr002_also_checks_relations() -> None:
    xml = load_example("JW301").set("Client/Relaties/Relatie[2]/Geboortedatum/Datum", "1900-05-05")
    assert_only(xml.to_bytes(), "TR002")


# --- TR101 -------------------------------------------------------------------------------------


def test_tr101_two_contacts_with_the_same_soort() -> None:
    xml = load_example("JW301").duplicate("Client/Contactgegevens/Contact").to_bytes()
    report = assert_only(xml, "TR101")
    assert report.findings[0].path == "/Bericht/Client/Contactgegevens/Contact[2]"


def test_tr101_two_relations_with_the_same_nummer() -> None:
    xml = load_example("JW301").set("Client/Relaties/Relatie[2]/Nummer", "1").to_bytes()
    assert_only(xml, "TR101")


def test_tr101_assignments_sharing_a_toewijzingnummer() -> None:
    products = "Client/ToegewezenProducten/ToegewezenProduct"
    xml = load_example("JW301").set(f"{products}[2]/ToewijzingNummer", "300201").to_bytes()
    assert_only(xml, "TR101")


def test_tr101_key_is_per_parent_relation_contacts_may_share_soort() -> None:
    # Both relations and a client contact have a Contact with Soort 03, in different parents.
    example = load_example("JW301")
    soorten = [example.text(f"Client/Relaties/Relatie[{i}]/Contact/Soort") for i in (1, 2)]
    assert soorten == ["03", "03"]
    assert_only(example.to_bytes())


# --- CS003 -------------------------------------------------------------------------------------


def test_cs003_assignment_ending_before_it_starts() -> None:
    products = "Client/ToegewezenProducten/ToegewezenProduct"
    xml = load_example("JW301").set(f"{products}[1]/Einddatum", "2026-03-31").to_bytes()
    assert_only(xml, "CS003")


def test_cs003_end_equal_to_start_passes() -> None:
    products = "Client/ToegewezenProducten/ToegewezenProduct"
    xml = load_example("JW301").set(f"{products}[1]/Einddatum", "2026-04-01").to_bytes()
    assert_only(xml)


def test_cs003_contact_period_ending_before_it_begins() -> None:
    period = "Client/Contactgegevens/Contact[2]/Periode"
    xml = load_example("JW301").insert_after(f"{period}/Begindatum", "Einddatum", "2018-02-02")
    assert_only(xml.to_bytes(), "CS003")


def test_cs003_requested_assignment_period() -> None:
    product = "Client/AangevraagdeProducten/AangevraagdProduct[1]"
    xml = load_example("JW315").set(f"{product}/ToewijzingEinddatum", "2023-03-31").to_bytes()
    assert_only(xml, "CS003")


def test_cs003_new_product_in_change_request() -> None:
    product = "Client/Verzoek/NieuweProducten/NieuwProduct"
    xml = load_example("JW317").set(f"{product}/Einddatum", "2023-10-31").to_bytes()
    assert_only(xml, "CS003")
