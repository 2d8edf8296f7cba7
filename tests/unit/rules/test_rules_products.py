"""Product rules of JW301/315/317: Omvang/Budget/Product/Einddatum/Frequentie combinations,
RedenWijziging, and overlapping periods of the same product.

Where one change cannot isolate a rule, the test first builds a variant of the example, shows
that it is clean, and then makes the single change under test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.rules.mutate import Mutable, assert_only, load_example

TP = "Client/ToegewezenProducten/ToegewezenProduct"
TP1, TP2 = f"{TP}[1]", f"{TP}[2]"  # 55A11 and 55A12, both from 2026-04-01, Omvang per week
AP = "Client/AangevraagdeProducten/AangevraagdProduct"
AP1, AP2 = f"{AP}[1]", f"{AP}[2]"  # 55A11 and 55A12, Eenheid 16 per month
NP = "Client/Verzoek/NieuweProducten/NieuwProduct"  # 45A03, 2023-11-01..2024-02-28


def single_assignment() -> Mutable:
    """The JW301 example with only its first (specific, weekly) assignment."""
    return load_example("JW301").remove(TP2)


def aspecific_assignment() -> Mutable:
    """One assignment with only a Categorie and no Omvang or Budget."""
    return single_assignment().remove(f"{TP1}/Omvang").remove(f"{TP1}/Product/Code")


def budget_assignment() -> Mutable:
    """One aspecific assignment with a Budget instead of an Omvang."""
    return aspecific_assignment().insert_after(f"{TP1}/Einddatum", "Budget", "150000")


@pytest.mark.parametrize("variant", [single_assignment, aspecific_assignment, budget_assignment])
def test_base_variants_are_clean(variant: Callable[[], Mutable]) -> None:
    assert_only(variant().to_bytes())


def test_cd041_code_needs_volume() -> None:
    assert_only(load_example("JW301").remove(f"{TP1}/Omvang").to_bytes(), "CD041")


def test_cd041_in_request_and_change_request() -> None:
    assert_only(load_example("JW315").remove(f"{AP1}/Omvang").to_bytes(), "CD041")
    assert_only(load_example("JW317").remove(f"{NP}/Omvang").to_bytes(), "CD041")


def test_cd075_budget_needs_end_date() -> None:
    assert_only(budget_assignment().remove(f"{TP1}/Einddatum").to_bytes(), "CD075")


def test_cd076_weekly_volume_needs_end_date() -> None:
    assert_only(load_example("JW301").remove(f"{TP1}/Einddatum").to_bytes(), "CD076")


def test_cd076_monthly_volume_may_be_open_ended() -> None:
    example = load_example("JW301").set(f"{TP1}/Omvang/Frequentie", "4")
    assert_only(example.remove(f"{TP1}/Einddatum").to_bytes())


def test_cd077_cd078_budget_and_volume_exclude_each_other() -> None:
    # CD077 (Budget → no Omvang) and CD078 (Omvang → no Budget) test the same pair, so the
    # official XSLT reports both for a product that has both.
    xml = load_example("JW301").insert_after(f"{TP1}/Omvang", "Budget", "1000").to_bytes()
    report = assert_only(xml, "CD077", "CD078")
    paths = {f.rule: f.path for f in report.findings}
    assert paths["CD077"].endswith("ToegewezenProduct[1]/Budget")
    assert paths["CD078"].endswith("ToegewezenProduct[1]/Omvang")


def test_cd079_without_budget_the_product_is_required() -> None:
    assert_only(aspecific_assignment().remove(f"{TP1}/Product").to_bytes(), "CD079")


def test_cd079_generic_budget_assignment_passes() -> None:
    assert_only(budget_assignment().remove(f"{TP1}/Product").to_bytes())


def test_cd080_volume_needs_a_product_code() -> None:
    assert_only(single_assignment().remove(f"{TP1}/Product/Code").to_bytes(), "CD080")


def test_cd080_not_for_assignments_ending_by_2020() -> None:
    old = single_assignment().set(f"{TP1}/Ingangsdatum", "2020-01-01")
    old.remove(f"{TP1}/Product/Code")
    assert_only(old.set(f"{TP1}/Einddatum", "2020-12-31").to_bytes())
    assert_only(old.set(f"{TP1}/Einddatum", "2021-01-01").to_bytes(), "CD080")


def test_cd095_requested_volume_needs_a_product_code() -> None:
    request = load_example("JW315").remove(AP2)
    assert_only(request.to_bytes())
    assert_only(request.remove(f"{AP1}/Product/Code").to_bytes(), "CD095")


def test_cd096_new_product_volume_needs_a_product_code() -> None:
    assert_only(load_example("JW317").remove(f"{NP}/Product/Code").to_bytes(), "CD096")


@pytest.mark.parametrize("unit", ["14", "16", "83", "84"])
def test_cs338_these_units_are_not_per_day(unit: str) -> None:
    example = load_example("JW301").set(f"{TP2}/Omvang/Eenheid", unit)
    assert_only(example.to_bytes())
    assert_only(example.set(f"{TP2}/Omvang/Frequentie", "1").to_bytes(), "CS338")


def test_cs338_hours_may_be_per_day() -> None:
    assert_only(load_example("JW301").set(f"{TP1}/Omvang/Frequentie", "1").to_bytes())


def test_cs338_in_change_request() -> None:
    example = load_example("JW317").set(f"{NP}/Omvang/Eenheid", "16")
    assert_only(example.set(f"{NP}/Omvang/Frequentie", "1").to_bytes(), "CS338")


def test_cs343_requested_unit_not_per_day() -> None:
    assert_only(load_example("JW315").set(f"{AP1}/Omvang/Frequentie", "1").to_bytes(), "CS343")


def test_cs335_deleted_assignment_must_have_zero_length() -> None:
    xml = load_example("JW301").insert_after(f"{TP1}/Einddatum", "RedenWijziging", "13")
    assert_only(xml.to_bytes(), "CS335")


def test_cs335_zero_length_deletion_passes() -> None:
    example = load_example("JW301").set(f"{TP1}/Einddatum", "2026-04-01")
    assert_only(example.insert_after(f"{TP1}/Einddatum", "RedenWijziging", "13").to_bytes())


def test_cs336_reason_01_is_obsolete() -> None:
    xml = load_example("JW301").insert_after(f"{TP1}/Einddatum", "RedenWijziging", "01")
    assert_only(xml.to_bytes(), "CS336")


def test_tr302_same_product_with_overlapping_periods() -> None:
    report = assert_only(
        load_example("JW301").set(f"{TP2}/Product/Code", "55A11").to_bytes(), "TR302"
    )
    assert report.findings[0].path == f"/Bericht/{TP2}"


def test_tr302_touching_periods_overlap_and_consecutive_ones_do_not() -> None:
    same = load_example("JW301").set(f"{TP2}/Product/Code", "55A11")
    assert_only(same.set(f"{TP2}/Ingangsdatum", "2026-07-14").to_bytes(), "TR302")
    assert_only(same.set(f"{TP2}/Ingangsdatum", "2026-07-15").to_bytes())


def test_tr302_aspecific_assignment_matches_specific_of_same_category() -> None:
    example = load_example("JW301").remove(f"{TP2}/Omvang").remove(f"{TP2}/Product/Code")
    assert_only(example.to_bytes(), "TR302")


def test_tr302_ignores_a_deleted_zero_length_assignment() -> None:
    example = load_example("JW301").set(f"{TP2}/Product/Code", "55A11")
    example.set(f"{TP2}/Einddatum", "2026-04-01")
    assert_only(example.to_bytes(), "TR302")
    assert_only(example.insert_after(f"{TP2}/Einddatum", "RedenWijziging", "13").to_bytes())


def test_tr386_same_requested_product_with_overlapping_periods() -> None:
    assert_only(load_example("JW315").set(f"{AP2}/Product/Code", "55A11").to_bytes(), "TR386")


def test_tr410_same_new_product_with_overlapping_periods() -> None:
    example = load_example("JW317").duplicate(NP)
    assert_only(example.set(f"{NP}[2]/GewensteIngangsdatum", "2024-02-28").to_bytes(), "TR410")
    consecutive = example.set(f"{NP}[2]/GewensteIngangsdatum", "2024-02-29")
    assert_only(consecutive.remove(f"{NP}[2]/Einddatum").to_bytes())
