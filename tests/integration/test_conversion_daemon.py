"""A declared conversion end to end through the real service on SQLite: the provider
(65656055, folder channel) speaks the "old" codes in hours per week, Diemen (0384) the "new"
ones, where the same care is one trajectory per month at the region's price (fixtures in
tests/unit/translation/conversions.py). Every message of the conversation crosses the unit
change: JW315 -> JW301 -> JW305 -> JW323 -> JW325, and each side receives its own terms,
amounts included."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core.document import find
from gateway.core.ledger import LedgerKey, Omvang
from gateway.core.model import State
from gateway.daemon.app import build_app
from tests.integration.conftest import START, Harness, example, variant, write_config
from tests.integration.test_translation_daemon import _one_line, _schema_valid, _stored
from tests.paths import REPO
from tests.unit.translation.builders import (
    OLD_CODES,
    follow_up,
    jw301,
    products,
    set_text,
    to_bytes,
    write_folder,
)
from tests.unit.translation.conversions import TRAJECTORY_TARIFF, jw315, write_conversions

DIEMEN, PROVIDER = "0384", "65656055"
BEGIN = dt.date(2026, 3, 1)
NUMMER, REFERENTIE = "70001", "REF-C1"
HOURS, HOURLY = 17, 7500  # what the provider delivered in March, at its own hourly price


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    mappings = write_folder(tmp_path / "mappings")
    contracts = write_conversions(mappings)
    shutil.copy(REPO / "mappings" / "gemeenten_cbs.csv", mappings / "gemeenten_cbs.csv")
    (mappings / "codes" / "jz21.csv").write_text(
        OLD_CODES.replace("# list: OLD", "# list: JZ21"), encoding="utf-8"
    )
    config = write_config(
        tmp_path,
        {"diemen": {"generation": "new"}, "provider-b": {"generation": "old"}},
        extra=f'[lists]\ncontracts = "{contracts}"',
    )
    config.write_text(
        config.read_text().replace("[paths]\n", f'[paths]\nmappings = "{mappings}"\n', 1)
    )
    gateway = build_app(load_config(config, {}), clock=FakeClock(START), rng=random.Random(7))
    gateway.store.migrate()
    client: TestClient[Any, Any] = TestClient(TestServer(gateway.web_app))
    await client.start_server()
    yield Harness(gateway, client, FakeClock(START), tmp_path)
    await client.close()
    await gateway.delivery.close()
    gateway.store.close()


def _omvang(xml: bytes, holder: str) -> tuple[str, str, str]:
    element = next(etree.fromstring(xml).iter("{*}" + holder))
    return tuple(  # type: ignore[return-value]
        find(element, f"Omvang/{name}").text or ""  # type: ignore[union-attr]
        for name in ("Volume", "Eenheid", "Frequentie")
    )


def _line(xml: bytes) -> dict[str, str]:
    line = next(etree.fromstring(xml).iter("{*}Prestatie"))
    paths = ("ProductCode", "GeleverdVolume", "Eenheid", "ProductTarief", "IngediendBedrag/Bedrag")
    return {path: find(line, path).text or "" for path in paths}  # type: ignore[union-attr]


def _totals(xml: bytes) -> dict[str, tuple[str, str]]:
    root = etree.fromstring(xml)
    found: dict[str, tuple[str, str]] = {}
    for name in ("TotaalIngediendBedrag", "TotaalToegekendBedrag"):
        total = next(root.iter("{*}" + name), None)
        if total is not None:
            found[name] = (
                find(total, "TotaalBedrag").text or "",  # type: ignore[union-attr]
                find(total, "DebetCredit").text or "",  # type: ignore[union-attr]
            )
    return found


def _allocation() -> bytes:
    raw = jw301(DIEMEN, NUMMER, "45", "45Q02", BEGIN, eenheid="82", volume="1")
    tree = etree.fromstring(raw).getroottree()
    root = tree.getroot()
    set_text(root, "Header/Ontvanger", PROVIDER)
    product = next(root.iter("{*}ToegewezenProduct"))
    set_text(product, "ReferentieAanbieder", REFERENTIE)  # honours the provider's request
    set_text(product, "Omvang/Frequentie", "4")
    return variant(to_bytes(tree), 2)


def _claim() -> bytes:
    raw = _one_line(example("JW323"), NUMMER, "45", "45A50")
    tree = etree.fromstring(raw).getroottree()
    line = next(tree.getroot().iter("{*}Prestatie"))
    for path, value in (
        ("GeleverdVolume", str(HOURS)),
        ("Eenheid", "04"),
        ("ProductTarief", str(HOURLY)),
        ("IngediendBedrag/Bedrag", str(HOURS * HOURLY)),
    ):
        set_text(line, path, value)
    set_text(tree.getroot(), "Declaratie/TotaalIngediendBedrag/TotaalBedrag", str(HOURS * HOURLY))
    return to_bytes(tree)


def _answer(delivered_claim: bytes) -> bytes:
    """Diemen's JW325 refusing the one line as it received it (in its own terms)."""
    raw = _one_line(example("JW325"), NUMMER, "45", "45Q02")
    tree = etree.fromstring(raw).getroottree()
    root = tree.getroot()
    line = next(root.iter("{*}Prestatie"))
    received = _line(delivered_claim)
    for path in ("GeleverdVolume", "Eenheid", "ProductTarief", "IngediendBedrag/Bedrag"):
        set_text(line, path, received[path])
    set_text(root, "DeclaratieAntwoord/TotaalIngediendBedrag/TotaalBedrag", str(TRAJECTORY_TARIFF))
    return variant(to_bytes(tree), 5)


