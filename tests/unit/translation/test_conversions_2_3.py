"""Declared conversions in iJw 2.3: a JW303 line of legacy hours reaches the gemeente as one
trajectory at the contract's price, its VAT and the invoice totals recomputed, and the JW304
goes back in the provider's terms (fixtures in conversions.py, 2.3 JW303 from the official
example). Every message the translation writes is valid against the 2.3 reference XSD and
passes the 2.3 in-message rules, BVO002 (totals) among them."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from gateway.contracts import load_contract_table
from gateway.core.ledger import InMemoryLedger
from gateway.core.lists import ContractTable
from gateway.core.mapping_tables import MappingTable
from gateway.core.report import Finding, Level
from gateway.core.retour import RetourIdentity, build_retour
from gateway.core.validate import validate
from gateway.mapping_files import load_mappings
from tests.unit.translation.builders import set_text, to_bytes, write_folder
from tests.unit.translation.conversions import (
    BEGIN,
    DIEMEN,
    FIGURES_2_3,
    HOURLY,
    HOURS,
    INVOICE,
    PROVIDER,
    REFERENTIE,
    TRAJECTORY_TARIFF,
    allocation,
    claim_2_3,
    figures_2_3,
    jw315,
    translate_recorded,
    write_conversions,
)
from tests.unit.translation.test_translate_2_3 import REFERENCE_2_3

Folder = tuple[MappingTable, ContractTable]
DECLARED = HOURS * HOURLY  # 127500: 17 hours at 75.00


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    root = write_folder(tmp_path_factory.mktemp("conversions") / "mappings")
    contracts = write_conversions(root)
    return load_mappings(root), load_contract_table(contracts, root)


def _allocated(folder: Folder) -> InMemoryLedger:
    """The pair of allocation 70001: the provider's request in hours, Diemen's trajectory."""
    ledger = InMemoryLedger()
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    for raw, to in ((request, "new"), (allocation(), "old")):
        assert not translate_recorded(raw, to, ledger, folder).needs_decision
    return ledger


def _valid_2_3(xml: bytes) -> None:
    """Valid against the 2.3 reference XSD, and no in-message rule (BVO002 included) fails."""
    report = validate(xml, REFERENCE_2_3)
    assert report.level is Level.OK, report.findings


@pytest.mark.parametrize(
    ("btw_percentage", "btw"),
    [
        (None, None),  # exempt: no VAT
        (2100, 51450),  # 21 % of 245000
        (2101, 51475),  # 21.01 % of 245000 is 51474.5: half a cent rounds up
    ],
)
def test_a_jw303_line_reaches_the_gemeente_as_a_trajectory_with_its_vat(
    folder: Folder, btw_percentage: int | None, btw: int | None
) -> None:
    ledger = _allocated(folder)
    sent = claim_2_3(btw_percentage)
    _valid_2_3(sent)

    result = translate_recorded(sent, "new", ledger, folder)

    assert not result.needs_decision, result.undecided
    invoiced = TRAJECTORY_TARIFF + (btw or 0)
    expected = {
        "ProductCode": "45Q02",
        "GeleverdVolume": "1",
        "Eenheid": "82",
        "ProductTarief": str(TRAJECTORY_TARIFF),
        "BerekendBedrag": str(TRAJECTORY_TARIFF),
        "DeclaratieFactuurBedrag": str(invoiced),
        "DeclaratieFactuurTotaalBedrag": str(invoiced),
    }
    if btw is not None:
        expected |= {
            "BtwPercentage": str(btw_percentage),
            "BtwBedrag": str(btw),
            "BtwTotaalBedrag": str(btw),
        }
    assert figures_2_3(result.xml) == expected
    _valid_2_3(result.xml)
    (line,) = result.new_claim_lines
    assert (line.aanbieder, line.declaratie, line.toewijzing) == (PROVIDER, INVOICE, "70001")
    assert line.sent.claimed == DECLARED + (
        0 if btw_percentage is None else (DECLARED * btw_percentage + 5_000) // 10_000
    )
    assert (line.delivered.btw_bedrag, line.delivered.claimed) == (btw, invoiced)


def _edit_figures(raw: bytes, **values: str | None) -> bytes:
    """The JW303's line with these IngediendeBedragPrestatie fields set (None: removed; a
    missing Verrekenpercentage is added after Eenheid, where the XSD has it)."""
    tree = etree.fromstring(raw).getroottree()
    figures = next(tree.getroot().iter("{*}" + FIGURES_2_3))
    for name, value in values.items():
        found = figures.find("{*}" + name)
        if found is None:
            eenheid = figures.find("{*}Eenheid")
            assert eenheid is not None and name == "Verrekenpercentage"
            found = etree.Element(etree.QName(etree.QName(eenheid).namespace, name))
            eenheid.addnext(found)
        if value is None:
            figures.remove(found)
        else:
            found.text = value
    return to_bytes(tree)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            {"BtwPercentage": None, "BtwBedrag": None},  # not exempt, but no rate
            "names no BtwPercentage",
        ),
        ({"BtwVrijstellingIndicatie": "1"}, "BtwVrijstellingIndicatie 1 (exempt) with"),
        ({"BtwBedrag": None}, "without a BtwBedrag to state the converted VAT in"),
        ({"Verrekenpercentage": "8000"}, "Verrekenpercentage 8000"),
    ],
)
def test_a_jw303_line_whose_vat_fields_do_not_tell_the_converted_vat_is_held(
    folder: Folder, edit: dict[str, str | None], reason: str
) -> None:
    ledger = _allocated(folder)
    sent = _edit_figures(claim_2_3(2100), **edit)

    result = translate_recorded(sent, "new", ledger, folder)

    assert result.needs_decision and not result.new_claim_lines
    (held,) = result.undecided
    assert reason in held.reason and held.key == f"{DIEMEN}/toewijzing/70001"


def _answer(delivered: bytes, *, refuse: bool = False) -> bytes:
    """Diemen's JW304 to the JW303 as it received it, from the gateway's own 2.3 retour
    builder: granting the line, or refusing it (0611)."""
    report = validate(delivered, REFERENCE_2_3)
    assert report.document is not None
    line = "/Bericht/Clienten/Client/Prestaties/Prestatie"
    findings = (
        (Finding("TR611", "refused", retourcode="0611", path=line, level=Level.EXTERNAL),)
        if refuse
        else ()
    )
    identity = RetourIdentity("0384", dt.date(2026, 4, 20))
    return build_retour(report.document, findings, identity, REFERENCE_2_3)


def _valid_jw304(xml: bytes) -> None:
    schema = REFERENCE_2_3.get("2.3", "JW304")
    assert schema is not None
    schema.xsd.assertValid(etree.ElementTree(etree.fromstring(xml)))


def test_the_jw304_granting_a_converted_line_goes_back_as_declared(folder: Folder) -> None:
    ledger = _allocated(folder)
    sent = claim_2_3(2100)
    delivered = translate_recorded(sent, "new", ledger, folder).xml
    answer = _answer(delivered)
    assert figures_2_3(answer)["ToegekendBedrag"] == str(TRAJECTORY_TARIFF + 51450)

    result = translate_recorded(answer, "old", ledger, folder)

    assert not result.needs_decision, result.undecided
    declared = figures_2_3(sent)
    back = figures_2_3(result.xml)
    for name in ("ProductCode", "GeleverdVolume", "Eenheid", "ProductTarief", "BerekendBedrag"):
        assert back[name] == declared[name]
    invoiced = declared["DeclaratieFactuurBedrag"]
    assert (back["BtwBedrag"], back["DeclaratieFactuurBedrag"]) == (
        declared["BtwBedrag"],
        invoiced,
    )
    assert back["GemeenteBerekendBedrag"] == back["ToegekendBedrag"] == invoiced
    assert back["IngediendTotaalBedrag"] == back["ToegekendTotaalBedrag"] == invoiced
    _valid_jw304(result.xml)


def test_the_jw304_refusing_a_converted_line_grants_nothing_of_what_was_declared(
    folder: Folder,
) -> None:
    ledger = _allocated(folder)
    delivered = translate_recorded(claim_2_3(), "new", ledger, folder)
    assert not delivered.needs_decision, delivered.undecided
    answer = _answer(delivered.xml, refuse=True)
    assert figures_2_3(answer)["GemeenteBerekendBedrag"] == str(TRAJECTORY_TARIFF)

    result = translate_recorded(answer, "old", ledger, folder)

    assert not result.needs_decision, result.undecided
    back = figures_2_3(result.xml)
    assert (back["ProductCode"], back["GeleverdVolume"], back["Eenheid"]) == ("45A50", "17", "04")
    assert back["DeclaratieFactuurBedrag"] == back["GemeenteBerekendBedrag"] == str(DECLARED)
    assert back["ToegekendBedrag"] == back["ToegekendTotaalBedrag"] == "0"
    assert back["IngediendTotaalBedrag"] == str(DECLARED)
    _valid_jw304(result.xml)


def test_a_jw304_granting_part_of_a_converted_line_is_held(folder: Folder) -> None:
    """A part of one trajectory has no counterpart in hours: not guessed."""
    ledger = _allocated(folder)
    answer = _answer(translate_recorded(claim_2_3(), "new", ledger, folder).xml)
    tree = etree.fromstring(answer).getroottree()
    set_text(next(tree.getroot().iter("{*}ToegekendBedrag")), "Bedrag", "100000")

    result = translate_recorded(to_bytes(tree), "old", ledger, folder)

    assert result.needs_decision
    (held,) = result.undecided
    assert "ToegekendBedrag 100000 is neither 0 nor the converted line's 245000" in held.reason
