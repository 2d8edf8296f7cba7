"""The contract tariff table: strict loading, the shipped synthetic file, and TR346/TR418 use."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

import pytest

from gateway.cli.translate import run_check
from gateway.config import load_config
from gateway.contracts import ContractError, check_contract_table, load_contract_table
from gateway.core.errors import ConfigError
from gateway.core.lists import ContractTariff, ExternalLists
from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from gateway.daemon.app import external_lists
from tests.paths import REPO
from tests.unit.rules.mutate import load_example, official_schema_set, report_for

MAPPINGS = REPO / "mappings"
SHIPPED = MAPPINGS / "contracts" / "SYNTHETIC_contracts_ijsselland.csv"
HEADER = "gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note"
META = "# kind: contracts\n# codes: JZ21, SYNTHETIC-EXAMPLES\n"
GOOD = "0150,65656055,45,45A03,04,1250,2023-01-01,2023-12-31,ok"


def write(tmp_path: Path, *rows: str, meta: str = META, header: str = HEADER) -> Path:
    """A contract file in tmp_path with the given data rows (line 4 is the first row)."""
    path = tmp_path / "contracts.csv"
    path.write_text(meta + header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    """The problems as 'line: message' strings (checked against the shipped code lists)."""
    table, found = check_contract_table(path, MAPPINGS)
    assert (table is None) == bool(found)
    return [f"{p.line}: {p.message}" for p in found]


def test_shipped_table_loads_and_covers_the_demo_parties() -> None:
    """Every demo gemeente/aanbieder pair has tariffs; regions expand; indexation switches."""
    table = load_contract_table(SHIPPED)
    april_2023 = dt.date(2023, 4, 1)
    for gemeente in ("0150", "0193"):
        assert table.tariff(gemeente, "65656055", "45", "45A03", april_2023) == ContractTariff(
            1250, "04"
        )
        assert table.tariff(gemeente, "87654321", "45", "45A04", april_2023) is not None
        assert table.tariff(gemeente, "42420001", "55", "55A12", april_2023) == ContractTariff(
            24000, "16"
        )
    assert table.tariff("0150", "65656055", "45", "45A03", dt.date(2024, 1, 1)) == ContractTariff(
        1300, "04"
    )
    assert table.tariff("0150", "42420001", "55", "55A11", dt.date(2025, 12, 31)) == ContractTariff(
        7500, "04"
    )
    assert table.tariff("0150", "42420001", "55", "55A11", dt.date(2026, 1, 1)) == ContractTariff(
        7800, "04"
    )
    assert table.tariff("0363", "65656055", "45", "45A03", april_2023) is None
    assert table.tariff("0384", "65656055", "45", "45A04", april_2023) == ContractTariff(1500, "04")


def test_a_clean_file_loads(tmp_path: Path) -> None:
    """One good row, open end date."""
    path = write(tmp_path, "IJSSELLAND,65656055,45,45A04,04,1500,2023-01-01,,open")
    table = load_contract_table(path, MAPPINGS)
    assert table.tariff("1896", "65656055", "45", "45A04", dt.date(2030, 1, 1)) is not None


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("0150,65656055,99,45A03,04,1250,,,x", "4: categorie '99' is not a productcategorie"),
        ("0150,65656055,45,ZZ999,04,1250,,,x", "4: code 'ZZ999' is not on the code list(s)"),
        ("0150,65656055,45,55A11,04,1250,,,x", "under that categorie"),
        ("0150,65656055,45,45A03,04,12.50,,,x", "4: tarief '12.50' is not whole eurocent"),
        ("0150,65656055,45,45A03,04,-5,,,x", "4: tarief '-5' is not whole eurocent"),
        ("0150,65656055,45,45A03,83,1250,,,x", "4: eenheid '83' is not a WJ756 unit"),
        ("0150,65656055,45,45A03,05,1250,,,x", "4: eenheid '05' is not a WJ756 unit"),
        ("0150,6565605,45,45A03,04,1250,,,x", "4: aanbieder '6565605' is neither an 8-digit"),
        ("NOWHERE,65656055,45,45A03,04,1250,,,x", "4: gemeente 'NOWHERE' is neither"),
        ("0150,65656055,45,45A03,04,1250,2023-13-01,,x", "4: valid_from '2023-13-01' is not"),
        ("0150,65656055,45,45A03,04,1250,2023-02-01,2023-01-01,x", "4: valid_to 2023-01-01"),
        ("0150,65656055,45,45A03,04,1250,,x", "4: 8 fields, the header has 9"),
    ],
)
def test_bad_rows_are_reported_with_their_line(tmp_path: Path, row: str, expected: str) -> None:
    """Each broken value gives one problem naming line 4 (the first data row)."""
    found = problems(write(tmp_path, row))
    assert len(found) == 1
    assert expected in found[0]


def test_overlapping_validity_is_an_error(tmp_path: Path) -> None:
    """Two tariffs for the same product, gemeente and aanbieder on the same day."""
    found = problems(write(tmp_path, GOOD, "0150,65656055,45,45A03,04,1300,2023-12-31,,later"))
    assert found == ["5: 45/45A03 for gemeente 0150 and aanbieder 65656055 overlaps line 4"]


def test_region_row_overlapping_a_member_row(tmp_path: Path) -> None:
    """A region stands for each of its gemeenten, so it clashes with a member's own row."""
    found = problems(write(tmp_path, GOOD, "IJSSELLAND,65656055,45,45A03,04,1250,,,region"))
    assert found == ["5: 45/45A03 for gemeente 0150 and aanbieder 65656055 overlaps line 4"]


