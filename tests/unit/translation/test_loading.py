"""Strict loading of mapping folders: every problem with its file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.core.mapping_tables import Product, SourceKind
from gateway.mapping_files import MappingError, check_mappings, load_mappings
from gateway.shipped import SHIPPED_MAPPINGS
from tests.unit.translation.builders import HEADER, ROWS, write_folder

TABLE_FILE = "old_to_new.csv"
FIRST_ROW_LINE = 6  # four '#' lines and the header come first


def problems_of(folder: Path) -> list[str]:
    table, problems = check_mappings(folder)
    assert (table is None) == bool(problems)
    return [str(p) for p in problems]


def test_shipped_mappings_load_without_problems() -> None:
    """The shipped folder loads strictly and holds both synthetic sets."""
    table = load_mappings(SHIPPED_MAPPINGS)
    assert {s.name for s in table.sets} == {
        "SYNTHETIC_legacy_to_profile-2018",
        "SYNTHETIC_profile-2018_to_pxq-2023",
    }
    assert all(s.synthetic for s in table.sets)
    assert set(table.generations) == {"legacy", "profile-2018", "pxq-2023"}


def test_shipped_jz21_list_checks_code_against_category() -> None:
    """The legacy generation carries JZ21 (TR381): 45A48 is category 45, not 43; 54xxx known."""
    codes = load_mappings(SHIPPED_MAPPINGS).generations["legacy"].codes
    assert codes.belongs("45", "45A48")
    assert not codes.belongs("43", "45A48")
    assert codes.belongs("54", "54002")
    assert not codes.knows("40A00")  # a section header of the sheet, not a product
    assert not codes.knows("IJ01P")


def test_shipped_dbc_rows_give_the_runoff_code() -> None:
    """A demo DBC opened in 2017 and open at the cut-over continues as IJ05U."""
    table = load_mappings(SHIPPED_MAPPINGS)
    rows = table.runoff(
        "0193", SourceKind.DECLARATIECODE, "999903", dt.date(2017, 6, 1), dt.date(2018, 1, 1)
    )
    assert [r.target for r in rows] == [Product("54", "IJ05U")]
    assert (
        table.runoff(
            "0193", SourceKind.DECLARATIECODE, "999903", dt.date(2018, 2, 1), dt.date(2018, 2, 1)
        )
        == ()
    )
    assert (
        table.runoff(
            "0363", SourceKind.DECLARATIECODE, "999903", dt.date(2017, 6, 1), dt.date(2018, 1, 1)
        )
        == ()
    )  # Amsterdam is not in the region


def test_valid_demo_folder_loads(tmp_path: Path) -> None:
    """The builders' folder is valid, so each error test below changes exactly one thing."""
    table = load_mappings(write_folder(tmp_path))
    assert len(table.rows) == ROWS.count("\n")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "DEMO,product,45,45A03,,,45,45N04,2021-01-01,,,,,no,dup\n",
            "overlaps {table}:8 for gemeente 0193, source 45/45A03",
        ),
        (
            "DEMO,product,99,45A03,,,45,45N04,2021-01-01,,,,,no,x\n",
            "source_categorie '99' is not a productcategorie (JZ020)",
        ),
        (
            "DEMO,product,45,45A03,,,45,45X99,2021-01-01,,,,,no,x\n",
            "target 45/45X99 is not in the code list of generation 'new'",
        ),
        (
            "DEMO,product,45,45Z99,,,45,45N04,2021-01-01,,,,,no,x\n",
            "source 45/45Z99 is not in the code list of generation 'old'",
        ),
        ("DEMO,product,45,45A03,,,45,45N04,2021-01-01\n", "9 fields, the header has 15"),
        (
            "DEMO,product,45,45A03,,,45,45N04,2021-13-01,,,,,no,x\n",
            "valid_from '2021-13-01' is not a date",
        ),
        (
            "NOWHERE,product,45,45A03,,,45,45N04,2021-01-01,,,,,no,x\n",
            "scope 'NOWHERE' is neither a 4-digit gemeentecode nor a region",
        ),
        (
            "0193,product,45,45A03,,,45,45N04,2019-06-01,2019-12-31,,,,no,x\n",
            "is before the cut-over 2020-01-01",
        ),
        (
            "0193,declaratiecode,54,999904,,,45,45N04,2020-01-01,,,,,no,x\n",
            "a DBC row needs dbc_opened_from and dbc_opened_to",
        ),
        (
            "0193,product,45,45A03,,,45,45N04,2020-01-01,,04,,,no,x\n",
            "give both unit_from and unit_to, or neither",
        ),
        (
            "0193,product,45,45A03,,,45,45N04,2020-01-01,,04,99,,no,x\n",
            "unit_to '99' is not in WJ756",
        ),
        (
            "0193,product,45,45A03,,,45,45N04,2020-01-01,,,,,maybe,x\n",
            "needs_decision 'maybe': yes or no",
        ),
    ],
)
def test_broken_rows_are_reported_with_file_and_line(
    tmp_path: Path, row: str, expected: str
) -> None:
    """Each kind of broken row is named, at the row's own line."""
    folder = write_folder(tmp_path, ROWS + row)
    table_path = tmp_path / "tables" / TABLE_FILE
    line = FIRST_ROW_LINE + ROWS.count("\n")
    problems = problems_of(folder)
    assert any(
        p.startswith(f"{table_path}:{line}: ") and expected.format(table=table_path) in p
        for p in problems
    ), problems
    with pytest.raises(MappingError, match=f"{TABLE_FILE}:{line}"):
        load_mappings(folder)