async def test_a_unit_change_translates_every_message_of_the_conversation(
    harness: Harness,
) -> None:
    # JW315: the provider asks 4 hours per week; Diemen reads one trajectory per month.
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    state, _, raw, delivered = await _stored(harness, await harness.submit("provider-b", request))
    assert state is State.QUEUED
    assert products(raw) == [("45", "45A50")] and _omvang(raw, "AangevraagdProduct") == (
        "4",
        "04",
        "2",
    )
    assert products(delivered) == [("45", "45Q02")]
    assert _omvang(delivered, "AangevraagdProduct") == ("1", "82", "4")
    assert _schema_valid(delivered)
    pair = harness.store.ledger_entry(LedgerKey.request(DIEMEN, REFERENTIE))
    assert pair is not None and pair.conversion is not None
    assert pair.source_omvang == Omvang(4, "04", "2")

    # JW301: Diemen allocates one trajectory per month; the provider gets its 4 hours a week.
    state, _, _, delivered = await _stored(harness, await harness.submit("diemen", _allocation()))
    assert state is State.QUEUED
    assert products(delivered) == [("45", "45A50")]
    assert _omvang(delivered, "ToegewezenProduct") == ("4", "04", "2")
    assert _schema_valid(delivered)
    allocation = harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, NUMMER))
    assert allocation is not None and allocation.conversion == pair.conversion

    # JW305: the start carries only the product code.
    start = variant(follow_up("JW305", DIEMEN, NUMMER, "45", "45A50", BEGIN), 3)
    state, _, _, delivered = await _stored(harness, await harness.submit("provider-b", start))
    assert state is State.QUEUED and products(delivered) == [("45", "45Q02")]

    # JW323: 17 hours in March at 75.00 reach Diemen as one trajectory at the region's price.
    claim = variant(_claim(), 4)
    state, _, raw, delivered = await _stored(harness, await harness.submit("provider-b", claim))
    assert state is State.QUEUED
    assert _line(raw) == {
        "ProductCode": "45A50",
        "GeleverdVolume": "17",
        "Eenheid": "04",
        "ProductTarief": "7500",
        "IngediendBedrag/Bedrag": "127500",
    }
    assert _line(delivered) == {
        "ProductCode": "45Q02",
        "GeleverdVolume": "1",
        "Eenheid": "82",
        "ProductTarief": str(TRAJECTORY_TARIFF),
        "IngediendBedrag/Bedrag": str(TRAJECTORY_TARIFF),
    }
    assert _totals(delivered) == {"TotaalIngediendBedrag": (str(TRAJECTORY_TARIFF), "D")}
    assert _schema_valid(delivered)

    # JW325: Diemen refuses the trajectory; the provider gets its own line and amounts back.
    answer = _answer(delivered)
    state, _, raw, delivered = await _stored(harness, await harness.submit("diemen", answer))
    assert state is State.QUEUED
    assert _line(raw)["ProductCode"] == "45Q02"
    assert _line(delivered) == {
        "ProductCode": "45A50",
        "GeleverdVolume": "17",
        "Eenheid": "04",
        "ProductTarief": "7500",
        "IngediendBedrag/Bedrag": "127500",
    }
    assert _totals(delivered) == {
        "TotaalIngediendBedrag": ("127500", "D"),
        "TotaalToegekendBedrag": ("0", "D"),
    }
    assert _schema_valid(delivered)
