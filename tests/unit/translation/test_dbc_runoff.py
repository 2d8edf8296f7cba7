"""DBC run-off in the flow, on the shipped tables and the region's transition (2018-01-01).

A legacy provider's request, start or declaration for a running jeugd-GGZ DBC (a DBC key does
not fit in a ProductCode, so it travels as 54/54002) maps to the run-off product IJ05U only when
the DBC, opened on the allocation's start, can still run at the transition: a DBC closes after
at most 365 days.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from gateway.core.document import find
from gateway.core.ledger import InMemoryLedger, LedgerKey
from gateway.core.mapping_tables import MappingTable, Product, SourceKind, dbc_running_at
from gateway.core.translation import DBC_CLOSED_RETOURCODE, translate
from gateway.mapping_files import check_mappings, load_mappings
from gateway.shipped import SHIPPED_MAPPINGS
from tests.unit.translation.builders import (
    ROWS,
    example,
    follow_up,
    jw323,
    products,
    set_text,
    to_bytes,
    write_folder,
)

ZWOLLE = "0193"
TRANSITION = dt.date(2018, 1, 1)
DBC_PRODUCT = ("54", "54002")
RUNOFF = ("54", "IJ05U")


@pytest.fixture(scope="module")
def table() -> MappingTable:
    return load_mappings(SHIPPED_MAPPINGS)


def start(opened: dt.date, begin: dt.date, nummer: str = "7001") -> bytes:
    """A JW305 for an allocation that began when the DBC opened, started on ``begin``."""
    tree_bytes = follow_up("JW305", ZWOLLE, nummer, *DBC_PRODUCT, opened)
    root = etree.fromstring(tree_bytes)
    line = next(root.iter("{*}StartProduct"))
    set_text(line, "Begindatum", begin.isoformat())
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", begin.isoformat())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def request(opened: dt.date, reference: str = "DBC-7001") -> bytes:
    """A JW315 asking to continue the allocation the DBC began under on ``opened``."""
    tree = example("JW315")
    root = tree.getroot()
    set_text(root, "Header/Ontvanger", ZWOLLE)
    set_text(root, "Header/BerichtIdentificatie/Dagtekening", "2018-01-10")
    asked = list(root.iter("{*}AangevraagdProduct"))
    for extra in asked[1:]:
        extra.getparent().remove(extra)  # type: ignore[union-attr]
    set_text(asked[0], "ReferentieAanbieder", reference)
    set_text(asked[0], "Product/Categorie", DBC_PRODUCT[0])
    set_text(asked[0], "Product/Code", DBC_PRODUCT[1])
    set_text(asked[0], "ToewijzingIngangsdatum", opened.isoformat())
    return to_bytes(tree)


def declaration(nummer: str, month_start: dt.date) -> bytes:
    """A JW323 whose lines all declare ``nummer`` for the month beginning ``month_start``."""
    root = etree.fromstring(jw323(ZWOLLE, nummer, *DBC_PRODUCT))
    for line in root.iter("{*}Prestatie"):
        period = find(line, "ProductPeriode")
        assert period is not None
        set_text(period, "Begindatum", month_start.isoformat())
        set_text(period, "Einddatum", month_start.replace(day=28).isoformat())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_running_at_is_365_days_before_the_transition() -> None:
    """Opened on or after transition - 365 days, and before the transition."""
    assert dbc_running_at(dt.date(2017, 1, 1), TRANSITION)  # exactly 365 days before
    assert not dbc_running_at(dt.date(2016, 12, 31), TRANSITION)  # 366 days
    assert dbc_running_at(dt.date(2017, 12, 31), TRANSITION)
    assert not dbc_running_at(TRANSITION, TRANSITION)  # no DBC opens at the transition


def test_shipped_runoff_rows_cover_only_dbcs_opened_in_2017(table: MappingTable) -> None:
    """Every demo DBC row's band is 2017; a DBC opened in 2016 has no run-off row."""
    dbc_rows = table.dbc_rows(ZWOLLE)
    assert len(dbc_rows) == 8
    assert {(r.dbc_opened_from, r.dbc_opened_to) for r in dbc_rows} == {
        (dt.date(2017, 1, 1), dt.date(2017, 12, 31))
    }
    runoff = table.runoff(
        ZWOLLE, SourceKind.DECLARATIECODE, "999903", dt.date(2016, 6, 1), TRANSITION
    )
    assert runoff == ()


