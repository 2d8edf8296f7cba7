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

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core.ledger import LedgerKey, Omvang
from gateway.core.model import State
from gateway.core.report import Level
from gateway.core.retour import RetourIdentity, build_retour
from gateway.core.validate import validate
from gateway.daemon.app import build_app
from gateway.schemas import load_schema_set
from gateway.translator import DecisionError, decide_mapping
from tests.integration.conftest import START, Harness, variant, write_config
from tests.integration.test_translation_daemon import _schema_valid, _stored
from tests.paths import OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23, OUR_XSD_DIR_23, REPO
from tests.unit.translation.builders import (
    OLD_CODES,
    ROWS,
    follow_up,
    products,
    write_folder,
)
from tests.unit.translation.conversions import (
    BEGIN,
    CONVERSION,
    DIEMEN,
    HOURLY,
    HOURS,
    NUMMER,
    PROVIDER,
    REFERENTIE,
    TRAJECTORY_TARIFF,
    allocation,
    allocation_2_3,
    answer,
    claim,
    claim_2_3,
    figures_2_3,
    jw315,
    line_figures,
    omvang,
    request_2_3,
    totals,
    write_conversions,
)

_SCHEMAS_2_3 = load_schema_set([OFFICIAL_XSD_DIR_23])
UNIT_CHANGE_ROW = "45A50,,,45,45Q02,2020-01-01,,04,82,,no"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for running in _harness(tmp_path, ROWS, CONVERSION):
        yield running


