"""Validity dates (code lists, mapping candidates, contract rows) and regional tariffs.

A code only applies on the days its list row is valid: TR381 asks on the day the product's
period begins (else the Dagtekening), candidates only lead to codes valid on the allocation's
day, and a contract row for every provider (``*``) prices a product unless the provider has
its own row; a claim line nobody prices follows ``[lists] missing_tariff``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.contracts import check_contract_table, tariff_gaps
from gateway.core.codes import ProductCodeEntry, ProductCodeList
from gateway.core.lists import (
    ContractTariff,
    ExternalLists,
    InMemoryContracts,
    MissingTariff,
)
from gateway.core.mapping_tables import Product
from gateway.daemon.app import external_lists
from gateway.mapping_files import load_code_list, load_mappings
from gateway.store.base import ClaimedProduct
from tests.paths import REPO
from tests.unit.dossier.scenario import Line, declaratie
from tests.unit.dossier.test_external import APRIL, PRESTATIE, external_codes
from tests.unit.rules.mutate import example_bytes

MAPPINGS = REPO / "mappings"
HEADER = "gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note"
META = "# kind: contracts\n# codes: SYNTHETIC-IJSSELLAND-2018, SYNTHETIC-IJSSELLAND-LEGACY\n"
CODE = "/Bericht/Client/ToegewezenProducten/ToegewezenProduct[{}]/Product/Code"


def dated(valid_from: str | None, valid_to: str | None) -> ProductCodeList:
    """The example JW301's two codes, listed for the given period."""
    start = dt.date.fromisoformat(valid_from) if valid_from else None
    end = dt.date.fromisoformat(valid_to) if valid_to else None
    return ProductCodeList(
        "T",
        tuple(ProductCodeEntry("T", "55", code, None, start, end) for code in ("55A11", "55A12")),
    )


# --- code lists and TR381 --------------------------------------------------------------------


def test_a_2015_only_code_is_valid_in_2015_and_not_in_2026() -> None:
    """The shipped legacy list holds 32/32R01 for 2015 only."""
    legacy = load_code_list(MAPPINGS, "SYNTHETIC-IJSSELLAND-LEGACY")
    assert legacy.belongs("32", "32R01", dt.date(2015, 6, 1))
    assert not legacy.belongs("32", "32R01", dt.date(2026, 4, 1))
    assert not legacy.knows("32R01", dt.date(2016, 1, 1))
    assert legacy.belongs("32", "32R01")  # undated: on the list at all
    assert legacy.validity("32R01") == "2015-01-01..2015-12-31"


def test_tr381_asks_on_the_allocations_ingangsdatum() -> None:
    """The example JW301 (Ingangsdatum 2026-04-01) fails with codes retired before it, passes
    with codes valid from that day, and names the period the code is listed for."""
    raw = example_bytes("JW301")
    retired = ExternalLists(product_codes=dated("2015-01-01", "2015-12-31"))
    assert external_codes(raw, retired) == {
        ("TR381", "S329", CODE.format(1)),
        ("TR381", "S329", CODE.format(2)),
    }
    assert external_codes(raw, ExternalLists(product_codes=dated("2026-04-01", None))) == set()
    assert external_codes(raw, ExternalLists(product_codes=dated("2026-04-02", None))) != set()


def test_tr381_on_a_claim_line_asks_on_its_product_period() -> None:
    """A line of April 2026 needs the code valid on 2026-04-01, not on the Dagtekening."""
    raw = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    ends_in_april = ExternalLists(product_codes=dated(None, "2026-04-15"))
    assert external_codes(raw, ends_in_april) == set()  # retired after the period began
    starts_in_may = ExternalLists(product_codes=dated("2026-05-01", None))
    assert external_codes(raw, starts_in_may) == {("TR381", "S329", f"{PRESTATIE}/ProductCode")}


# --- mapping candidates ----------------------------------------------------------------------


def test_a_2015_only_code_is_no_candidate_for_2026() -> None:
    """IJ01P read back into the legacy generation: the row exists (valid from 2018) but 32R01
    is only valid in 2015, so it is no candidate and explain says why."""
    table = load_mappings(MAPPINGS)
    profile = Product("45", "IJ01P")
    rows = table.rows_for_product("0150", profile, generation="legacy")
    assert Product("32", "32R01") in {c.result for c in rows}
    candidates = table.candidates("0150", profile, dt.date(2026, 4, 1), "legacy")
    assert Product("32", "32R01") not in {c.result for c in candidates}
    assert all(
        table.generations["legacy"].codes.belongs(
            c.result.categorie, c.result.code, dt.date(2026, 4, 1)
        )
        for c in candidates
    )
    explained = {
        why
        for row, applies, why in table.explain("IJ01P", "0150", dt.date(2026, 4, 1))
        if row.source.code == "32R01"
    }
    assert explained == {
        "32/32R01 is not a valid legacy code on 2026-04-01 (listed for 2015-01-01..2015-12-31)"
    }


