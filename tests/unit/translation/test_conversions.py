"""Declared conversions: strict loading with file:line, and the pure translation of the
conversation across a unit change (old 45A50 hours per week <-> new 45Q02 one trajectory per
month; fixtures in conversions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.contracts import load_contract_table
from gateway.core.ledger import InMemoryLedger, LedgerKey
from gateway.core.lists import ContractTable
from gateway.core.mapping_tables import MappingTable
from gateway.core.translation import translate
from gateway.mapping_files import check_mappings, load_mappings
from tests.unit.translation.builders import jw301, set_text, to_bytes, write_folder
from tests.unit.translation.conversions import (
    BEGIN,
    CONVERSION,
    DIEMEN,
    HOURLY,
    HOURS,
    PROVIDER,
    REFERENTIE,
    TRAJECTORY_TARIFF,
    allocation,
    answer,
    claim,
    jw315,
    line_figures,
    omvang,
    totals,
    translate_recorded,
    write_conversions,
)

FIRST_ROW = 5  # after '# kind', '# from', '# to' and the header


def _problems(tmp_path: Path, rows: str) -> list[str]:
    folder = write_folder(tmp_path / "mappings")
    write_conversions(folder, rows)
    table, problems = check_mappings(folder)
    assert table is None
    return [f"{Path(p.file).name}:{p.line}: {p.message}" for p in problems]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (CONVERSION.replace(",04,2,82,", ",05,2,82,"), "source_eenheid '05' is not in WJ756"),
        (CONVERSION.replace(",04,2,82,", ",04,3,82,"), "source_frequentie '3' is not in WMO757"),
        (CONVERSION.replace(",contract,", ",,"), "claim needs a tariff source"),
        (CONVERSION.replace(",per-month,contract,", ",,contract,"), "tariff without claim"),
        (CONVERSION.replace(",1,per-month,", ",x2,per-month,"), "per-month needs a fixed volume"),
        (CONVERSION.replace(",82,4,", ",82,6,"), "per-month needs target_frequentie 4"),
        (CONVERSION.replace(",04,2,82,", ",04,2,01,"), "contradict"),
        (CONVERSION.replace("45A50", "45A03"), "no mapping row 45/45A03 -> 45/45Q02"),
        (CONVERSION.replace(",1,per-month,", ",0,per-month,"), "volume '0'"),
        (CONVERSION.replace(",per-month,", ",monthly,"), "claim 'monthly'"),
        (CONVERSION + CONVERSION, "old_to_new.csv:5: two conversions for 45/45A50"),
    ],
)
def test_a_broken_conversion_is_reported_with_file_and_line(
    tmp_path: Path, row: str, expected: str
) -> None:
    problems = _problems(tmp_path, row)
    line = FIRST_ROW + row.count("\n") - 1  # the last row is the broken one
    assert any(p.startswith(f"old_to_new.csv:{line}: ") and expected in p for p in problems), (
        problems
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[MappingTable, ContractTable]:
    root = write_folder(tmp_path_factory.mktemp("conversions") / "mappings")
    contracts = write_conversions(root)
    return load_mappings(root), load_contract_table(contracts, root)


def _conversation(folder: tuple[MappingTable, ContractTable]) -> tuple[InMemoryLedger, bytes]:
    """JW315, JW301 and JW323 translated in turn; returns the ledger and Diemen's JW323."""
    ledger = InMemoryLedger()
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    assert omvang(translate_recorded(request, "new", ledger, folder).xml, "AangevraagdProduct") == (
        "1",
        "82",
        "4",
    )
    back = translate_recorded(allocation(), "old", ledger, folder)
    assert omvang(back.xml, "ToegewezenProduct") == ("4", "04", "2")
    declared = translate_recorded(claim(), "new", ledger, folder)
    assert not declared.needs_decision, declared.undecided
    return ledger, declared.xml


