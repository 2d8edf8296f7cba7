"""A translated message keeps the sender's layout: only the rewritten codes change.

Validation's document may lack the whitespace between elements (xmlsafe, keepBlanks=0), so
translation writes from its own blank-keeping parse of the bytes. Before that change the
daemon's translation came out as one line.
"""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from gateway.core.ledger import InMemoryLedger
from gateway.core.mapping_tables import MappingTable
from gateway.core.rules import RuleContext
from gateway.core.translation import Translation, translate
from gateway.core.validate import validate
from gateway.mapping_files import load_mappings
from gateway.schemas import load_schema_set
from gateway.translator import Translator
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR
from tests.unit.translation.builders import jw301, products, write_folder
from tests.unit.translation.test_daemon_translation import _registry
from tests.unit.translation.test_examples_xsd import (
    WITH_PRODUCTS,
    WITHOUT_PRODUCTS,
    _seed,
    _unique_references,
)

SCHEMAS = load_schema_set([OFFICIAL_XSD_DIR])


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MappingTable:
    return load_mappings(write_folder(tmp_path_factory.mktemp("mappings")))


def _as_lxml_writes_it(raw: bytes) -> bytes:
    """The bytes of a plain blank-keeping parse, written the way translation writes."""
    tree = etree.ElementTree(etree.fromstring(raw))
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _assert_only_codes_changed(raw: bytes, result: Translation) -> None:
    """Same elements, same whitespace everywhere; text differs only where a rewrite says so."""
    before, after = etree.fromstring(raw), etree.fromstring(result.xml)
    # A rewrite names "categorie/code" pairs (or one value, such as an Omvang).
    changed = {
        pair
        for r in result.rewrites
        for pair in zip(r.old.split("/"), r.new.split("/"), strict=True)
    }
    assert changed
    pairs = list(zip(before.iter(), after.iter(), strict=True))
    assert [b.tail for b, _ in pairs] == [a.tail for _, a in pairs]
    for old, new in pairs:
        assert old.tag == new.tag
        if old.text != new.text:
            assert len(old) == 0 and (old.text, new.text) in changed
    # One line per line of the original (lxml writes no line end after the root).
    assert result.xml.count(b"\n") == raw.replace(b"\r\n", b"\n").rstrip().count(b"\n")


@pytest.mark.parametrize("name", WITH_PRODUCTS)
def test_translated_examples_keep_their_layout(table: MappingTable, name: str) -> None:
    raw = _unique_references((EXAMPLES_DIR / f"{name}.xml").read_bytes())
    heen = name in ("JW301", "JW315", "JW317")
    ledger = InMemoryLedger() if heen else _seed(table, raw)
    result = translate(raw, table, to_generation="new", ledger=ledger)
    assert not result.needs_decision
    _assert_only_codes_changed(raw, result)


@pytest.mark.parametrize("name", WITHOUT_PRODUCTS)
def test_examples_without_products_come_out_as_lxml_writes_them(
    table: MappingTable, name: str
) -> None:
    """Byte for byte what a blank-keeping parse writes (what translation wrote before)."""
    raw = (EXAMPLES_DIR / f"{name}.xml").read_bytes()
    result = translate(raw, table, to_generation="new", ledger=InMemoryLedger())
    assert result.xml == _as_lxml_writes_it(raw)


def test_the_daemons_translation_keeps_the_layout(table: MappingTable) -> None:
    """Translator.apply, as the daemon calls it after validation: the delivered bytes are the
    received bytes with the new code, not a copy of validation's blank-free tree."""
    raw = jw301("0384", "77", "45", "45N03", dt.date(2026, 3, 1))
    assert raw.count(b"\n") > 20
    report = validate(raw, SCHEMAS)
    assert report.document is not None
    assert not any(el.tail for el in report.document.root.iter())  # validation's tree is bare
    registry = _registry("new", "old")
    gemeente = registry.get("diemen")
    assert gemeente is not None
    _, record = Translator(table).apply(
        report,
        gemeente,
        registry,
        raw=raw,
        today=dt.date(2026, 5, 1),
        context=RuleContext(today=dt.date(2026, 5, 1)),
        schemas=SCHEMAS,
        ledger=InMemoryLedger(),
        max_bytes=10_000_000,
    )
    assert record is not None and record.translated is not None
    assert products(record.translated) != products(raw)
    expected = translate(raw, table, to_generation="old", ledger=InMemoryLedger())
    assert record.translated == expected.xml
    _assert_only_codes_changed(raw, expected)
