"""In-message rules of JW315 (VOT), JW317 (VOW) and JW319 (Antwoord): one negative test each,
made by mutating the official example, plus positive boundary cases."""

from __future__ import annotations

from gateway.core.rules import REGISTRY
from tests.unit.rules.mutate import assert_only, example_bytes, load_example

PRODUCT_1 = "Client/AangevraagdeProducten/AangevraagdProduct[1]"
PRODUCT_2 = "Client/AangevraagdeProducten/AangevraagdProduct[2]"
VERZOEK = "Client/Verzoek"
ANTWOORD = "Antwoord"


def test_official_request_examples_pass() -> None:
    """The shipped JW315, JW317 and JW319 examples raise no rule at all."""
    for message_type in ("JW315", "JW317", "JW319"):
        assert_only(example_bytes(message_type))


# --- JW315 ---------------------------------------------------------------------------------


def test_cd043_beschikkingnummer_without_ingangsdatum() -> None:
    """CD043: BeschikkingNummer without BeschikkingIngangsdatum is rejected."""
    xml = load_example("JW315").remove(f"{PRODUCT_1}/BeschikkingIngangsdatum").to_bytes()
    assert_only(xml, "CD043")


def test_cd043_ingangsdatum_without_beschikkingnummer() -> None:
    """CD043: BeschikkingIngangsdatum without BeschikkingNummer is rejected too."""
    xml = load_example("JW315").remove(f"{PRODUCT_1}/BeschikkingNummer").to_bytes()
    assert_only(xml, "CD043")


def test_cd043_neither_beschikking_field_is_fine() -> None:
    """CD043: leaving both beschikking fields out is allowed."""
    example = load_example("JW315").remove(f"{PRODUCT_1}/BeschikkingNummer")
    assert_only(example.remove(f"{PRODUCT_1}/BeschikkingIngangsdatum").to_bytes())


def test_cd066_professional_with_code_and_name() -> None:
    """CD066: a huisarts (02) with ZorgverlenerCode may not also carry a Naam."""
    example = load_example("JW315")
    example.insert_before(f"{PRODUCT_2}/Verwijzer/ZorgverlenerCode", "Naam", "Dr. Jansen")
    assert_only(example.to_bytes(), "CD066")


def test_cd067_professional_without_code_or_name() -> None:
    """CD067: a huisarts (02) without ZorgverlenerCode must have a Naam."""
    xml = load_example("JW315").remove(f"{PRODUCT_2}/Verwijzer/ZorgverlenerCode").to_bytes()
    assert_only(xml, "CD067")


def test_cd067_professional_with_name_only_is_fine() -> None:
    """CD067: a huisarts identified by name only is allowed."""
    xml = load_example("JW315").set(f"{PRODUCT_1}/Verwijzer/Type", "02").to_bytes()
    assert_only(xml)


def test_cd068_non_professional_with_code() -> None:
    """CD068: a gemeente referrer (01) may not carry a ZorgverlenerCode."""
    xml = load_example("JW315").set(f"{PRODUCT_2}/Verwijzer/Type", "01").to_bytes()
    assert_only(xml, "CD068")


def test_tr383_duplicate_referentie_aanbieder() -> None:
    """TR383: two requested products with the same ReferentieAanbieder are rejected."""
    example = load_example("JW315")
    first = example.text(f"{PRODUCT_1}/ReferentieAanbieder")
    assert first is not None
    xml = example.set(f"{PRODUCT_2}/ReferentieAanbieder", first).to_bytes()
    # ReferentieAanbieder is also the logical key of AangevraagdProduct, so the generic
    # duplicate-key rule TR101 (another module) may rightly report the same fault.
    tr101 = "TR101" in REGISTRY.codes() and "JW315" in REGISTRY["TR101"].message_types
    assert_only(xml, "TR383", *(("TR101",) if tr101 else ()))


# --- JW317 ---------------------------------------------------------------------------------


