"""Product-code translation in iJw 2.3 messages: the holders of 3.2 (JW301, JW305, JW307,
JW315) and the 2.3 declaration lines (JW303, its JW304 answer), on the official 2.3 examples."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from lxml import etree

from gateway.core.ledger import InMemoryLedger, LedgerEntry, LedgerKey
from gateway.core.mapping_tables import MappingTable, Product
from gateway.core.translation import translate
from gateway.mapping_files import load_mappings
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR_23
from tests.unit.translation.builders import CUTOVER, products, set_text, to_bytes, write_folder

REFERENCE_2_3 = load_schema_set([OFFICIAL_XSD_DIR_23])
AFTER = CUTOVER + dt.timedelta(days=60)
OLD_31, NEW_31 = Product("31", "31ABC"), Product("45", "45N31")
OLD_32, NEW_32 = Product("32", "32XYZ"), Product("45", "45N32")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MappingTable:
    return load_mappings(write_folder(tmp_path_factory.mktemp("mappings")))


def example_2_3(name: str, edit: Callable[[etree._Element], None]) -> bytes:
    tree = etree.parse(str(EXAMPLES_DIR_23 / f"{name}.xml"))
    edit(tree.getroot())
    return to_bytes(tree)


def each(root: etree._Element, name: str) -> list[etree._Element]:
    return list(root.iter("{*}" + name))


def pair(gemeente: str, nummer: str, old: Product, new: Product, **units: str) -> LedgerEntry:
    return LedgerEntry(LedgerKey.allocation(gemeente, nummer), old, new, "old", "new", **units)


def valid_2_3(message_type: str, xml: bytes) -> None:
    schema = REFERENCE_2_3.get("2.3", message_type)
    assert schema is not None
    schema.xsd.assertValid(etree.ElementTree(etree.fromstring(xml)))


def amounts(xml: bytes) -> list[tuple[str, str]]:
    """Every figure of a declaration (name, value) in document order."""
    root = etree.fromstring(xml)
    return [
        (etree.QName(el).localname, el.text or "")
        for el in root.iter()
        if len(el) == 0
        and etree.QName(el).localname
        in {
            "GeleverdVolume",
            "Eenheid",
            "ProductTarief",
            "Bedrag",
            "TotaalBedrag",
            "DebetCredit",
            "BtwPercentage",
            "Verrekenpercentage",
        }
    ]


def test_a_2_3_allocation_starts_its_pairs_like_a_3_2_one(table: MappingTable) -> None:
    """JW301 (products nested in the Beschikking) is read through the 3.2 holder."""

    def edit(root: etree._Element) -> None:
        for product, (old, start) in zip(
            each(root, "ToegewezenProduct"), ((OLD_31, AFTER), (OLD_32, AFTER)), strict=True
        ):
            set_text(product, "Product/Categorie", old.categorie)
            set_text(product, "Product/Code", old.code)
            set_text(product, "Ingangsdatum", start.isoformat())

    result = translate(
        example_2_3("JW301", edit), table, to_generation="new", ledger=InMemoryLedger()
    )
    assert not result.needs_decision, result.undecided
    assert products(result.xml) == [("45", "45N31"), ("45", "45N32")]
    assert {(e.key, e.original, e.translated) for e in result.new_entries} == {
        (LedgerKey.allocation("0384", "201"), OLD_31, NEW_31),
        (LedgerKey.allocation("0384", "202"), OLD_32, NEW_32),
    }
    valid_2_3("JW301", result.xml)


@pytest.mark.parametrize("message_type", ["JW305", "JW307"])
def test_2_3_starts_and_stops_follow_the_ledger(table: MappingTable, message_type: str) -> None:
    """The 2.3 example's two lines (allocations 321, 322 of 0363) get the recorded pairs."""

    def edit(root: etree._Element) -> None:
        for line, new in zip(each(root, "Product"), (NEW_31, NEW_32), strict=True):
            set_text(line, "Categorie", new.categorie)
            set_text(line, "Code", new.code)

    ledger = InMemoryLedger(
        [pair("0363", "321", OLD_31, NEW_31), pair("0363", "322", OLD_32, NEW_32)]
    )
    result = translate(example_2_3(message_type, edit), table, to_generation="old", ledger=ledger)
    assert not result.needs_decision, result.undecided
    assert products(result.xml) == [("31", "31ABC"), ("32", "32XYZ")]
    assert len(result.rewrites) == 2
    valid_2_3(message_type, result.xml)


