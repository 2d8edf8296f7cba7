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