def test_an_accepted_answer_goes_back_with_the_totals_as_declared(
    folder: tuple[MappingTable, ContractTable],
) -> None:
    ledger, delivered = _conversation(folder)
    (line,) = ledger.claim_lines(DIEMEN, PROVIDER, "DN001")
    assert (line.sent.bedrag, line.delivered.bedrag) == (HOURS * HOURLY, TRAJECTORY_TARIFF)
    # Fully accepted (IV087): no clients, 8001, granted = submitted, in Diemen's terms.
    tree = etree.fromstring(answer(delivered)).getroottree()
    root = tree.getroot()
    clients = next(root.iter("{*}Clienten"))
    clients.getparent().remove(clients)  # type: ignore[union-attr]
    set_text(root, "DeclaratieAntwoord/TotaalToegekendBedrag/TotaalBedrag", str(TRAJECTORY_TARIFF))
    codes = next(root.iter("{*}DeclaratieAntwoord")).find("{*}RetourCodes")
    if codes is not None:
        codes[0].text = "8001"
    result = translate_recorded(to_bytes(tree), "old", ledger, folder)
    assert not result.needs_decision, result.undecided
    declared = str(HOURS * HOURLY)
    assert totals(result.xml) == {
        "TotaalIngediendBedrag": (declared, "D"),
        "TotaalToegekendBedrag": (declared, "D"),
    }


def test_a_second_line_in_the_same_month_is_held(
    folder: tuple[MappingTable, ContractTable],
) -> None:
    ledger, _ = _conversation(folder)
    tree = etree.fromstring(claim()).getroottree()
    line = next(tree.getroot().iter("{*}Prestatie"))
    second = etree.fromstring(etree.tostring(line))
    set_text(second, "ProductReferentie/ReferentieNummer", "RN-TWIN")
    line.addnext(second)
    result = translate_recorded(to_bytes(tree), "new", ledger, folder)
    assert result.needs_decision and not result.new_claim_lines
    assert "one per month" in result.undecided[0].reason


def test_a_line_without_a_contract_tariff_is_held(
    folder: tuple[MappingTable, ContractTable],
) -> None:
    ledger, _ = _conversation(folder)
    result = translate(claim(), folder[0], to_generation="new", ledger=ledger, contracts=None)
    assert result.needs_decision and not result.new_claim_lines
    assert "no contract tariff for 45/45Q02" in result.undecided[0].reason


def test_a_trajectory_allocation_without_the_providers_hours_is_held(
    folder: tuple[MappingTable, ContractTable],
) -> None:
    """A fixed volume cannot be divided back: without a request there are no hours to give."""
    raw = jw301(DIEMEN, "70002", "45", "45Q02", BEGIN, eenheid="82", volume="1")
    # The example's Frequentie is 2 (per week): not what the conversion reads on this side.
    held = translate_recorded(raw, "old", InMemoryLedger(), folder)
    assert held.needs_decision and "Frequentie 2" in held.undecided[0].reason
    result = translate_recorded(
        raw.replace(b"Frequentie>2<", b"Frequentie>4<"), "old", InMemoryLedger(), folder
    )
    assert result.needs_decision and not result.new_entries
    assert "needs the source-side Omvang" in result.undecided[0].reason


def test_hours_allocated_in_old_codes_convert_but_trajectories_are_not_declared_back(
    folder: tuple[MappingTable, ContractTable],
) -> None:
    """A legacy gemeente and a provider on trajectories: the allocation converts forward; a
    trajectory line cannot be read back into hours, so it is held, not guessed."""
    ledger = InMemoryLedger()
    raw = jw301("0193", "70003", "45", "45A50", BEGIN, eenheid="04", volume="4")
    tree = etree.fromstring(raw).getroottree()
    set_text(next(tree.getroot().iter("{*}ToegewezenProduct")), "Omvang/Frequentie", "2")
    allocated = translate_recorded(to_bytes(tree), "new", ledger, folder)
    assert omvang(allocated.xml, "ToegewezenProduct") == ("1", "82", "4")
    entry = ledger.get(LedgerKey.allocation("0193", "70003"))
    assert entry is not None and entry.source_omvang is not None
    tree = etree.fromstring(claim()).getroottree()
    root = tree.getroot()
    set_text(root, "Header/Ontvanger", "0193")
    line = next(root.iter("{*}Prestatie"))
    for path, value in (("ToewijzingNummer", "70003"), ("ProductCode", "45Q02")):
        set_text(line, path, value)
    for path, value in (("GeleverdVolume", "1"), ("Eenheid", "82")):
        set_text(line, path, value)
    result = translate_recorded(to_bytes(tree), "old", ledger, folder)
    assert result.needs_decision and "cannot be read back" in result.undecided[0].reason
    assert line_figures(to_bytes(tree))["ProductCode"] == "45Q02"
