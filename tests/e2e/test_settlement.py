"""A party outside the chain, end to end against a real SQLite store: the held allocations'
estimated value in ``report held`` (table, CSV, JSON), ``gateway settle`` (audited, strict
CSV), and no double payment once the party joins: its JW323 line for the settled period is
refused with 9389 (BVO001), a line for an unsettled period is accepted."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from gateway.core.model import State
from gateway.store.history import SqlHistory
from tests.e2e.console_env import ConsoleEnv
from tests.paths import OFFICIAL_XSD_DIR
from tests.unit.dossier.scenario import BSN, Line, declaratie, toewijzing

APRIL = ("2026-04-01", "2026-04-30")
MAY = ("2026-05-01", "2026-05-31")
TARIEF = 7500  # eurocent per hour, the contract below

CONFIG = """
[paths]
schemas = ["{schemas}"]
[store]
url = "{url}"
[lists]
contracts = "{contracts}"
[rules]
dossier = true
product_codes = ""
[[parties]]
id = "bvo"
role = "bvo"
channel = "mailbox"
[[parties]]
id = "diemen"
role = "gemeente"
identity = "0384"
channel = "folder"
answered_by = "bvo"
[[parties]]
id = "kompas"
role = "aanbieder"
identity = "42420001"
channel = "folder"
{readiness}
"""

CONTRACTS = f"""# kind: contracts
# codes: SYNTHETIC-EXAMPLES
gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note
0384,*,55,55A11,04,{TARIEF},2026-01-01,,test tariff for every provider
"""


def _env(tmp_path: Path, *, ready: bool) -> ConsoleEnv:
    contracts = tmp_path / "contracts.csv"
    contracts.write_text(CONTRACTS, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'data' / 'gateway.db'}"
    config = tmp_path / "config.toml"
    readiness = "" if ready else "not_ready_until = 2999-01-01"
    config.write_text(
        CONFIG.format(schemas=OFFICIAL_XSD_DIR, url=url, contracts=contracts, readiness=readiness),
        encoding="utf-8",
    )
    return ConsoleEnv(tmp_path, config, url)


def test_settled_outside_the_chain_is_never_paid_twice(tmp_path: Path) -> None:
    """Report, settle, join, claim: the settled April is refused, May is accepted."""
    env = _env(tmp_path, ready=False)
    (held,) = env.submit(("diemen", toewijzing().to_bytes()))
    assert held.state is State.HELD

    as_json, as_csv, as_table = env.run_all(
        ("report", "held", "--party", "kompas", "--until", "2026-05-31", "--format", "json"),
        ("report", "held", "--party", "kompas", "--until", "2026-05-31", "--format", "csv"),
        ("report", "held", "--party", "kompas", "--until", "2026-05-31"),
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert [m["id"] for m in report["messages"]] == [held.id]
    by_number = {a["toewijzing_nummer"]: a for a in report["allocations"]}
    # 300201: 2 hours a week; April and May 2026 each touch 5 calendar weeks: 20 hours.
    hours = 2 * 5 + 2 * 5
    expected = f"{hours * TARIEF // 100}.00"
    assert by_number[300201]["estimated_eur"] == expected
    assert (by_number[300201]["from"], by_number[300201]["to"]) == ("2026-04-01", "2026-05-31")
    # 300202 is in dagdelen; no contract row prices 55A12: no value, a reason.
    assert by_number[300202]["estimated_eur"] is None
    assert by_number[300202]["basis"].startswith("no contract tariff")
    assert report["allocations_estimated_eur"] == expected
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert ["total", "", "", "", "", "", "", "", expected] in rows
    assert f"estimated total: EUR {expected}" in as_table.stdout
    assert BSN not in as_json.stdout + as_csv.stdout + as_table.stdout

    bad = tmp_path / "settled.csv"
    bad.write_text(
        "gemeente,toewijzing_nummer,from,to,reference\n"
        "0384,300201,2026-04-01,2026-04-30,INV-1\n"
        "0384,30020x,2026-05-01,2026-04-30,INV-2\n",
        encoding="utf-8",
    )
    refused = env.run("settle", "--file", str(bad), "--reason", "Q2 list")
    assert refused.returncode != 0
    assert f"{bad}:3: toewijzing_nummer" in refused.stderr
    assert f"{bad}:3: to 2026-04-30 lies before from 2026-05-01" in refused.stderr
    dry = env.run("settle", "--file", str(bad.with_name("none.csv")), "--dry-run")
    assert dry.returncode != 0

    good = tmp_path / "settled-ok.csv"
    good.write_text(
        "gemeente,toewijzing_nummer,from,to,reference\n0384,300201,2026-04-01,2026-04-30,INV-1\n",
        encoding="utf-8",
    )
    trial = env.run("settle", "--file", str(good), "--dry-run")
    assert trial.returncode == 0, trial.stderr
    assert "would settle gemeente 0384 ToewijzingNummer 300201" in trial.stdout
    done = env.run("settle", "--file", str(good), "--reason", "paid by invoice")
    assert done.returncode == 0, done.stderr
    again = env.run("settle", "--file", str(good), "--reason", "paid by invoice")
    assert "1 already settled" in again.stdout
    audit = env.json("audit", "--action", "settle")
    assert [(e["target"], e["actor"].startswith("operator")) for e in audit] == [
        ("toewijzing:0384/300201", True)
    ]
    after = json.loads(env.run("report", "held", "--party", "kompas", "--format", "json").stdout)
    settled = {a["toewijzing_nummer"]: a["settled"] for a in after["allocations"]}
    assert settled == {300201: "2026-04-01..2026-04-30 (INV-1)", 300202: None}

    joined = _env(tmp_path, ready=True)
    line = Line("R1", *APRIL, tarief=TARIEF)
    (april,) = joined.submit(("kompas", declaratie("D1", APRIL, "2026-05-05", line)))
    may_line = Line("R2", *MAY, tarief=TARIEF)
    (may,) = joined.submit(("kompas", declaratie("D2", MAY, "2026-06-05", may_line)))
    store = joined.store()
    try:
        assert {(f["rule"], f["retourcode"]) for f in store.findings(april.id)} == {
            ("BVO001", "9389")
        }
        assert store.findings(may.id) == []
        history = SqlHistory(store, [BSN])
        assert history.claim_line("42420001", "0384", "R1") is None
        assert history.claim_line("42420001", "0384", "R2") is not None
    finally:
        store.close()