def test_one_to_many_rows_may_overlap_only_when_all_need_a_decision(tmp_path: Path) -> None:
    """Two overlapping rows for 45A48 are fine while both say needs_decision = yes."""
    assert problems_of(write_folder(tmp_path / "ok")) == []
    flipped = ROWS.replace("45P02,2020-01-01,,,,,yes", "45P02,2020-01-01,,,,,no")
    problems = problems_of(write_folder(tmp_path / "bad", flipped))
    assert len(problems) == 1
    assert "overlaps" in problems[0] and "45/45A48" in problems[0]


def test_non_overlapping_periods_for_the_same_key_are_fine(tmp_path: Path) -> None:
    """A key may change target over time when the periods do not overlap."""
    rows = (
        ROWS.replace(
            "45,45A03,,,45,45N03,2020-01-01,,", "45,45A03,,,45,45N03,2020-01-01,2020-12-31,"
        )
        + "DEMO,product,45,45A03,,,45,45N04,2021-01-01,,,,,no,x\n"
    )
    assert problems_of(write_folder(tmp_path, rows)) == []


def test_unknown_category_in_a_code_list_is_reported(tmp_path: Path) -> None:
    """A code list row with a category outside JZ020 fails at its line."""
    from tests.unit.translation.builders import OLD_CODES

    folder = write_folder(tmp_path, old_codes=OLD_CODES + "60,60A01,,,,bad\n")
    problems = problems_of(folder)
    line = OLD_CODES.count("\n") + 1
    assert any(
        p.startswith(f"{tmp_path / 'codes' / 'old.csv'}:{line}: categorie '60'") for p in problems
    ), problems


def test_generation_naming_an_unknown_list_is_reported(tmp_path: Path) -> None:
    """generations.toml may only name lists that exist."""
    from tests.unit.translation.builders import GENERATIONS

    folder = write_folder(tmp_path, generations=GENERATIONS.replace('["NEW"]', '["NEWER"]'))
    problems = problems_of(folder)
    assert any("unknown code list 'NEWER'" in p for p in problems), problems


def test_missing_header_column_is_reported(tmp_path: Path) -> None:
    """A table without the needs_decision column cannot be read."""
    folder = write_folder(tmp_path)
    path = folder / "tables" / TABLE_FILE
    path.write_text(path.read_text().replace(HEADER, HEADER.replace("needs_decision,", "")))
    problems = problems_of(folder)
    assert any(p.startswith(f"{path}:5: header lacks column(s) needs_decision") for p in problems)


def test_code_lists_satisfy_the_rules_protocol() -> None:
    """The loaded lists are what rule TR381 takes as ``ProductCodeList``."""
    from gateway.core import lists

    codes: lists.ProductCodeList = load_mappings(SHIPPED_MAPPINGS).generations["legacy"].codes
    assert codes.belongs("54", "54004") and codes.knows("32R01")
