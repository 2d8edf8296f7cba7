"""The shipped demo keeps its promises: docs/examples/ sent through a gateway built from the real
config.toml, mappings/ and schemas/, with the demo tokens the README prints.

docs/examples/README.md describes, file by file, who sends it, what the gateway does with it
(translation, retour, retour codes) and in which state it ends; this test asserts exactly that,
so the README's "Try it" section cannot drift from what the daemon does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from gateway.clock import FakeClock
from gateway.contracts import load_contract_table
from gateway.core.model import State
from gateway.core.validate import validate
from gateway.daemon.app import Gateway, build_app, build_service
from gateway.daemon.prepare_workers import PreparePool
from gateway.schemas import load_schema_set
from gateway.store.base import MessageQuery
from tests.integration.demo_config import (
    DOSSIER,
    EXAMPLES,
    FAULTY,
    LEG_2_3,
    LEGACY_CODE,
    PROFILE_CODE,
    demo_token,
    message_type,
    product_codes,
    refusals,
    shipped_demo_settings,
)
from tests.paths import OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23, REPO

# The day the demo is run in this test: after every Dagtekening of the dossier (TR135).
DEMO_DAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(params=[0, 1], ids=["in-process", "prepare-worker"])
async def demo(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Gateway, TestClient]]:  # type: ignore[type-arg]
    """A gateway on a copy of the shipped config.toml (tests/integration/demo_config.py),
    preparing messages in its own threads or in a prepare worker process (``[server]
    prepare_workers``): the demo must go through the same either way."""
    settings = shipped_demo_settings(tmp_path)
    gateway = build_app(settings, clock=FakeClock(DEMO_DAY), rng=random.Random(7))
    gateway.delivery.pass_wait = None
    gateway.store.migrate()
    pool = None
    if request.param:
        pool = PreparePool(settings, request.param, build_service)
        await pool.start()
        gateway.service.intake.prepare_pool = pool
    client = TestClient(TestServer(gateway.web_app))
    await client.start_server()
    yield gateway, client
    await client.close()
    if pool is not None:
        await pool.close()
    await gateway.delivery.close()
    gateway.store.close()


def _retour_of(gateway: Gateway, message_id: str) -> bytes | None:
    for message in gateway.store.query(MessageQuery(limit=1000)):
        if message.in_reply_to == message_id:
            return gateway.store.payload(message.id)
    return None


def _declared_total(file: Path) -> str:
    """The TotaalIngediendBedrag of a JW323 file, as it was written."""
    total = etree.parse(file).findtext("{*}Declaratie/{*}TotaalIngediendBedrag/{*}TotaalBedrag")
    return total or ""


def _release_2_3(raw: bytes) -> bool:
    return "/ijw/2_3/" in (etree.QName(etree.fromstring(raw)).namespace or "")


def test_demo_tokens_are_the_configured_ones() -> None:
    """The tokens the README prints are the ones config.toml stores the digest of."""
    parties = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))["parties"]
    for party in parties:
        digest = hashlib.sha256(demo_token(party["id"]).encode()).hexdigest()
        assert party["token_sha256"] == digest, party["id"]


def test_every_demo_file_is_valid_against_the_official_schemas() -> None:
    schemas = load_schema_set([OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23])
    files = sorted(EXAMPLES.glob("*.xml"))
    assert [f.name for f in files] == [s.file for s in (*DOSSIER, *LEG_2_3, FAULTY)]
    for file in files:
        report = validate(file.read_bytes(), schemas)
        assert report.ok, (file.name, [f.rule for f in report.findings])


def test_the_declared_amount_is_volume_times_the_contract_tariff() -> None:
    """TR418/TR346 as the gemeente sees the line: translated to its profile code, the tariff of
    the shipped contract table, and IngediendBedrag = GeleverdVolume x that tariff."""
    contracts = load_contract_table(
        REPO / "mappings" / "contracts" / "SYNTHETIC_contracts_ijsselland.csv", REPO / "mappings"
    )
    line = next(etree.parse(EXAMPLES / "07-JW323.xml").iter("{*}Prestatie"))
    begin = dt.date.fromisoformat(line.findtext("{*}ProductPeriode/{*}Begindatum") or "")
    tariff = contracts.tariff("0150", "42420001", *PROFILE_CODE, begin)
    assert tariff is not None
    assert tariff.eenheid == line.findtext("{*}Eenheid")
    assert line.findtext("{*}ProductTarief") == str(tariff.tarief)
    volume = int(line.findtext("{*}GeleverdVolume") or "")
    assert line.findtext("{*}IngediendBedrag/{*}Bedrag") == str(volume * tariff.tarief)


async def test_the_demo_dossier_goes_through_as_documented(
    demo: tuple[Gateway, TestClient],  # type: ignore[type-arg]
) -> None:
    gateway, client = demo
    sent: dict[str, str] = {}
    for step in (*DOSSIER, *LEG_2_3, FAULTY):
        response = await client.post(
            "/v1/messages",
            data=(EXAMPLES / step.file).read_bytes(),
            headers={"Authorization": f"Bearer {demo_token(step.sender)}"},
        )
        assert response.status == 202, (step.file, await response.text())
        message_id = str((await response.json())["id"])
        sent[step.file] = message_id
        stored = gateway.store.get(message_id)
        assert stored is not None
        findings = [f["rule"] for f in gateway.store.findings(message_id)]
        assert stored.state is step.state, (step.file, stored.reason, findings)
        if step.state is State.QUEUED:
            assert (stored.recipient, findings) == (step.recipient, []), step.file
        retour = _retour_of(gateway, message_id)
        if step.retour_type is None:
            assert retour is None, step.file
        else:
            assert retour is not None, step.file
            assert message_type(retour) == step.retour_type
            assert refusals(retour) == list(step.retour_codes), step.file
            if step.retour_type == "JW325":  # the whole declaration is accepted
                answer = etree.fromstring(retour)
                declared = answer.findtext("{*}*/{*}TotaalIngediendBedrag/{*}TotaalBedrag")
                granted = answer.findtext("{*}*/{*}TotaalToegekendBedrag/{*}TotaalBedrag")
                assert declared == granted == _declared_total(EXAMPLES / step.file)
            if step.retour_type == "JW304":  # in 2.3, the whole invoice granted
                answer = etree.fromstring(retour)
                declared = answer.findtext("{*}*/{*}*/{*}IngediendTotaalBedrag/{*}TotaalBedrag")
                granted = answer.findtext("{*}*/{*}*/{*}ToegekendTotaalBedrag/{*}TotaalBedrag")
                total = etree.parse(EXAMPLES / step.file).findtext(
                    "{*}*/{*}*/{*}DeclaratieFactuurTotaalBedrag/{*}TotaalBedrag"
                )
                assert declared == granted == total
                assert _release_2_3(retour) and product_codes(retour) == {LEGACY_CODE}
        if step.delivered_code is not None:
            payload = gateway.store.delivery_payload(message_id)
            assert payload is not None
            # Translated for the recipient's generation; the sender's codes stay in the original.
            assert product_codes(payload) == {step.delivered_code}, step.file
            original = (EXAMPLES / step.file).read_bytes()
            assert product_codes(original) != {step.delivered_code}, step.file
            # Each side gets the release it speaks on the Dagtekening: 2.3 in the 2018 leg.
            assert _release_2_3(payload) == _release_2_3(original), step.file

    # Nothing of the demo is held for a mapping decision (or for any other reason).
    assert not [m for m in gateway.store.query(MessageQuery(limit=1000)) if m.state is State.HELD]

    # Delivery: Deventer's folder gets the five translated originals, Zorgpartners' folder the
    # JW306 with 9019; Jeugdhulp Oost's mailbox holds the JW301 (legacy code) and the retours.
    await gateway.delivery.tick()
    deventer = sorted((gateway.settings.outbox / "gemeente-deventer").glob("*.xml"))
    assert sorted(message_type(f.read_bytes()) for f in deventer) == sorted(
        ["JW315", "JW305", "JW317", "JW307", "JW323", "JW315", "JW303"]
    )
    # The JW317 changes only the Omvang of the allocation: it names no product code.
    assert all(product_codes(f.read_bytes()) <= {PROFILE_CODE} for f in deventer)
    [zorgpartners] = (gateway.settings.outbox / "zorgpartners").glob("*.xml")
    assert message_type(zorgpartners.read_bytes()) == "JW306"
    assert refusals(zorgpartners.read_bytes()) == [("StartProduct", "9019")]
    zwolle = await client.get(
        "/v1/mailbox", headers={"Authorization": f"Bearer {demo_token('gemeente-zwolle')}"}
    )
    assert (await zwolle.json())["messages"] == []  # the rejected start never reaches Zwolle

    auth = {"Authorization": f"Bearer {demo_token('jeugdhulp-oost')}"}
    listing = await client.get("/v1/mailbox", headers=auth)
    assert listing.status == 200
    mailbox = (await listing.json())["messages"]
    assert sorted(item["message_type"] for item in mailbox) == sorted(
        ["JW301", "JW316", "JW306", "JW318", "JW319", "JW308", "JW325"]
    )
    for item in mailbox:
        fetched = await client.get(f"/v1/mailbox/{item['id']}", headers=auth)
        carried = product_codes(await fetched.read())
        if item["message_type"] == "JW301":
            assert carried == {LEGACY_CODE}
        else:
            # A clean retour is the header only; whatever it carries must be the provider's code.
            assert carried <= {LEGACY_CODE}, item["message_type"]

    # Horizon (still on 2.3) gets the allocation and the JW304, both in 2.3 and its own code.
    auth = {"Authorization": f"Bearer {demo_token('horizon')}"}
    mailbox = (await (await client.get("/v1/mailbox", headers=auth)).json())["messages"]
    assert sorted(item["message_type"] for item in mailbox) == ["JW301", "JW304", "JW316"]
    for item in mailbox:
        fetched = await (await client.get(f"/v1/mailbox/{item['id']}", headers=auth)).read()
        assert _release_2_3(fetched) and product_codes(fetched) <= {LEGACY_CODE}
