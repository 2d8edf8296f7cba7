"""Pure translation: rewrites, the ledger protocol, held-for-decision and unit changes."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from gateway.core.ledger import InMemoryLedger, LedgerConflict, LedgerEntry, LedgerKey, Origin
from gateway.core.mapping_tables import MappingTable, Product
from gateway.core.translation import TranslationError, translate
from gateway.mapping_files import load_mappings
from gateway.shipped import SHIPPED_MAPPINGS
from tests.unit.translation.builders import (
    example,
    follow_up,
    jw301,
    jw323,
    products,
    set_text,
    to_bytes,
    write_folder,
)

GEMEENTE = "0193"
AFTER = dt.date(2020, 3, 1)
BEFORE = dt.date(2019, 6, 1)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MappingTable:
    return load_mappings(write_folder(tmp_path_factory.mktemp("mappings")))


def amounts(xml: bytes) -> list[str]:
    root = etree.fromstring(xml)
    return [
        el.text or ""
        for el in root.iter()
        if etree.QName(el).localname
        in ("Bedrag", "TotaalBedrag", "ProductTarief", "GeleverdVolume")
    ]


def test_one_to_one_allocation_is_rewritten_and_recorded(table: MappingTable) -> None:
    """A JW301 for an allocation after the cut-over gets the new code and one ledger entry."""
    ledger = InMemoryLedger()
    result = translate(
        jw301(GEMEENTE, "A1", "45", "45A03", AFTER), table, to_generation="new", ledger=ledger
    )
    assert not result.needs_decision
    assert products(result.xml) == [("45", "45N03")]
    assert [(r.old, r.new) for r in result.rewrites] == [("45/45A03", "45/45N03")]
    assert result.rewrites[0].path.endswith("ToegewezenProduct")
    assert [(e.key, e.original, e.translated) for e in result.new_entries] == [
        (LedgerKey.allocation(GEMEENTE, "A1"), Product("45", "45A03"), Product("45", "45N03"))
    ]
    assert len(ledger) == 0  # translate only reads; the caller records


def test_answers_come_back_under_the_original_code(table: MappingTable) -> None:
    """Start, stop and declaration about a translated allocation restore the original code."""
    ledger = InMemoryLedger()
    out = translate(
        jw301(GEMEENTE, "A1", "31", "31ABC", AFTER), table, to_generation="new", ledger=ledger
    )
    ledger.record_all(out.new_entries)
    for message in (
        follow_up("JW305", GEMEENTE, "A1", "45", "45N31", AFTER),
        follow_up("JW307", GEMEENTE, "A1", "45", "45N31", AFTER),
        jw323(GEMEENTE, "A1", "45", "45N31"),
    ):
        back = translate(message, table, to_generation="old", ledger=ledger)
        assert not back.needs_decision, back.undecided
        assert set(products(back.xml)) == {("31", "31ABC")}
        assert back.new_entries == ()


def test_declaration_amounts_are_never_changed(table: MappingTable) -> None:
    """Only ProductCategorie/ProductCode change on a declaration; every amount stays."""
    ledger = InMemoryLedger(
        [
            LedgerEntry(
                LedgerKey.allocation(GEMEENTE, "A1"),
                Product("45", "45A04"),
                Product("45", "45N04"),
                "old",
                "new",
            )
        ]
    )
    message = jw323(GEMEENTE, "A1", "45", "45A04")
    result = translate(message, table, to_generation="new", ledger=ledger)
    assert set(products(result.xml)) == {("45", "45N04")}
    assert amounts(result.xml) == amounts(message)
    assert len(result.rewrites) == 4


def test_follow_up_without_ledger_entry_is_left_alone(table: MappingTable) -> None:
    """An allocation the gateway never translated travels under its own code: no table lookup."""
    result = translate(
        follow_up("JW305", GEMEENTE, "Z9", "45", "45A03", AFTER),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert products(result.xml) == [("45", "45A03")]
    assert not result.rewrites and not result.needs_decision
    assert "never translated" in result.kept[0].reason


def test_code_that_matches_neither_side_of_the_pair_is_held(table: MappingTable) -> None:
    """A start under another code than the recorded pair is never guessed."""
    ledger = InMemoryLedger(
        [
            LedgerEntry(
                LedgerKey.allocation(GEMEENTE, "A1"),
                Product("45", "45A03"),
                Product("45", "45N03"),
                "old",
                "new",
            )
        ]
    )
    result = translate(
        follow_up("JW305", GEMEENTE, "A1", "45", "45N04", AFTER),
        table,
        to_generation="old",
        ledger=ledger,
    )
    assert result.needs_decision
    assert "does not match the recorded pair" in result.undecided[0].reason


def test_no_retroactive_rewriting_before_the_cut_over(table: MappingTable) -> None:
    """An allocation that began before the cut-over keeps its code."""
    result = translate(
        jw301(GEMEENTE, "A2", "45", "45A03", BEFORE),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert products(result.xml) == [("45", "45A03")]
    assert not result.needs_decision and result.new_entries == ()
    assert "before the cut-over" in result.kept[0].reason


def test_reden_wijziging_10_moves_an_old_allocation_to_the_new_code(table: MappingTable) -> None:
    """RedenWijziging 10 (new funding system) is the one way an old allocation is converted."""
    message = jw301(GEMEENTE, "A2", "45", "45A03", BEFORE, reden="10")
    result = translate(message, table, to_generation="new", as_of=AFTER, ledger=InMemoryLedger())
    assert products(result.xml) == [("45", "45N03")]


def test_one_to_many_is_held_with_its_candidates(table: MappingTable) -> None:
    """45A48 has two possible targets: held, nothing recorded, both candidates listed."""
    result = translate(
        jw301(GEMEENTE, "A3", "45", "45A48", AFTER),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision and result.new_entries == ()
    (item,) = result.undecided
    assert item.candidates == (Product("45", "45P01"), Product("45", "45P02"))
    assert "needs mapping decision" in str(item)


def test_operator_decision_in_the_ledger_releases_the_one_to_many(table: MappingTable) -> None:
    """Once an operator records the pair, the same message translates and answers come back."""
    ledger = InMemoryLedger()
    ledger.record(
        LedgerEntry(
            LedgerKey.allocation(GEMEENTE, "A3"),
            Product("45", "45A48"),
            Product("45", "45P02"),
            "old",
            "new",
            origin=Origin.OPERATOR,
            decided_by="operator-1",
        )
    )
    result = translate(
        jw301(GEMEENTE, "A3", "45", "45A48", AFTER), table, to_generation="new", ledger=ledger
    )
    assert products(result.xml) == [("45", "45P02")]
    back = translate(
        jw323(GEMEENTE, "A3", "45", "45P02"), table, to_generation="old", ledger=ledger
    )
    assert set(products(back.xml)) == {("45", "45A48")}


def test_missing_mapping_is_held(table: MappingTable) -> None:
    """A code with no row and not in the target list is never passed on untranslated."""
    result = translate(
        jw301(GEMEENTE, "A4", "55", "55A99", AFTER),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision
    assert "no mapping into new" in result.undecided[0].reason


def test_gemeente_outside_the_scope_has_no_mapping(table: MappingTable) -> None:
    """A code only means something per gemeente: Utrecht (0344) has no rows here."""
    result = translate(
        jw301("0344", "A5", "45", "45A03", AFTER),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision


def test_unit_change_with_exact_factor_converts_omvang(table: MappingTable) -> None:
    """45A49 (hours) -> 45Q01 (minutes) x60: Omvang 2 hours becomes 120 minutes, and back."""
    ledger = InMemoryLedger()
    result = translate(
        jw301(GEMEENTE, "A6", "45", "45A49", AFTER, volume="2"),
        table,
        to_generation="new",
        ledger=ledger,
    )
    assert not result.needs_decision, result.undecided
    root = etree.fromstring(result.xml)
    assert [el.text for el in root.iter("{*}Volume")] == ["120"]
    assert [el.text for el in root.iter("{*}Eenheid")] == ["01"]
    ledger.record_all(result.new_entries)
    retour = etree.fromstring(result.xml)
    back = translate(etree.tostring(retour), table, to_generation="old", ledger=ledger)
    back_root = etree.fromstring(back.xml)
    assert [el.text for el in back_root.iter("{*}Volume")] == ["2"]
    assert products(back.xml) == [("45", "45A49")]


def test_unit_change_without_factor_is_held(table: MappingTable) -> None:
    """45A50 (hours) -> 45Q02 (pieces) has no conversion: the JW301 needs a decision."""
    result = translate(
        jw301(GEMEENTE, "A7", "45", "45A50", AFTER),
        table,
        to_generation="new",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision and not result.new_entries
    assert "without a declared conversion" in result.undecided[0].reason


def test_unit_change_on_a_declaration_line_is_held(table: MappingTable) -> None:
    """A declaration under a unit-changing pair is held; nothing is recomputed."""
    ledger = InMemoryLedger(
        [
            LedgerEntry(
                LedgerKey.allocation(GEMEENTE, "A6"),
                Product("45", "45A49"),
                Product("45", "45Q01"),
                "old",
                "new",
                unit_original="04",
                unit_translated="01",
                volume_factor=None,
            )
        ]
    )
    message = jw323(GEMEENTE, "A6", "45", "45Q01", eenheid="01")
    result = translate(message, table, to_generation="old", ledger=ledger)
    assert result.needs_decision
    assert all("no declared conversion" in u.reason for u in result.undecided)


def test_reverse_direction_uses_a_unique_row(table: MappingTable) -> None:
    """A gemeente on new codes, a provider on old: 45N03 goes out as 45A03."""
    result = translate(
        jw301(GEMEENTE, "B1", "45", "45N03", AFTER),
        table,
        to_generation="old",
        ledger=InMemoryLedger(),
    )
    assert products(result.xml) == [("45", "45A03")]
    (entry,) = result.new_entries
    assert (entry.original_generation, entry.translated_generation) == ("new", "old")


def test_vot_is_translated_and_the_honouring_jw301_goes_back_under_the_requested_code(
    table: MappingTable,
) -> None:
    """JW315 old -> new keyed by ReferentieAanbieder; the JW301 answering it returns 55A11."""
    ledger = InMemoryLedger()
    vot = example("JW315")
    set_text(vot.getroot(), "Header/Ontvanger", GEMEENTE)
    request = translate(to_bytes(vot), table, to_generation="new", ledger=ledger)
    assert products(request.xml) == [("55", "55N11"), ("55", "55N12")]
    ledger.record_all(request.new_entries)
    reference = request.new_entries[0].key.number
    allocation = etree.fromstring(jw301(GEMEENTE, "C1", "55", "55N11", AFTER))
    set_text(
        allocation, "Client/ToegewezenProducten/ToegewezenProduct/ReferentieAanbieder", reference
    )
    answer = translate(etree.tostring(allocation), table, to_generation="old", ledger=ledger)
    assert products(answer.xml) == [("55", "55A11")]
    assert answer.new_entries[0].origin is Origin.REQUEST


def test_ledger_refuses_a_second_pair_for_the_same_allocation() -> None:
    """The first pair wins; a different pair for the same key is a conflict."""
    key = LedgerKey.allocation(GEMEENTE, "A1")
    ledger = InMemoryLedger(
        [LedgerEntry(key, Product("45", "45A03"), Product("45", "45N03"), "old", "new")]
    )
    ledger.record(LedgerEntry(key, Product("45", "45A03"), Product("45", "45N03"), "old", "new"))
    with pytest.raises(LedgerConflict):
        ledger.record(
            LedgerEntry(key, Product("45", "45A03"), Product("45", "45N04"), "old", "new")
        )


def test_not_an_ijw_message_raises(table: MappingTable) -> None:
    """Garbage and foreign XML are refused with a clear error, never half translated."""
    with pytest.raises(TranslationError, match="not well-formed"):
        translate(b"<a>", table, to_generation="new", ledger=InMemoryLedger())
    with pytest.raises(TranslationError, match="not an iJw message"):
        translate(b"<a xmlns='urn:x'/>", table, to_generation="new", ledger=InMemoryLedger())
    with pytest.raises(TranslationError, match="unknown generation"):
        translate(b"<a/>", table, to_generation="nope", ledger=InMemoryLedger())


def test_shipped_demo_legacy_code_needs_a_decision() -> None:
    """In the shipped SYNTHETIC tables 45A48 -> IJ01P is only a suggestion: held."""
    shipped = load_mappings(SHIPPED_MAPPINGS)
    result = translate(
        jw301("0193", "D1", "45", "45A48", dt.date(2018, 3, 1)),
        shipped,
        to_generation="profile-2018",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision
    assert result.undecided[0].candidates == (Product("45", "IJ01P"),)


def test_shipped_demo_kept_code_passes_unchanged() -> None:
    """Vervoer (42A03) stays outside the profile model: no rewrite, nothing held."""
    shipped = load_mappings(SHIPPED_MAPPINGS)
    result = translate(
        jw301("0150", "D2", "42", "42A03", dt.date(2018, 3, 1), eenheid="82"),
        shipped,
        to_generation="profile-2018",
        ledger=InMemoryLedger(),
    )
    assert not result.needs_decision and not result.rewrites