# --- regional tariffs ------------------------------------------------------------------------


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "contracts.csv"
    path.write_text(META + HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_row_for_every_provider_and_a_providers_own_row(tmp_path: Path) -> None:
    """``*`` prices the product for every provider; a provider's own row valid that day wins,
    and outside its validity the regional row applies again."""
    table, problems = check_contract_table(
        write(
            tmp_path,
            "IJSSELLAND,*,45,IJ09I,04,9000,2018-01-01,,region",
            "0150,42420001,45,IJ09I,04,9500,2026-01-01,2026-06-30,own",
        ),
        MAPPINGS,
    )
    assert problems == [] and table is not None
    assert table.tariff("0193", "87654321", "45", "IJ09I", dt.date(2026, 4, 1)) == ContractTariff(
        9000, "04"
    )
    assert table.tariff("0150", "42420001", "45", "IJ09I", dt.date(2026, 4, 1)) == ContractTariff(
        9500, "04"
    )
    assert table.tariff("0150", "42420001", "45", "IJ09I", dt.date(2026, 7, 1)) == ContractTariff(
        9000, "04"
    )
    assert table.tariff("0150", "42420001", "45", "IJ09I", dt.date(2017, 12, 31)) is None


def test_overlapping_rows_for_every_provider_are_an_error(tmp_path: Path) -> None:
    found = check_contract_table(
        write(
            tmp_path,
            "IJSSELLAND,*,45,IJ09I,04,9000,2018-01-01,,region",
            "0150,*,45,IJ09I,04,9100,2025-01-01,,again for one member",
        ),
        MAPPINGS,
    )[1]
    assert [f"{p.line}: {p.message}" for p in found] == [
        "5: 45/IJ09I for gemeente 0150 and every provider (*) overlaps line 4"
    ]


def test_a_row_outside_its_codes_validity_is_an_error(tmp_path: Path) -> None:
    """32R01 is listed for 2015 only: a tariff from 2018 prices nothing."""
    found = check_contract_table(
        write(tmp_path, "0150,*,32,32R01,04,5000,2018-01-01,,never valid"), MAPPINGS
    )[1]
    assert [f"{p.line}: {p.message}" for p in found] == [
        "4: code '32R01' is listed for 2015-01-01..2015-12-31: no day of the row's validity "
        "2018-01-01..…"
    ]
    assert (
        check_contract_table(
            write(tmp_path, "0150,*,32,32R01,04,5000,2015-01-01,2015-12-31,ok"), MAPPINGS
        )[1]
        == []
    )


# --- missing tariff policy -------------------------------------------------------------------

PRICED = InMemoryContracts(
    {("0384", "*", "55", "55A11"): ((None, None, ContractTariff(1250, "04")),)}
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MissingTariff.WARN, set()),
        (MissingTariff.REJECT, {("TR418", "0611", f"{PRESTATIE}[2]/ProductTarief")}),
    ],
)
def test_a_line_without_a_tariff_follows_the_policy(
    policy: MissingTariff, expected: set[tuple[str, str, str]]
) -> None:
    """Line 1 is priced by the ``*`` row; line 2 (55A12) by nothing."""
    raw = declaratie(
        "D1", APRIL, "2026-05-05", Line("R1", *APRIL), Line("R2", *APRIL, code="55A12")
    )
    lists = ExternalLists(contracts=PRICED, missing_tariff=policy)
    assert external_codes(raw, lists) == expected


def test_the_policy_comes_from_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    shipped = MAPPINGS / "contracts" / "SYNTHETIC_contracts_ijsselland.csv"
    config.write_text(
        f'[paths]\nmappings = "{MAPPINGS}"\n[lists]\ncontracts = "{shipped}"\n'
        'missing_tariff = "reject"\n',
        encoding="utf-8",
    )
    assert external_lists(load_config(config, {})).missing_tariff is MissingTariff.REJECT
    config.write_text(f'[paths]\nmappings = "{MAPPINGS}"\n', encoding="utf-8")
    assert load_config(config, {}).missing_tariff is MissingTariff.WARN
    config.write_text('[lists]\nmissing_tariff = "ignore"\n', encoding="utf-8")
    with pytest.raises(Exception, match="missing_tariff"):
        load_config(config, {})


def test_tariff_gaps_per_provider_and_month() -> None:
    """Counted per aanbieder, month and gemeente; priced and euro lines are left out."""
    april, may = dt.date(2026, 4, 1), dt.date(2026, 5, 1)
    claimed = [
        ClaimedProduct("0384", "42420001", "55", "55A11", "04", april, 3),  # priced by *
        ClaimedProduct("0384", "42420001", "55", "55A12", "16", april, 2),
        ClaimedProduct("0384", "42420001", "55", "55A12", "16", dt.date(2026, 4, 12), 1),
        ClaimedProduct("0384", "42420001", "55", "55A12", "16", may, 4),
        ClaimedProduct("0384", "65656055", "55", "55A12", "83", april, 9),  # euro
    ]
    gaps = [
        (g.aanbieder, g.month, g.gemeente, g.code, g.lines) for g in tariff_gaps(claimed, PRICED)
    ]
    assert gaps == [
        ("42420001", "2026-04", "0384", "55A12", 3),
        ("42420001", "2026-05", "0384", "55A12", 4),
    ]