def test_a_2_3_request_starts_a_request_pair(table: MappingTable) -> None:
    """JW315: each AangevraagdProduct (own ReferentieAanbieder) from the table."""

    def edit(root: etree._Element) -> None:
        for index, line in enumerate(each(root, "AangevraagdProduct"), start=1):
            set_text(line, "ReferentieAanbieder", f"REQ-{index}")
            set_text(line, "ToewijzingIngangsdatum", AFTER.isoformat())

    result = translate(
        example_2_3("JW315", edit), table, to_generation="new", ledger=InMemoryLedger()
    )
    assert not result.needs_decision, result.undecided
    assert products(result.xml) == [("45", "45N31"), ("45", "45N32")]
    assert {(e.key, e.translated) for e in result.new_entries} == {
        (LedgerKey.request("0384", "REQ-1"), NEW_31),
        (LedgerKey.request("0384", "REQ-2"), NEW_32),
    }
    valid_2_3("JW315", result.xml)


def declaration(root: etree._Element) -> None:
    """The 2.3 JW303 example with its lines in the provider's old codes (allocations 124, 224)."""
    for line in each(root, "Prestatie"):
        old = OLD_31 if line.findtext("{*}ToewijzingNummer") == "124" else OLD_32
        set_text(line, "ProductCategorie", old.categorie)
        set_text(line, "ProductCode", old.code)


def test_a_jw303_gets_the_recorded_pairs_and_keeps_every_amount(table: MappingTable) -> None:
    """The gemeente is the header's Gemeente, the day its FactuurDagtekening; only the codes
    change, so amounts, VAT and the totals stay as the provider declared them."""
    sent = example_2_3("JW303", declaration)
    ledger = InMemoryLedger(
        [pair("0384", "124", OLD_31, NEW_31), pair("0384", "224", OLD_32, NEW_32)]
    )
    result = translate(sent, table, to_generation="new", ledger=ledger)
    assert result.gemeente == "0384"
    assert not result.needs_decision, result.undecided
    assert products(result.xml) == [("45", "45N31"), ("45", "45N32")] * 2
    assert amounts(result.xml) == amounts(sent)
    assert result.new_entries == ()
    valid_2_3("JW303", result.xml)


def test_a_jw303_line_of_an_untranslated_allocation_is_left_alone(table: MappingTable) -> None:
    result = translate(
        example_2_3("JW303", declaration), table, to_generation="new", ledger=InMemoryLedger()
    )
    assert not result.rewrites and not result.needs_decision
    assert len(result.kept) == 4


def test_the_jw304_goes_back_in_the_providers_codes(table: MappingTable) -> None:
    """The answer to a translated JW303 travels under the same pair, the other way."""

    def answer(root: etree._Element) -> None:
        line = each(root, "Prestatie")[0]
        set_text(line, "ProductCategorie", NEW_31.categorie)
        set_text(line, "ProductCode", NEW_31.code)

    sent = example_2_3("JW304", answer)
    ledger = InMemoryLedger([pair("0384", "124", OLD_31, NEW_31)])
    result = translate(sent, table, to_generation="old", ledger=ledger)
    assert not result.needs_decision, result.undecided
    assert products(result.xml) == [("31", "31ABC")]
    assert amounts(result.xml) == amounts(sent)
    valid_2_3("JW304", result.xml)


def test_a_jw303_line_whose_pair_changes_the_unit_is_held(table: MappingTable) -> None:
    """Without a declared conversion the amounts cannot follow a unit change: held."""
    ledger = InMemoryLedger(
        [
            pair("0384", "124", OLD_31, NEW_31, unit_original="21", unit_translated="04"),
            pair("0384", "224", OLD_32, NEW_32),
        ]
    )
    result = translate(example_2_3("JW303", declaration), table, to_generation="new", ledger=ledger)
    assert result.needs_decision
    held = [u for u in result.undecided if u.key == "0384/toewijzing/124"]
    assert len(held) == 2
    assert all("no declared conversion" in u.reason for u in held)
