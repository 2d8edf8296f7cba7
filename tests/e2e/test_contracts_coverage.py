"""``gateway contracts coverage`` against a real SQLite store fed through the real service."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.console_env import make_env
from tests.unit.dossier.scenario import Line, declaratie

APRIL, MAY = ("2026-04-01", "2026-04-30"), ("2026-05-01", "2026-05-31")
CONTRACTS = """\
# kind: contracts
# codes: SYNTHETIC-EXAMPLES
gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note
0384,*,55,55A11,04,1250,2026-01-01,,every provider
"""


def test_coverage_lists_unpriced_codes_per_provider_and_month(tmp_path: Path) -> None:
    """55A11 is priced for every provider; 55A12 for nobody: its lines show up per month."""
    env = next(make_env(tmp_path, "sqlite"))
    (tmp_path / "contracts.csv").write_text(CONTRACTS, encoding="utf-8")
    with env.config.open("a", encoding="utf-8") as config:
        config.write('[lists]\ncontracts = "contracts.csv"\n')
    env.submit(
        (
            "provider-b",
            declaratie(
                "D1",
                APRIL,
                "2026-05-05",
                Line("R1", *APRIL),
                Line("R2", *APRIL, code="55A12", eenheid="16"),
                Line("R3", *APRIL, code="55A12", eenheid="16", toewijzing="300202"),
            ),
        ),
        (
            "provider-b",
            declaratie("D2", MAY, "2026-06-03", Line("R4", *MAY, code="55A12", eenheid="16")),
        ),
    )
    expected = [
        {
            "aanbieder": "42420001",
            "month": "2026-04",
            "gemeente": "0384",
            "product": "55/55A12",
            "eenheid": "16",
            "lines": 2,
        },
        {
            "aanbieder": "42420001",
            "month": "2026-05",
            "gemeente": "0384",
            "product": "55/55A12",
            "eenheid": "16",
            "lines": 1,
        },
    ]
    assert env.json("contracts", "coverage") == expected
    assert (
        env.json("contracts", "coverage", "--party", "provider-b", "--from", "2026-05")
        == expected[1:]
    )
    assert env.json("contracts", "coverage", "--to", "2026-04") == expected[:1]
    assert env.json("contracts", "coverage", "--party", "65656055") == []
    table = env.run("contracts", "coverage")
    assert table.returncode == 0 and "55/55A12" in table.stdout and "2026-05" in table.stdout
    as_csv = env.run("contracts", "coverage", "--csv")
    assert as_csv.stdout.splitlines()[0] == "aanbieder,month,gemeente,product,eenheid,lines"
    assert len(as_csv.stdout.splitlines()) == 3
    assert "999900006" not in table.stdout + as_csv.stdout + json.dumps(expected)
    bad = env.run("contracts", "coverage", "--from", "April")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