def test_start_for_a_dbc_opened_in_march_2017_maps_to_runoff_and_records_the_pair(
    table: MappingTable,
) -> None:
    """A 2018 start, then the 2018 declaration through the ledger, then the retour back."""
    ledger = InMemoryLedger()
    started = translate(
        start(dt.date(2017, 3, 1), dt.date(2018, 1, 15)),
        table,
        to_generation="profile-2018",
        ledger=ledger,
    )
    assert not started.needs_decision and not started.refused
    assert products(started.xml) == [RUNOFF]
    [entry] = started.new_entries
    assert entry.key == LedgerKey.allocation(ZWOLLE, "7001")
    assert (entry.original, entry.translated) == (Product(*DBC_PRODUCT), Product(*RUNOFF))
    assert "DBC opened 2017-03-01" in entry.basis
    ledger.record(entry)

    declared = translate(
        declaration("7001", dt.date(2018, 2, 1)), table, to_generation="profile-2018", ledger=ledger
    )
    assert not declared.needs_decision
    assert set(products(declared.xml)) == {RUNOFF}
    assert declared.new_entries == ()

    retour = translate(
        started.xml.replace(b"jw305", b"jw306"),
        table,
        to_generation="legacy",
        ledger=ledger,
    )
    assert products(retour.xml) == [DBC_PRODUCT]


@pytest.mark.parametrize(
    ("opened", "runs"),
    [
        (dt.date(2017, 1, 1), True),  # exactly 365 days before the transition
        (dt.date(2016, 12, 31), False),  # 366 days: closed on 2017-12-30 at the latest
        (dt.date(2017, 12, 31), True),
        (dt.date(2016, 6, 1), False),
    ],
)
def test_start_boundaries(table: MappingTable, opened: dt.date, runs: bool) -> None:
    """Run-off for a DBC opened within 365 days before the transition, else a refusal."""
    result = translate(
        start(opened, dt.date(2018, 1, 15)),
        table,
        to_generation="profile-2018",
        ledger=InMemoryLedger(),
    )
    if runs:
        assert products(result.xml) == [RUNOFF]
        assert not result.needs_decision and not result.refused
        return
    assert products(result.xml) == [DBC_PRODUCT]
    assert result.needs_decision and result.new_entries == ()
    [refusal] = result.refused
    assert refusal.retourcode == DBC_CLOSED_RETOURCODE == "S329"
    assert f"DBC opened {opened} closed before the transition 2018-01-01" in refusal.reason
    assert refusal.reason in str(result.undecided[0])


def test_request_for_a_running_dbc_maps_to_runoff(table: MappingTable) -> None:
    """A JW315 for a DBC opened 2017-03-01: IJ05U under the request key."""
    result = translate(
        request(dt.date(2017, 3, 1)), table, to_generation="profile-2018", ledger=InMemoryLedger()
    )
    assert products(result.xml) == [RUNOFF]
    assert [e.key for e in result.new_entries] == [LedgerKey.request(ZWOLLE, "DBC-7001")]


def test_request_for_a_closed_dbc_is_refused(table: MappingTable) -> None:
    """A JW315 for a DBC opened 2016-06-01: refused, nothing recorded."""
    result = translate(
        request(dt.date(2016, 6, 1)), table, to_generation="profile-2018", ledger=InMemoryLedger()
    )
    assert products(result.xml) == [DBC_PRODUCT]
    assert result.refused and result.needs_decision and result.new_entries == ()


def test_declaration_without_a_recorded_pair_waits(table: MappingTable) -> None:
    """A JW323 line names no allocation start, so without the start's pair it cannot be judged."""
    result = translate(
        declaration("7002", dt.date(2018, 2, 1)),
        table,
        to_generation="profile-2018",
        ledger=InMemoryLedger(),
    )
    assert result.needs_decision and not result.refused
    assert "names no allocation start" in result.undecided[0].reason
    assert set(products(result.xml)) == {DBC_PRODUCT}


def test_start_before_the_transition_is_dbc_era(table: MappingTable) -> None:
    """A start within 2017 is before the transition: left as it is."""
    result = translate(
        start(dt.date(2017, 3, 1), dt.date(2017, 3, 1)),
        table,
        to_generation="profile-2018",
        ledger=InMemoryLedger(),
    )
    assert products(result.xml) == [DBC_PRODUCT]
    assert not result.needs_decision and "DBC era" in result.kept[0].reason


@pytest.mark.parametrize(
    ("band", "expected"),
    [
        (
            "2018-12-31,2019-12-31",
            "dbc_opened_from 2018-12-31 is more than 365 days before the cut-over 2020-01-01",
        ),
        ("2019-06-01,2020-01-01", "dbc_opened_to 2020-01-01 is not before the cut-over"),
        ("2019-06-01,2019-03-01", "dbc_opened_to 2019-03-01 is before dbc_opened_from"),
    ],
)
def test_loader_keeps_dbc_bands_inside_the_365_days(
    tmp_path: Path, band: str, expected: str
) -> None:
    """Cut-over 2020-01-01 : the earliest running DBC opened 2019-01-01."""
    rows = ROWS.replace("2019-01-01,2019-12-31", band)
    assert rows != ROWS
    _, problems = check_mappings(write_folder(tmp_path, rows))
    assert any(expected in str(p) for p in problems), [str(p) for p in problems]