@pytest.fixture
async def decided(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The unit-changing row needs a decision; ``request.param`` says whether it has its
    declared conversion."""
    rows = ROWS.replace(UNIT_CHANGE_ROW, UNIT_CHANGE_ROW.replace(",no", ",yes"))
    assert rows != ROWS
    async for running in _harness(tmp_path, rows, CONVERSION if request.param else ""):
        yield running


@pytest.fixture
async def harness_2_3(tmp_path: Path) -> AsyncIterator[Harness]:
    """Both parties on iJw 2.3, Diemen answering its declarations itself."""
    releases = {"diemen": {"release": "2.3"}, "provider-b": {"release": "2.3"}}
    async for running in _harness(tmp_path, ROWS, CONVERSION, releases):
        yield running


async def _harness(
    tmp_path: Path,
    rows: str,
    conversions: str,
    releases: dict[str, dict[str, object]] | None = None,
) -> AsyncIterator[Harness]:
    mappings = write_folder(tmp_path / "mappings", rows)
    contracts = write_conversions(mappings, conversions)
    shutil.copy(REPO / "mappings" / "gemeenten_cbs.csv", mappings / "gemeenten_cbs.csv")
    (mappings / "codes" / "jz21.csv").write_text(
        OLD_CODES.replace("# list: OLD", "# list: JZ21"), encoding="utf-8"
    )
    generations = {"diemen": {"generation": "new"}, "provider-b": {"generation": "old"}}
    config = write_config(
        tmp_path,
        {party: {**keys, **(releases or {}).get(party, {})} for party, keys in generations.items()},
        extra=f'[lists]\ncontracts = "{contracts}"',
        schemas=(OFFICIAL_XSD_DIR, OUR_XSD_DIR_23),
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


async def test_a_unit_change_translates_every_message_of_the_conversation(
    harness: Harness,
) -> None:
    # JW315: the provider asks 4 hours per week; Diemen reads one trajectory per month.
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    state, _, raw, delivered = await _stored(harness, await harness.submit("provider-b", request))
    assert state is State.QUEUED
    assert products(raw) == [("45", "45A50")] and omvang(raw, "AangevraagdProduct") == (
        "4",
        "04",
        "2",
    )
    assert products(delivered) == [("45", "45Q02")]
    assert omvang(delivered, "AangevraagdProduct") == ("1", "82", "4")
    assert _schema_valid(delivered)
    pair = harness.store.ledger_entry(LedgerKey.request(DIEMEN, REFERENTIE))
    assert pair is not None and pair.conversion is not None
    assert pair.source_omvang == Omvang(4, "04", "2")

    # JW301: Diemen allocates one trajectory per month; the provider gets its 4 hours a week.
    state, _, _, delivered = await _stored(
        harness, await harness.submit("diemen", variant(allocation(), 2))
    )
    assert state is State.QUEUED
    assert products(delivered) == [("45", "45A50")]
    assert omvang(delivered, "ToegewezenProduct") == ("4", "04", "2")
    assert _schema_valid(delivered)
    allocated = harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, NUMMER))
    assert allocated is not None and allocated.conversion == pair.conversion

    # JW305: the start carries only the product code.
    start = variant(follow_up("JW305", DIEMEN, NUMMER, "45", "45A50", BEGIN), 3)
    state, _, _, delivered = await _stored(harness, await harness.submit("provider-b", start))
    assert state is State.QUEUED and products(delivered) == [("45", "45Q02")]

    # JW323: 17 hours in March at 75.00 reach Diemen as one trajectory at the region's price.
    declaration = variant(claim(), 4)
    state, _, raw, delivered = await _stored(
        harness, await harness.submit("provider-b", declaration)
    )
    assert state is State.QUEUED
    assert line_figures(raw) == {
        "ProductCode": "45A50",
        "GeleverdVolume": "17",
        "Eenheid": "04",
        "ProductTarief": "7500",
        "IngediendBedrag/Bedrag": "127500",
    }
    assert line_figures(delivered) == {
        "ProductCode": "45Q02",
        "GeleverdVolume": "1",
        "Eenheid": "82",
        "ProductTarief": str(TRAJECTORY_TARIFF),
        "IngediendBedrag/Bedrag": str(TRAJECTORY_TARIFF),
    }
    assert totals(delivered) == {"TotaalIngediendBedrag": (str(TRAJECTORY_TARIFF), "D")}
    assert _schema_valid(delivered)

    # JW325: Diemen refuses the trajectory; the provider gets its own line and amounts back.
    reply = variant(answer(delivered), 5)
    state, _, raw, delivered = await _stored(harness, await harness.submit("diemen", reply))
    assert state is State.QUEUED
    assert line_figures(raw)["ProductCode"] == "45Q02"
    assert line_figures(delivered) == {
        "ProductCode": "45A50",
        "GeleverdVolume": "17",
        "Eenheid": "04",
        "ProductTarief": "7500",
        "IngediendBedrag/Bedrag": "127500",
    }
    assert totals(delivered) == {
        "TotaalIngediendBedrag": ("127500", "D"),
        "TotaalToegekendBedrag": ("0", "D"),
    }
    assert _schema_valid(delivered)


async def test_a_2_3_declaration_in_hours_reaches_the_gemeente_as_a_trajectory_with_its_vat(
    harness_2_3: Harness,
) -> None:
    """iJw 2.3 on both sides: the provider's JW303 line of 17 hours (21 % VAT) reaches Diemen
    as one trajectory at the contract's price, VAT and totals recomputed; Diemen's JW304
    granting it reaches the provider in its hours and amounts."""
    harness = harness_2_3
    for party, raw in (("provider-b", request_2_3()), ("diemen", allocation_2_3())):
        state, reason, _, _ = await _stored(harness, await harness.submit(party, raw))
        assert state is State.QUEUED, reason
    allocated = harness.store.ledger_entry(LedgerKey.allocation(DIEMEN, NUMMER))
    assert allocated is not None and allocated.conversion is not None

    declared = HOURS * HOURLY
    declared_btw = (declared * 21 + 50) // 100
    state, reason, raw, delivered = await _stored(
        harness, await harness.submit("provider-b", claim_2_3(2100))
    )
    assert state is State.QUEUED, reason
    assert figures_2_3(raw)["DeclaratieFactuurBedrag"] == str(declared + declared_btw)
    btw = TRAJECTORY_TARIFF * 21 // 100
    invoiced = str(TRAJECTORY_TARIFF + btw)
    assert figures_2_3(delivered) == {
        "ProductCode": "45Q02",
        "GeleverdVolume": "1",
        "Eenheid": "82",
        "ProductTarief": str(TRAJECTORY_TARIFF),
        "BerekendBedrag": str(TRAJECTORY_TARIFF),
        "BtwPercentage": "2100",
        "BtwBedrag": str(btw),
        "DeclaratieFactuurBedrag": invoiced,
        "DeclaratieFactuurTotaalBedrag": invoiced,
        "BtwTotaalBedrag": str(btw),
    }
    assert validate(delivered, _SCHEMAS_2_3).level is Level.OK  # XSD, BVO002 and the rest

    document = validate(delivered, _SCHEMAS_2_3).document
    assert document is not None
    reply = build_retour(document, (), RetourIdentity("0384", dt.date(2026, 4, 20)), _SCHEMAS_2_3)
    state, reason, raw, delivered = await _stored(harness, await harness.submit("diemen", reply))
    assert state is State.QUEUED, reason
    assert figures_2_3(raw)["ToegekendBedrag"] == invoiced
    back = figures_2_3(delivered)
    assert (back["ProductCode"], back["GeleverdVolume"], back["Eenheid"]) == ("45A50", "17", "04")
    assert back["BerekendBedrag"] == str(declared) and back["BtwBedrag"] == str(declared_btw)
    for name in ("DeclaratieFactuurBedrag", "ToegekendBedrag", "ToegekendTotaalBedrag"):
        assert back[name] == str(declared + declared_btw), name
    assert validate(delivered, _SCHEMAS_2_3).level is Level.OK


@pytest.mark.parametrize("decided", [True], indirect=True)
async def test_a_decision_on_a_unit_changing_pair_records_its_declared_conversion(
    decided: Harness,
) -> None:
    harness = decided
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    message_id = str((await harness.submit("provider-b", request))["id"])
    assert (held := harness.store.get(message_id)) is not None and held.state is State.HELD

    done = await decide_mapping(
        harness.service.decisions, message_id, "45/45Q02", reason="gezinsplan", actor="toegang"
    )

    # The decided pair converts as the table's own would: Omvang towards the trajectory, the
    # provider's 4 hours a week recorded for the way back, and its declaration priced.
    assert done.message.state is State.QUEUED
    delivered = harness.store.delivery_payload(message_id) or b""
    assert products(delivered) == [("45", "45Q02")]
    assert omvang(delivered, "AangevraagdProduct") == ("1", "82", "4")
    pair = harness.store.ledger_entry(LedgerKey.request(DIEMEN, REFERENTIE))
    assert pair is not None and pair.conversion is not None
    assert pair.source_omvang == Omvang(4, "04", "2") and pair.decided_by == "toegang"
    await harness.submit("diemen", variant(allocation(), 2))
    state, _, _, delivered = await _stored(harness, await harness.submit("provider-b", claim()))
    assert state is State.QUEUED
    assert line_figures(delivered)["IngediendBedrag/Bedrag"] == str(TRAJECTORY_TARIFF)


@pytest.mark.parametrize("decided", [False], indirect=True)
async def test_a_unit_changing_pair_without_a_conversion_is_never_passed_in_the_old_unit(
    decided: Harness,
) -> None:
    harness = decided
    request = jw315(PROVIDER, DIEMEN, REFERENTIE, "45", "45A50", BEGIN, ("4", "04", "2"))
    message_id = str((await harness.submit("provider-b", request))["id"])

    with pytest.raises(DecisionError, match="Eenheid changes 04 -> 82"):
        await decide_mapping(
            harness.service.decisions, message_id, "45/45Q02", reason="plan", actor="toegang"
        )

    # Nothing recorded, nothing delivered: the request still waits for a decision or its
    # decision deadline, in hours.
    assert harness.store.ledger_entry(LedgerKey.request(DIEMEN, REFERENTIE)) is None
    assert (held := harness.store.get(message_id)) is not None and held.state is State.HELD