def test_tr352_no_unchanged_or_changed_product() -> None:
    """TR352: a VOW with only new products lists no current assignment."""
    xml = load_example("JW317").remove(f"{VERZOEK}/OngewijzigdeProducten").to_bytes()
    assert_only(xml, "TR352")


def test_tr353_nothing_to_change() -> None:
    """TR353: a VOW with only unchanged products asks for nothing."""
    xml = load_example("JW317").remove(f"{VERZOEK}/NieuweProducten").to_bytes()
    assert_only(xml, "TR353")


def test_tr380_new_product_starting_on_dagtekening() -> None:
    """TR380: GewensteIngangsdatum equal to the Dagtekening is not 'after' it."""
    example = load_example("JW317")
    dagtekening = example.text("Header/BerichtIdentificatie/Dagtekening")
    assert dagtekening == "2023-01-02"
    path = f"{VERZOEK}/NieuweProducten/NieuwProduct/GewensteIngangsdatum"
    assert_only(example.set(path, dagtekening).to_bytes(), "TR380")


def test_tr380_new_product_starting_the_day_after_is_fine() -> None:
    """TR380 boundary: the day after the Dagtekening is allowed."""
    path = f"{VERZOEK}/NieuweProducten/NieuwProduct/GewensteIngangsdatum"
    assert_only(load_example("JW317").set(path, "2023-01-03").to_bytes())


# --- JW319 ---------------------------------------------------------------------------------


def test_cd085_rejection_without_reason() -> None:
    """CD085: VerzoekAntwoord 1 (rejected) without RedenAfwijzingVerzoek is rejected."""
    xml = load_example("JW319").remove(f"{ANTWOORD}/RedenAfwijzingVerzoek").to_bytes()
    assert_only(xml, "CD085")


def test_cd086_investigation_with_reason() -> None:
    """CD086: VerzoekAntwoord 2 (in onderzoek) may not carry a RedenAfwijzingVerzoek."""
    xml = load_example("JW319").set(f"{ANTWOORD}/VerzoekAntwoord", "2").to_bytes()
    assert_only(xml, "CD086")


def test_investigation_without_reason_is_fine() -> None:
    """CD085/CD086 positive: 'in onderzoek' with neither reden nor woonplaatsbeginsel passes."""
    example = load_example("JW319").set(f"{ANTWOORD}/VerzoekAntwoord", "2")
    example.remove(f"{ANTWOORD}/RedenAfwijzingVerzoek").remove(f"{ANTWOORD}/Woonplaatsbeginsel")
    assert_only(example.to_bytes())


def test_tr377_reason_8_without_woonplaatsbeginsel() -> None:
    """TR377: reden 8 without the Woonplaatsbeginsel class is rejected."""
    xml = load_example("JW319").remove(f"{ANTWOORD}/Woonplaatsbeginsel").to_bytes()
    assert_only(xml, "TR377")


def test_tr409_woonplaatsbeginsel_with_other_reason() -> None:
    """TR409: the Woonplaatsbeginsel class with a reden other than 8 is rejected."""
    xml = load_example("JW319").set(f"{ANTWOORD}/RedenAfwijzingVerzoek", "7").to_bytes()
    assert_only(xml, "TR409")


def test_other_reason_without_woonplaatsbeginsel_is_fine() -> None:
    """TR377/TR409 positive: reden 7 without Woonplaatsbeginsel passes."""
    example = load_example("JW319").set(f"{ANTWOORD}/RedenAfwijzingVerzoek", "7")
    assert_only(example.remove(f"{ANTWOORD}/Woonplaatsbeginsel").to_bytes())


def test_request_findings_carry_no_bsn() -> None:
    """Findings of these rules carry no BSN (the example client's BSN never appears)."""
    example = load_example("JW315")
    bsn = example.text("Client/Bsn")
    assert bsn is not None
    example.remove(f"{PRODUCT_1}/BeschikkingIngangsdatum").set(f"{PRODUCT_2}/Verwijzer/Type", "01")
    report = assert_only(example.to_bytes(), "CD043", "CD068")
    assert all(bsn not in f.message for f in report.findings)
