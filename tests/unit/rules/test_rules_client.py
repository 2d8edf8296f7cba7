"""JW301 client rules: CS050, CS318, TR061, TR006, CD005, CD025, CD034, CS089, CD009, CD007.

Each negative case changes one thing in the official JW301 example (sometimes on top of a
variant that is itself shown to be clean) and must yield exactly the rule under test.
"""

from __future__ import annotations

import pytest

from tests.unit.rules.mutate import Mutable, assert_only, load_example

CLIENT_NAME = "Client/Naam/NaamGebruik"
PARTNER_NAME = "Client/Relaties/Relatie[1]/Naam/NaamGebruik"  # this Naam has a Partnernaam
CONTACT = "Client/Contactgegevens/Contact"
RESIDENCE = f"{CONTACT}[1]"  # Soort 03, Dutch address, telephone
TEMPORARY = f"{CONTACT}[2]"  # Soort 04, Dutch address, telephone, Periode


def test_cs050_partner_name_needs_usage_1_to_4() -> None:
    assert_only(load_example("JW301").set(PARTNER_NAME, "5").to_bytes(), "CS050")


def test_cs050_without_partner_name_usage_must_be_1_or_6() -> None:
    assert_only(load_example("JW301").set(CLIENT_NAME, "2").to_bytes(), "CS050")


@pytest.mark.parametrize("usage", ["1", "2", "3", "4"])
def test_cs050_partner_name_with_usage_1_to_4_passes(usage: str) -> None:
    assert_only(load_example("JW301").set(PARTNER_NAME, usage).to_bytes())


def test_cs318_client_may_not_be_a_legal_person() -> None:
    assert_only(load_example("JW301").set(CLIENT_NAME, "6").to_bytes(), "CS318")


def test_cs318_a_relation_may_be_a_legal_person() -> None:
    relation_without_partner = "Client/Relaties/Relatie[2]/Naam/NaamGebruik"
    assert_only(load_example("JW301").set(relation_without_partner, "6").to_bytes())


def test_tr061_client_needs_a_brp_correspondence_or_residence_contact() -> None:
    assert_only(load_example("JW301").remove(RESIDENCE).to_bytes(), "TR061")


def test_tr006_contact_without_phone_needs_house_and_postcode() -> None:
    no_phone = load_example("JW301").remove(f"{TEMPORARY}/Telefoon")
    assert_only(no_phone.to_bytes())  # Huis and Postcode still make it reachable
    xml = no_phone.remove(f"{TEMPORARY}/Adres/Postcode").to_bytes()
    assert_only(xml, "TR006", "CD005", "CS089")  # NL without postcode breaks all three


def test_tr006_without_phone_and_without_house() -> None:
    no_phone = load_example("JW301").remove(f"{TEMPORARY}/Telefoon")
    assert_only(no_phone.remove(f"{TEMPORARY}/Adres/Huis").to_bytes(), "TR006", "CD025")


def test_tr006_alone_for_a_foreign_address_without_house() -> None:
    foreign = load_example("JW301").set(f"{TEMPORARY}/Adres/LandCode", "BE")
    foreign.remove(f"{TEMPORARY}/Telefoon")
    assert_only(foreign.to_bytes())
    assert_only(foreign.remove(f"{TEMPORARY}/Adres/Huis").to_bytes(), "TR006")


def test_cd005_postcode_without_landcode() -> None:
    assert_only(load_example("JW301").remove(f"{RESIDENCE}/Adres/LandCode").to_bytes(), "CD005")


def test_cd025_dutch_address_needs_house_number() -> None:
    assert_only(load_example("JW301").remove(f"{RESIDENCE}/Adres/Huis").to_bytes(), "CD025")


def _temporary_without_postcode() -> Mutable:
    example = load_example("JW301")
    for part in ("Periode", "Adres/Postcode", "Adres/LandCode"):
        example.remove(f"{TEMPORARY}/{part}")
    return example


def test_cd034_brp_address_needs_postcode() -> None:
    assert_only(_temporary_without_postcode().to_bytes())
    xml = _temporary_without_postcode().set(f"{TEMPORARY}/Soort", "01").to_bytes()
    assert_only(xml, "CD034")


def test_cd034_correspondence_address_needs_no_postcode() -> None:
    xml = _temporary_without_postcode().set(f"{TEMPORARY}/Soort", "02").to_bytes()
    assert_only(xml)


@pytest.mark.parametrize("postcode", ["0999XX", "9999X1", "99999X", "9999XXX"])
def test_cs089_dutch_postcode_format(postcode: str) -> None:
    xml = load_example("JW301").set(f"{RESIDENCE}/Adres/Postcode", postcode).to_bytes()
    assert_only(xml, "CS089")


def test_cs089_lower_case_letters_pass() -> None:
    assert_only(load_example("JW301").set(f"{RESIDENCE}/Adres/Postcode", "1234ab").to_bytes())


def test_cs089_foreign_postcode_is_free() -> None:
    example = load_example("JW301").set(f"{RESIDENCE}/Adres/LandCode", "DE")
    assert_only(example.set(f"{RESIDENCE}/Adres/Postcode", "10115").to_bytes())


def test_cd009_period_only_for_temporary_address() -> None:
    xml = load_example("JW301").set(f"{TEMPORARY}/Soort", "02").to_bytes()
    assert_only(xml, "CD009")


def test_cd007_language_only_with_spoken_interpreter() -> None:
    assert_only(load_example("JW301").set("Client/Communicatie/Vorm", "2").to_bytes(), "CD007")


def test_cd007_spoken_interpreter_needs_language() -> None:
    assert_only(load_example("JW301").remove("Client/Communicatie/Taal").to_bytes(), "CD007")


def test_cd007_other_interpreter_without_language_passes() -> None:
    example = load_example("JW301").set("Client/Communicatie/Vorm", "3")
    assert_only(example.remove("Client/Communicatie/Taal").to_bytes())
