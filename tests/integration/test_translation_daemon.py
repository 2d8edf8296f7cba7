"""Product-code translation through the real service: a mixed region on a real store.

Diemen (0384) speaks the "new" codes, provider-b (65656055, folder channel) still the "old"
ones (the small demo folder of tests/unit/translation/builders.py, cut-over 2020-01-01).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core.document import find
from gateway.core.ledger import LedgerKey, Origin
from gateway.core.mapping_tables import Product
from gateway.core.model import State
from gateway.core.validate import validate
from gateway.daemon.app import Gateway, build_app
from gateway.schemas import load_schema_set
from gateway.service.operator import Operator, OperatorError
from gateway.store.base import AuditQuery, MessageQuery
from gateway.translator import NEEDS_MAPPING_DECISION, DecisionError, decide_mapping
from tests.integration.conftest import START, Harness, example, variant, write_config
from tests.paths import OFFICIAL_XSD_DIR, REPO
from tests.unit.translation.builders import (
    OLD_CODES,
    follow_up,
    jw301,
    jw323,
    one_line,
    products,
    set_text,
    to_bytes,
    write_folder,
)

DIEMEN = "0384"
PROVIDER = "65656055"
BEGIN = dt.date(2026, 3, 1)
FORBIDDEN_RETOURCODES = {"S329", "9339", "9340"}


@pytest.fixture
async def make_mixed(tmp_path: Path) -> AsyncIterator[Callable[[], object]]:
    """Gateways for the mixed region on one SQLite file (a second call is a restart)."""
    async for factory in mixed_region(tmp_path, answered=True):
        yield factory


async def mixed_region(
    tmp_path: Path, answered: bool, extra: str = ""
) -> AsyncIterator[Callable[[], object]]:
    """The mixed region's gateways; with ``answered`` the BVO answers for Diemen; ``extra``
    adds config sections."""
    mappings = write_folder(tmp_path / "mappings")
    # The level-E lists come from the same folder: the gemeente list, and a "national" list
    # that knows only the old codes, so TR381 (S329) on the new codes would fail unless the
    # gateway checks a translated message against the receiver's own code list.
    shutil.copy(REPO / "mappings" / "gemeenten_cbs.csv", mappings / "gemeenten_cbs.csv")
    (mappings / "codes" / "jz21.csv").write_text(
        OLD_CODES.replace("# list: OLD", "# list: JZ21"), encoding="utf-8"
    )
    config = write_config(
        tmp_path,
        # Answered by the BVO: the gateway runs the cross-message and list rules for Diemen
        # (on the translated messages) and answers the provider on Diemen's behalf.
        {
            "diemen": {"generation": "new", **({"answered_by": "bvo"} if answered else {})},
            "provider-b": {"generation": "old"},
        },
        rules="dossier = true",
        extra=extra,
    )
    config.write_text(
        config.read_text().replace("[paths]\n", f'[paths]\nmappings = "{mappings}"\n', 1)
    )
    settings = load_config(config, {})
    built: list[tuple[Gateway, TestClient[Any, Any]]] = []
    clock = FakeClock(START)

    async def factory() -> Harness:
        gateway = build_app(settings, clock=clock, rng=random.Random(7))
        gateway.store.migrate()
        client = TestClient(TestServer(gateway.web_app))
        await client.start_server()
        built.append((gateway, client))
        return Harness(gateway, client, clock, tmp_path)

    yield factory
    for gateway, client in built:
        await client.close()
        await gateway.delivery.close()
        gateway.store.close()


async def _mixed(make_mixed: Callable[[], object]) -> Harness:
    harness = await make_mixed()  # type: ignore[misc]
    assert isinstance(harness, Harness)
    return harness


def _to_provider(raw: bytes) -> bytes:
    tree = etree.fromstring(raw).getroottree()
    set_text(tree.getroot(), "Header/Ontvanger", PROVIDER)
    # Not an answer to a request (TR379 would look for one in the register).
    for reference in list(tree.getroot().iter("{*}ReferentieAanbieder")):
        reference.getparent().remove(reference)  # type: ignore[union-attr]
    return to_bytes(tree)


def _allocation(nummer: str, categorie: str, code: str, number: int, **kw: str) -> bytes:
    return variant(_to_provider(jw301(DIEMEN, nummer, categorie, code, BEGIN, **kw)), number)


def _claim(nummer: str, categorie: str, code: str, eenheid: str = "04") -> bytes:
    tree = etree.fromstring(jw323(DIEMEN, nummer, categorie, code, eenheid=eenheid))
    return one_line(to_bytes(tree.getroottree()), nummer, categorie, code)


def _jw325(nummer: str, categorie: str, code: str) -> bytes:
    return one_line(example("JW325"), nummer, categorie, code)


async def _stored(harness: Harness, data: dict[str, object]) -> tuple[State, str, bytes, bytes]:
    message_id = str(data["id"])
    msg = harness.store.get(message_id)
    assert msg is not None
    raw = harness.store.payload(message_id)
    delivered = harness.store.delivery_payload(message_id)
    assert raw is not None and delivered is not None
    findings = harness.store.findings(message_id)
    assert not FORBIDDEN_RETOURCODES & {str(f.get("retourcode")) for f in findings}, findings
    return msg.state, msg.reason or "", raw, delivered


def _schema_valid(xml: bytes) -> bool:
    report = validate(xml, load_schema_set([OFFICIAL_XSD_DIR]))
    return report.level.value not in ("malformed", "xsd")


async def test_mixed_region_round_trip_restores_the_original_codes(
    make_mixed: Callable[[], object],
) -> None:
    harness = await _mixed(make_mixed)

    # JW301: Diemen assigns 45N03; the provider gets the old code 45A03.
    sent = await harness.submit("diemen", _allocation("10072", "45", "45N03", 1))
    state, _, raw, delivered = await _stored(harness, sent)
    assert state is State.QUEUED
    assert products(raw) == [("45", "45N03")]
    assert products(delivered) == [("45", "45A03")]
    assert _schema_valid(delivered)
    entry = harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, "10072"))
    assert entry is not None and (entry.original, entry.translated) == (
        Product("45", "45N03"),
        Product("45", "45A03"),
    )
    await harness.gateway.delivery.tick()
    (written,) = (harness.folder / "outbox" / "provider-b").glob("*.xml")
    assert products(written.read_bytes()) == [("45", "45A03")]

    # JW305 and JW323 from the provider in old codes reach Diemen in its own codes.
    start = follow_up("JW305", DIEMEN, "10072", "45", "45A03", BEGIN)
    state, _, raw, delivered = await _stored(harness, await harness.submit("provider-b", start))
    assert state is State.QUEUED
    assert products(delivered) == [("45", "45N03")] and products(raw) == [("45", "45A03")]
    assert _schema_valid(delivered)

    claim = _claim("10072", "45", "45A03")
    state, _, raw, delivered = await _stored(harness, await harness.submit("provider-b", claim))
    assert state is State.QUEUED
    assert set(products(delivered)) == {("45", "45N03")}
    assert _schema_valid(delivered)
    rewrites = harness.store.translation_of(_last_id(harness, "JW323"))
    assert rewrites is not None and rewrites.rewrites
    assert all(r.basis == "ledger 0384/toewijzing/10072" for r in rewrites.rewrites)
    assert _amounts(raw) == _amounts(delivered)  # amounts are never changed

    # JW325 back to the provider in old codes: the round trip restores what it declared.
    answer = _jw325("10072", "45", "45N03")
    state, _, raw, delivered = await _stored(harness, await harness.submit("diemen", answer))
    assert state is State.QUEUED
    assert set(products(delivered)) == set(products(claim)) == {("45", "45A03")}
    assert _schema_valid(delivered)


async def test_the_ledger_survives_a_restart(make_mixed: Callable[[], object]) -> None:
    first = await _mixed(make_mixed)
    await first.submit("diemen", _allocation("20001", "55", "55N11", 2))
    restarted = await _mixed(make_mixed)
    assert restarted.service is not first.service
    start = follow_up("JW305", DIEMEN, "20001", "55", "55A11", BEGIN)
    _, _, _, delivered = await _stored(restarted, await restarted.submit("provider-b", start))
    assert products(delivered) == [("55", "55N11")]


async def test_one_to_many_is_held_until_an_operator_decides(
    make_mixed: Callable[[], object],
) -> None:
    harness = await _mixed(make_mixed)
    # 45P01 comes from a one-to-many row (45A48 -> 45P01 | 45P02): never guessed.
    data = await harness.submit("diemen", _allocation("30001", "45", "45P01", 3))
    message_id = str(data["id"])
    state, reason, raw, delivered = await _stored(harness, data)
    assert state is State.HELD and reason.startswith(NEEDS_MAPPING_DECISION)
    assert delivered == raw  # nothing translated, nothing to deliver
    assert harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, "30001")) is None
    (row,) = harness.store.translation_coverage()
    assert (row.product, row.problem, row.messages) == ("45/45P01", "one-to-many", 1)

    # Neither a party release nor a plain retry lets it out untranslated.
    operator = Operator(harness.service, "operator:test")
    await operator.hold_party("provider-b", "maintenance")
    await operator.release_party("provider-b", "done")
    assert harness.store.get(message_id).state is State.HELD  # type: ignore[union-attr]
    with pytest.raises(OperatorError, match="mapping decision"):
        await operator.retry(message_id, None)
    with pytest.raises(OperatorError, match="mapping decision"):
        await operator.release(message_id, None)
    with pytest.raises(DecisionError, match="not a old code"):
        await decide_mapping(
            harness.service.decisions, message_id, "45/45N03", reason="x", actor="operator:test"
        )

    dry = await decide_mapping(
        harness.service.decisions,
        message_id,
        "45/45A48",
        reason="gezinsplan",
        actor="operator:test",
        dry_run=True,
    )
    assert dry.dry_run and harness.store.get(message_id).state is State.HELD  # type: ignore[union-attr]
    assert harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, "30001")) is None

    done = await decide_mapping(
        harness.service.decisions,
        message_id,
        "45/45A48",
        reason="gezinsplan",
        actor="operator:test",
    )
    assert done.message.state is State.QUEUED
    entry = harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, "30001"))
    assert entry is not None and entry.origin is Origin.OPERATOR
    assert entry.translated == Product("45", "45A48") and entry.decided_by == "operator:test"
    assert products(harness.store.delivery_payload(message_id) or b"") == [("45", "45A48")]
    (audit,) = harness.store.audit_entries(AuditQuery(target=message_id, action="mapping-decision"))
    assert "45/45P01 -> 45/45A48" in (audit.reason or "")

    # Later messages about the allocation use the decided pair, both ways.
    start = follow_up("JW305", DIEMEN, "30001", "45", "45A48", BEGIN)
    _, _, _, delivered = await _stored(harness, await harness.submit("provider-b", start))
    assert products(delivered) == [("45", "45P01")]


async def test_declaration_under_a_unit_changing_pair_is_held_not_recomputed(
    make_mixed: Callable[[], object],
) -> None:
    harness = await _mixed(make_mixed)
    # 45Q01 (minutes) <-> 45A49 (hours), factor 60: the allocation's Omvang converts exactly.
    allocation = _allocation("40001", "45", "45Q01", 4, eenheid="01", volume="120")
    _, _, _, delivered = await _stored(harness, await harness.submit("diemen", allocation))
    omvang = find(etree.fromstring(delivered), "Client/ToegewezenProducten/ToegewezenProduct")
    assert omvang is not None
    assert (find(omvang, "Omvang/Volume").text, find(omvang, "Omvang/Eenheid").text) == ("2", "04")  # type: ignore[union-attr]

    claim = _claim("40001", "45", "45A49")
    data = await harness.submit("provider-b", claim)
    state, reason, raw, delivered = await _stored(harness, data)
    assert state is State.HELD and reason.startswith(NEEDS_MAPPING_DECISION)
    assert "Eenheid" in reason and delivered == raw
    with pytest.raises(DecisionError, match="recompute amounts"):
        await decide_mapping(
            harness.service.decisions,
            str(data["id"]),
            "45/45Q01",
            reason="x",
            actor="operator:test",
        )


async def test_parties_on_the_same_generation_pass_untouched(
    make_mixed: Callable[[], object],
) -> None:
    harness = await _mixed(make_mixed)
    # provider-a declares no generation: nothing is translated for it.
    raw = variant(jw301(DIEMEN, "50001", "45", "45N03", BEGIN), 5)
    data = await harness.submit("diemen", raw)
    assert harness.store.translation_of(str(data["id"])) is None
    assert harness.store.delivery_payload(str(data["id"])) == raw


def _last_id(harness: Harness, message_type: str) -> str:
    found = harness.store.query(MessageQuery(message_type=message_type, limit=100))
    return found[-1].id


def _amounts(xml: bytes) -> list[str]:
    root = etree.fromstring(xml)
    names = {"Bedrag", "ProductTarief", "GedeclareerdBedrag", "TotaalBedrag", "ToegekendBedrag"}
    return [el.text or "" for el in root.iter() if etree.QName(el).localname in names]


async def test_a_retour_on_the_recipients_behalf_carries_the_senders_codes(
    make_mixed: Callable[[], object],
) -> None:
    harness = await _mixed(make_mixed)
    await harness.submit("diemen", _allocation("60001", "45", "45N03", 6))
    # A line in January, before the allocation began: the dossier rules reject it for Diemen.
    early = _claim("60001", "45", "45A03").replace(b"2026-03-", b"2026-01-")
    data = await harness.submit("provider-b", early)
    message_id = str(data["id"])
    msg = harness.store.get(message_id)
    assert msg is not None and msg.state is State.REJECTED
    stored = harness.store.translation_of(message_id)
    assert stored is not None and stored.rewrites and not stored.undecided
    assert harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, "60001")) is not None
    (retour,) = [m for m in harness.store.query(MessageQuery(limit=50)) if m.in_reply_to == msg.id]
    answer = harness.store.delivery_payload(retour.id)
    assert answer is not None and retour.recipient == "provider-b"
    assert set(products(answer)) == {("45", "45A03")}  # the provider's own code, not 45N03
    assert _schema_valid(answer)
