"""Translated official examples still validate against the official XSDs."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.core.document import find, findall, text
from gateway.core.ledger import InMemoryLedger, LedgerEntry, LedgerKey
from gateway.core.mapping_tables import MappingTable, Product
from gateway.core.report import Level
from gateway.core.schemaset import SchemaSet
from gateway.core.translation import translate
from gateway.core.validate import validate
from gateway.mapping_files import load_mappings
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR
from tests.unit.translation.builders import CUTOVER, products, write_folder

WITH_PRODUCTS = ["JW301", "JW305", "JW307", "JW315", "JW316", "JW317", "JW318", "JW323", "JW325"]
WITHOUT_PRODUCTS = ["JW302", "JW306", "JW308", "JW319", "JW320"]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR])


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MappingTable:
    return load_mappings(write_folder(tmp_path_factory.mktemp("mappings")))


def _seed(table: MappingTable, raw: bytes) -> InMemoryLedger:
    """Ledger entries for every allocation or request the example mentions, as if the
    gateway had translated its heen-bericht earlier."""
    root = etree.fromstring(raw)
    gemeente = next(
        v
        for v in (text(root, "Header/Afzender"), text(root, "Header/Ontvanger"))
        if v and len(v) == 4
    )
    ledger = InMemoryLedger()

    def record(key: LedgerKey, product: Product) -> None:
        (candidate,) = table.candidates(gemeente, product, CUTOVER, "new")
        ledger.record(LedgerEntry(key, product, candidate.result, "old", "new"))

    for el in root.iter(
        "{*}Prestatie", "{*}StartProduct", "{*}StopProduct", "{*}ToegewezenProduct"
    ):
        number = text(el, "ToewijzingNummer")
        code = text(el, "ProductCode") or text(el, "Product/Code")
        cat = text(el, "ProductCategorie") or text(el, "Product/Categorie")
        if number and code and cat:
            record(LedgerKey.allocation(gemeente, number), Product(cat, code))
    for el in root.iter("{*}AangevraagdProduct"):
        ref = text(el, "ReferentieAanbieder")
        if ref:
            record(
                LedgerKey.request(gemeente, ref),
                Product(text(el, "Product/Categorie") or "", text(el, "Product/Code") or ""),
            )
    for verzoek in root.iter("{*}Verzoek"):
        ref = text(verzoek, "ReferentieAanbieder") or ""
        for index, el in enumerate(findall(verzoek, "NieuweProducten/NieuwProduct"), start=1):
            product = find(el, "Product")
            if product is not None:
                record(
                    LedgerKey.request(gemeente, ref, index),
                    Product(text(product, "Categorie") or "", text(product, "Code") or ""),
                )
    return ledger


def _unique_references(raw: bytes) -> bytes:
    """JW316.xml repeats one ReferentieAanbieder on two products (TR383 forbids that in the
    JW315 it answers); number them so each request has its own ledger key."""
    root = etree.fromstring(raw)
    refs = [
        el
        for el in root.iter("{*}ReferentieAanbieder")
        if etree.QName(el.getparent()).localname == "AangevraagdProduct"
    ]
    if len({el.text for el in refs}) == len(refs):
        return raw
    for index, el in enumerate(refs, start=1):
        el.text = f"{el.text}{index}"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("name", WITH_PRODUCTS)
def test_translated_example_is_rewritten_and_schema_valid(
    schemas: SchemaSet, table: MappingTable, name: str
) -> None:
    """Every product of the example gets its new code and the result passes the official XSD."""
    raw = _unique_references((EXAMPLES_DIR / f"{name}.xml").read_bytes())
    ledger = _seed(table, raw)
    heen = name in ("JW301", "JW315", "JW317")
    result = translate(raw, table, to_generation="new", ledger=InMemoryLedger() if heen else ledger)
    assert not result.needs_decision, result.undecided
    before, after = products(raw), products(result.xml)
    assert len(after) == len(before) > 0
    assert all(new != old for new, old in zip(after, before, strict=True))
    assert all(table.speaks("new", Product(*p)) for p in after)
    original_level = validate(raw, schemas).level
    if original_level is Level.XSD:  # JW318.xml is XSD-invalid as shipped
        assert validate(result.xml, schemas).level is Level.XSD
    else:
        assert validate(result.xml, schemas).level is not Level.XSD


@pytest.mark.parametrize("name", WITHOUT_PRODUCTS)
def test_examples_without_products_pass_through_unchanged(table: MappingTable, name: str) -> None:
    """JW319 and header-only retours carry no product: nothing to rewrite, nothing held."""
    raw = (EXAMPLES_DIR / f"{name}.xml").read_bytes()
    result = translate(raw, table, to_generation="new", ledger=InMemoryLedger())
    assert not result.rewrites and not result.needs_decision
    assert etree.tostring(etree.fromstring(result.xml), method="c14n") == etree.tostring(
        etree.fromstring(raw), method="c14n"
    )


def test_examples_folder_is_complete() -> None:
    """Both lists together cover every official example, so none is skipped silently."""
    assert sorted(WITH_PRODUCTS + WITHOUT_PRODUCTS) == sorted(
        p.stem for p in Path(EXAMPLES_DIR).glob("*.xml")
    )