def test_adjacent_periods_do_not_overlap(tmp_path: Path) -> None:
    """valid_to 2023-12-31 then valid_from 2024-01-01 is fine."""
    assert problems(write(tmp_path, GOOD, "0150,65656055,45,45A03,04,1300,2024-01-01,,x")) == []


def test_missing_metadata_and_columns(tmp_path: Path) -> None:
    """No '# codes:' line, no '# kind:' line, or a missing column: the file is refused."""
    assert any("# codes:" in p for p in problems(write(tmp_path, GOOD, meta="# kind: contracts\n")))
    assert any(
        "# kind: contracts" in p for p in problems(write(tmp_path, GOOD, meta="# codes: JZ21\n"))
    )
    short = HEADER.replace(",note", "")
    assert problems(write(tmp_path, meta=META, header=short)) == ["3: header lacks column(s) note"]


def test_unknown_code_list(tmp_path: Path) -> None:
    """A '# codes:' name without a code list file is an error."""
    found = problems(write(tmp_path, GOOD, meta="# kind: contracts\n# codes: NOPE\n"))
    assert found and "code list 'NOPE'" in found[0]


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    """load_contract_table raises a ConfigError listing file:line for each problem."""
    path = write(tmp_path, "0150,65656055,99,45A03,04,1250,,,x", "0150,65656055,45,45A03,04,x,,,y")
    with pytest.raises(ContractError) as raised:
        load_contract_table(path, MAPPINGS)
    assert len(raised.value.problems) == 2
    assert f"{path}:4:" in str(raised.value) and f"{path}:5:" in str(raised.value)


def test_mappings_check_includes_contracts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gateway mappings check` reports a broken contract file and exits 2."""
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    args = argparse.Namespace(mappings=folder)
    assert run_check(args) == 0
    assert "contracts SYNTHETIC_contracts_ijsselland.csv: ok" in capsys.readouterr().out
    broken = folder / "contracts" / "SYNTHETIC_contracts_ijsselland.csv"
    broken.write_text(broken.read_text(encoding="utf-8") + "0150,65656055,45,45A03,04,1,,,x\n")
    assert run_check(args) == 2
    assert "overlaps line" in capsys.readouterr().err


def test_tr418_and_tr346_with_the_shipped_table() -> None:
    """The official JW323 (gemeente 0384) claims the contract tariffs: clean; 1300 is 0611."""
    context = RuleContext(lists=ExternalLists(contracts=load_contract_table(SHIPPED)))
    assert report_for(load_example("JW323").to_bytes(), context).ok
    message = load_example("JW323")
    message.set("Declaratie/Clienten/Client[1]/Prestaties/Prestatie[1]/ProductTarief", "1300")
    report = validate(message.to_bytes(), official_schema_set(), context)
    found = {(f.rule, f.retourcode) for f in report.findings}
    assert found == {("TR418", "0611"), ("TR346", "9346")}


def test_config_key_loads_the_table(tmp_path: Path) -> None:
    """`[lists] contracts` is resolved next to the config file and reaches the rule lists."""
    shutil.copy(SHIPPED, tmp_path / "contracts.csv")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\nmappings = "{MAPPINGS}"\n[lists]\ncontracts = "contracts.csv"\n',
        encoding="utf-8",
    )
    settings = load_config(config, {})
    assert settings.contracts == tmp_path / "contracts.csv"
    contracts = external_lists(settings).contracts
    assert contracts is not None
    assert contracts.tariff("0150", "65656055", "45", "45A03", dt.date(2023, 4, 1)) is not None


def test_config_without_the_key_has_no_contracts(tmp_path: Path) -> None:
    """Leaving the key out skips the tariff check (TR418 stays silent)."""
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nmappings = "{MAPPINGS}"\n', encoding="utf-8")
    assert external_lists(load_config(config, {})).contracts is None


def test_broken_table_stops_the_daemon_start(tmp_path: Path) -> None:
    """A broken contract file is a ConfigError (exit 2 at `gateway run`)."""
    write(tmp_path, "0150,65656055,45,45A03,04,twelve,,,x")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\nmappings = "{MAPPINGS}"\n[lists]\ncontracts = "contracts.csv"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"contracts\.csv:4: tarief 'twelve'"):
        external_lists(load_config(config, {}))
