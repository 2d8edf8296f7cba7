"""``gateway mappings decide|coverage`` and ``gateway show`` on translated traffic, as
subprocesses against a store filled through the real service."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from lxml import etree

from gateway.core.ledger import LedgerKey, Origin
from gateway.core.mapping_tables import Product
from gateway.core.model import State
from gateway.store.base import AuditQuery
from tests.e2e.console_env import ConsoleEnv
from tests.paths import OFFICIAL_XSD_DIR, REPO
from tests.unit.translation.builders import (
    OLD_CODES,
    jw301,
    products,
    set_text,
    to_bytes,
    write_folder,
)

CONFIG = """
[paths]
schemas = ["{schemas}"]
mappings = "{mappings}"
[store]
url = "{url}"
[[parties]]
id = "diemen"
role = "gemeente"
identity = "0384"
channel = "folder"
generation = [{{generation = "old"}}, {{generation = "new", from = 2020-01-01}}]
[[parties]]
id = "provider"
role = "aanbieder"
identity = "42420001"
channel = "folder"
generation = "old"
"""


@pytest.fixture
def env(tmp_path: Path) -> ConsoleEnv:
    """Diemen speaks the new codes since 2020, the provider still the old ones."""
    mappings = write_folder(tmp_path / "mappings")
    shutil.copy(REPO / "mappings" / "gemeenten_cbs.csv", mappings / "gemeenten_cbs.csv")
    (mappings / "codes" / "jz21.csv").write_text(
        OLD_CODES.replace("# list: OLD", "# list: JZ21"), encoding="utf-8"
    )
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(schemas=OFFICIAL_XSD_DIR, mappings=mappings, url=url), encoding="utf-8"
    )
    return ConsoleEnv(tmp_path, config, url)


def _allocation(nummer: str, code: str, identificatie: str) -> bytes:
    tree = etree.fromstring(jw301("0384", nummer, "45", code, dt.date(2026, 3, 1)))
    root = tree.getroottree().getroot()
    set_text(root, "Header/BerichtIdentificatie/Identificatie", identificatie)
    for reference in list(root.iter("{*}ReferentieAanbieder")):
        reference.getparent().remove(reference)  # type: ignore[union-attr]
    return to_bytes(root.getroottree())


def test_coverage_decide_and_show(env: ConsoleEnv) -> None:
    held, other, translated = env.submit(
        ("diemen", _allocation("30001", "45P01", "E2E000001")),
        ("diemen", _allocation("30002", "45P01", "E2E000002")),
        ("diemen", _allocation("30003", "45N03", "E2E000003")),
    )
    assert held.state is State.HELD and other.state is State.HELD
    assert translated.state is State.QUEUED

    coverage, shown = env.json_all(("mappings", "coverage"), ("show", translated.id))
    assert [(c["product"], c["problem"], c["messages"]) for c in coverage] == [
        ("45/45P01", "one-to-many", 2)
    ]
    (translation,) = shown["translations"]
    assert (translation["from"], translation["to"]) == ("new", "old")
    assert [(r["original"], r["translated"]) for r in translation["rewrites"]] == [
        ("45/45N03", "45/45A03")
    ]
    plain = env.run("show", held.id)
    assert plain.returncode == 0, plain.stderr
    assert "needs mapping decision" in plain.stdout and "45/45P01" in plain.stdout

    wrong, dry, retry = env.run_all(
        ("mappings", "decide", held.id, "--target", "45/45N03", "--reason", "x"),
        ("mappings", "decide", held.id, "--target", "45/45A48", "--reason", "plan", "--dry-run"),
        ("retry", held.id, "--yes"),
    )
    assert wrong.returncode == 2 and "not a old code" in wrong.stderr
    assert dry.returncode == 0, dry.stderr
    assert "45/45P01 -> 45/45A48" in dry.stdout and "dry run" in dry.stdout
    assert "after the rules it would be queued" in dry.stdout and "routed to provider" in dry.stdout
    assert retry.returncode != 0 and "mapping decision" in (retry.stdout + retry.stderr)

    done = env.run("mappings", "decide", held.id, "--target", "45/45A48", "--reason", "plan")
    assert done.returncode == 0, done.stderr
    assert f"message {held.id} is queued" in done.stdout
    assert "retour" not in done.stdout  # the provider answers Diemen's JW301 itself
    again = env.run("mappings", "decide", held.id, "--target", "45/45A48", "--reason", "plan")
    assert again.returncode == 2 and "only messages held" in again.stderr

    store = env.store()
    try:
        entry = store.ledger_entry(LedgerKey.allocation("0384", "30001"))
        assert entry is not None and entry.origin is Origin.OPERATOR
        assert entry.translated == Product("45", "45A48")
        assert products(store.delivery_payload(held.id) or b"") == [("45", "45A48")]
        assert store.get(other.id).state is State.HELD  # type: ignore[union-attr]
        (audit,) = store.audit_entries(AuditQuery(action="mapping-decision"))
        assert audit.target == held.id and "plan" in (audit.reason or "")
    finally:
        store.close()


def test_a_broken_table_stops_check_config_with_file_and_line(env: ConsoleEnv) -> None:
    table = env.folder / "mappings" / "tables" / "old_to_new.csv"
    lines = table.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("55A11", "99ZZZ")  # a source missing from the old list
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = env.run("check-config")
    assert done.returncode == 2
    assert f"{table}:6:" in done.stderr and "99ZZZ" in done.stderr


DECISION_HEADER = "ToewijzingNummer,message_id,target,decided_by,reference\n"


def test_the_gemeente_decides_from_a_file_once_with_who_and_on_what(env: ConsoleEnv) -> None:
    by_number, by_id, by_operator = env.submit(
        ("diemen", _allocation("31001", "45P01", "E2E000011")),
        ("diemen", _allocation("31002", "45P01", "E2E000012")),
        ("diemen", _allocation("31003", "45P01", "E2E000013")),
    )
    assert {m.state for m in (by_number, by_id, by_operator)} == {State.HELD}
    decisions = env.folder / "toegang-0384.csv"
    decisions.write_text(
        DECISION_HEADER
        + "31001,,45/45A48,A. de Vries (toegang Diemen),GP-2026-0113\n"
        + f",{by_id.id},45/45A48,A. de Vries (toegang Diemen),GP-2026-0114\n"
        + "39999,,45/45A48,A. de Vries (toegang Diemen),GP-2026-0115\n",
        encoding="utf-8",
    )
    broken = env.folder / "broken.csv"
    broken.write_text(
        DECISION_HEADER + "31001,,45A48,x,GP-1\n31003,,45/45A48,,GP-2\n", encoding="utf-8"
    )
    bad, dry, other_gemeente = env.run_all(
        ("mappings", "decide", "--file", str(broken), "--gemeente", "0384"),
        ("mappings", "decide", "--file", str(decisions), "--gemeente", "0384", "--dry-run"),
        ("mappings", "decide", "--file", str(decisions), "--gemeente", "0363", "--dry-run"),
    )
    assert bad.returncode == 2
    assert f"{broken}:2: target '45A48'" in bad.stderr and f"{broken}:3: decided_by" in bad.stderr
    assert dry.returncode == 1, dry.stderr
    assert f"{decisions}:2: ToewijzingNummer 31001 -> 45/45A48: would decide" in dry.stdout
    assert f"{decisions}:3: message {by_id.id} -> 45/45A48: would decide" in dry.stdout
    assert f"{decisions}:4: ToewijzingNummer 39999 -> 45/45A48: no held message" in dry.stdout
    assert "2 of 3 row(s) in effect (dry run" in dry.stdout
    assert other_gemeente.returncode == 1
    assert "about gemeente 0384, not 0363" in other_gemeente.stdout
    assert "ToewijzingNummer 31001 -> 45/45A48: no held message" in other_gemeente.stdout

    store = env.store()
    try:
        assert store.get(by_number.id).state is State.HELD  # type: ignore[union-attr]
        assert store.ledger_entry(LedgerKey.allocation("0384", "31001")) is None
    finally:
        store.close()

    done = env.run("mappings", "decide", "--file", str(decisions), "--gemeente", "0384")
    assert done.returncode == 1, done.stderr  # the row for 39999 is reported
    assert f"{decisions}:2: ToewijzingNummer 31001 -> 45/45A48: decided: message " in done.stdout
    assert "39999 -> 45/45A48: no held message" in done.stdout
    again = env.run("mappings", "decide", "--file", str(decisions), "--gemeente", "0384")
    assert again.returncode == 1
    assert again.stdout.count(": already decided: ") == 2, again.stdout
    correction = env.run(
        "mappings", "decide", by_operator.id, "--target", "45/45A48", "--reason", "correction"
    )
    assert correction.returncode == 0, correction.stderr

    audit = env.json("audit", "--action", "mapping-decision")
    by_target = {entry["target"]: entry for entry in audit}
    assert len(audit) == 3  # the second run of the file decided nothing again
    first = by_target[by_number.id]["reason"]
    assert "0384/toewijzing/31001: 45/45P01 -> 45/45A48" in first
    assert "decided by A. de Vries (toegang Diemen), reference GP-2026-0113" in first
    assert "toegang-0384.csv, line 2" in first
    assert "reference GP-2026-0114" in by_target[by_id.id]["reason"]
    assert "correction" in by_target[by_operator.id]["reason"]
    store = env.store()
    try:
        for number, reference in (("31001", "GP-2026-0113"), ("31002", "GP-2026-0114")):
            entry = store.ledger_entry(LedgerKey.allocation("0384", number))
            assert entry is not None and entry.origin is Origin.GEMEENTE
            assert (entry.decided_by, entry.reference) == (
                "A. de Vries (toegang Diemen)",
                reference,
            )
            assert entry.translated == Product("45", "45A48")
        corrected = store.ledger_entry(LedgerKey.allocation("0384", "31003"))
        assert corrected is not None and corrected.origin is Origin.OPERATOR
        assert corrected.reference is None and (corrected.decided_by or "").startswith("operator")
        assert store.get(by_number.id).state is State.QUEUED  # type: ignore[union-attr]
        assert store.get(by_id.id).state is State.QUEUED  # type: ignore[union-attr]
    finally:
        store.close()


def test_deadlines_show_when_the_decision_wait_ends(env: ConsoleEnv) -> None:
    held, translated = env.submit(
        ("diemen", _allocation("32001", "45P01", "E2E000021")),
        ("diemen", _allocation("32003", "45N03", "E2E000023")),
    )
    assert (held.state, translated.state) == (State.HELD, State.QUEUED)
    shown = {d["id"]: d for d in env.json("deadlines")["deadlines"]}
    assert shown[translated.id]["decision_answer_by"] is None
    due = dt.date.fromisoformat(shown[held.id]["due"])
    answer_by = dt.date.fromisoformat(shown[held.id]["decision_answer_by"])
    # One working day before the retour deadline (the default policy).
    assert answer_by < due and answer_by.weekday() < 5
    assert all(
        (answer_by + dt.timedelta(days=n)).weekday() >= 5 for n in range(1, (due - answer_by).days)
    )
    config = env.config.read_text(encoding="utf-8")
    env.config.write_text(
        config.replace(
            "[store]", "[translation]\ndecision_wait_working_days_before_deadline = 0\n[store]"
        ),
        encoding="utf-8",
    )
    (at_deadline,) = [d for d in env.json("deadlines")["deadlines"] if d["id"] == held.id]
    assert at_deadline["decision_answer_by"] == at_deadline["due"]
