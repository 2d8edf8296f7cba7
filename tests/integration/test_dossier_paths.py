"""The dossier in the daemon, path by path: pending entries settled by the recipient's retour
(both arrival orders), operator replays, the per-client lock, the valid process end to end,
JW325 provider findings, the submission of a wholly rejected JW323, TR381 with a code list,
and the request clocks on /metrics.

Real GatewayService over HTTP on SQLite, FakeClock at the scenarios' TODAY (2026-09-01).
Gemeente 0384 (``diemen``) is answered by the BVO; aanbieder 42420001 (``provider-a``) answers
itself unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from structlog.testing import capture_logs

from gateway.core.document import MessageDocument
from gateway.core.report import Finding, Level
from gateway.core.retour import RetourIdentity, build_retour
from gateway.core.validate import validate
from gateway.service.operator import Operator
from gateway.store.base import MessageQuery
from gateway.store.tables import REGISTER
from tests.integration.conftest import Harness, samples, start_harness, stop_harness
from tests.unit.dossier.scenario import (
    BSN,
    REF_1,
    REF_2,
    TODAY,
    Line,
    antwoord,
    declaratie,
    only_first,
    start,
    stop,
    toewijzing,
    vot,
)
from tests.unit.rules.mutate import Mutable, official_schema_set

TODAY_AT = dt.datetime.combine(TODAY, dt.time(9, 0), tzinfo=dt.UTC)
APRIL = ("2026-04-01", "2026-04-30")
MAY = ("2026-05-01", "2026-05-31")
Parties = dict[str, dict[str, object]]
GEMEENTE_ANSWERED: Parties = {"diemen": {"answered_by": "bvo"}}
BOTH_ANSWERED: Parties = {"diemen": {"answered_by": "bvo"}, "provider-a": {"answered_by": "bvo"}}
RULES = 'dossier = true\nproduct_codes = ""'
PRODUCT_1 = "/Bericht/Client/ToegewezenProducten/ToegewezenProduct[1]"
_retour_ids = itertools.count(1)

MakeGateway = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(overrides, rules=...)``: a gateway at TODAY, closed afterwards."""
    made: list[Harness] = []

    async def make(
        overrides: dict[str, dict[str, object]] | None = None, rules: str = RULES, extra: str = ""
    ) -> Harness:
        folder = tmp_path / f"gateway{len(made)}"
        harness = await start_harness(
            folder,
            GEMEENTE_ANSWERED if overrides is None else overrides,
            extra,
            rules,
            now=TODAY_AT,
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await stop_harness(harness)


def _retour_of(harness: Harness, message_id: str) -> etree._Element | None:
    for message in harness.store.query(MessageQuery(limit=1000)):
        if message.in_reply_to == message_id:
            raw = harness.store.payload(message.id)
            assert raw is not None
            return etree.fromstring(raw)
    return None


def _class_of(code: etree._Element) -> etree._Element:
    """The class a RetourCode is about (RetourCode < RetourCodes < class)."""
    codes = code.getparent()
    holder = codes.getparent() if codes is not None else None
    assert holder is not None
    return holder


def _codes(retour: etree._Element | None) -> list[tuple[str, str]]:
    """(class local name, code) of every RetourCode that is not an acceptance."""
    assert retour is not None
    found = []
    for code in retour.iter("{*}RetourCode"):
        holder = _class_of(code)
        if code.text not in ("0200", "8001"):
            found.append((etree.QName(holder).localname, code.text or ""))
    return found


def _verdicts(harness: Harness, message_id: str) -> set[str]:
    with harness.store.engine.connect() as conn:
        rows = conn.execute(
            select(REGISTER.c.verdict).where(
                REGISTER.c.message_id == message_id, REGISTER.c.kind != "identification"
            )
        ).all()
    return {row[0] for row in rows}


def provider_retour(original: Mutable, *findings: Finding) -> bytes:
    """The retour the provider itself sends for ``original`` (JW302 for a JW301)."""
    report = validate(original.to_bytes(), official_schema_set())
    assert isinstance(report.document, MessageDocument)
    identity = RetourIdentity(f"P{next(_retour_ids)}", dt.date(2026, 4, 2))
    return build_retour(report.document, findings, identity, official_schema_set())


REJECTION = Finding(
    "TR379", "no request", "9379", PRODUCT_1 + "/ReferentieAanbieder", level=Level.STATE
)


# --- pending entries settled by the provider's JW302 -------------------------------------------


@pytest.mark.parametrize("retour_first", [False, True], ids=["jw301-first", "jw302-first"])
@pytest.mark.parametrize("rejected", [False, True], ids=["accepted", "rejected"])
async def test_pending_allocation_settled_by_the_providers_jw302(
    make_gateway: MakeGateway, retour_first: bool, rejected: bool
) -> None:
    """OP080: the JW301 to a provider that answers itself is pending until its JW302, in
    whichever order they arrive; a rejecting JW302 rejects its entries, so a start on the
    assignment then gets 9019, and an accepting one makes them accepted."""
    harness = await make_gateway()
    await harness.submit("provider-a", vot().to_bytes())
    allocation = toewijzing()
    answer = provider_retour(allocation, *([REJECTION] if rejected else []))
    steps = [("diemen", allocation.to_bytes()), ("provider-a", answer)]
    ids = {}
    for party, raw in reversed(steps) if retour_first else steps:
        sent = await harness.submit(party, raw)
        assert sent["state"] == "queued", sent
        ids[party] = str(sent["id"])
    settled = "rejected" if rejected else "accepted"
    assert _verdicts(harness, ids["diemen"]) == {settled}

    started = await harness.submit("provider-a", start().to_bytes())
    codes = _codes(_retour_of(harness, str(started["id"])))
    if rejected:
        assert started["state"] == "rejected"
        assert codes == [("StartProduct", "9019"), ("StartProduct", "9019")]
    else:
        assert started["state"] == "queued"
        assert codes == []


async def test_pending_allocation_counts_before_its_retour(make_gateway: MakeGateway) -> None:
    """No JW302 yet: the allocation is pending and a start on it is accepted (OP080)."""
    harness = await make_gateway()
    await harness.submit("provider-a", vot().to_bytes())
    sent = await harness.submit("diemen", toewijzing().to_bytes())
    assert _verdicts(harness, str(sent["id"])) == {"pending"}
    started = await harness.submit("provider-a", start().to_bytes())
    assert started["state"] == "queued"


# --- replays ------------------------------------------------------------------------------------


async def test_operator_replay_does_not_collide_with_its_original(
    make_gateway: MakeGateway,
) -> None:
    """A replayed JW323 is checked without its original's entries: no TR056 (Identificatie),
    TR333 (DeclaratieNummer) or TR314 (ReferentieNummer) against itself, and it adds none."""
    harness = await make_gateway()
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    await harness.submit("provider-a", start().to_bytes())
    claim = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    original = await harness.submit("provider-a", claim)
    assert original["state"] == "queued"

    replayed = await Operator(harness.service, "operator:test").replay(
        str(original["id"]), "resend after a lost acknowledgement"
    )
    assert harness.store.replay_of(replayed.id) == original["id"]
    assert replayed.state.value == "queued", replayed.reason
    assert harness.store.findings(replayed.id) == []
    assert _codes(_retour_of(harness, replayed.id)) == []
    with harness.store.engine.connect() as conn:
        lines = conn.execute(
            select(REGISTER.c.message_id).where(REGISTER.c.kind == "claim_line")
        ).all()
    assert [row[0] for row in lines] == [original["id"]]

    # A new JW323 reusing the number still collides with the original.
    again = declaratie("D1", MAY, "2026-06-05", Line("R1", *MAY))
    refused = await harness.submit("provider-a", again)
    assert refused["state"] == "rejected"
    assert sorted(_codes(_retour_of(harness, str(refused["id"])))) == [
        ("DeclaratieAntwoord", "9333")
    ]


# --- the per-client lock ------------------------------------------------------------------------


async def test_concurrent_claims_with_one_number_only_one_passes(
    make_gateway: MakeGateway,
) -> None:
    """Two JW323s about one client with the same DeclaratieNummer submitted at once: the lock
    spans check and commit, so exactly one is accepted and the other gets 9333."""
    harness = await make_gateway()
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    provider = harness.service.registry.get("provider-a")
    assert provider is not None
    claims = [
        declaratie("D7", APRIL, "2026-05-05", Line("R1", *APRIL)),
        declaratie("D7", MAY, "2026-06-05", Line("R2", *MAY)),
    ]
    receipts = await asyncio.gather(
        *(harness.service.intake.submit(provider, raw, "party:provider-a") for raw in claims)
    )
    states = sorted(r.message.state.value for r in receipts)
    assert states == ["queued", "rejected"]
    loser = next(r.message for r in receipts if r.message.state.value == "rejected")
    assert [f["rule"] for f in harness.store.findings(loser.id)] == ["TR333"]
    assert _codes(_retour_of(harness, loser.id)) == [("DeclaratieAntwoord", "9333")]


# --- the valid process, end to end --------------------------------------------------------------


async def test_valid_process_paths_produce_no_codes(make_gateway: MakeGateway) -> None:
    """Request, investigation, allocation, start, temporary then final stop, correction by
    delete-and-resend, and credit then re-debit: every retour the gateway sends is clean."""
    harness = await make_gateway(BOTH_ANSWERED)
    correction = only_first(start("2026-04-20"), "StartProduct")
    correction.duplicate("Client/StartProducten/StartProduct")
    correction.set("Client/StartProducten/StartProduct[1]/StatusAanlevering", "3")
    correction.set("Client/StartProducten/StartProduct[2]/Begindatum", "2026-04-07")
    temporary = only_first(stop("2026-05-02", reden="20", einddatum="2026-04-30"), "StopProduct")
    temporary.set("Client/StopProducten/StopProduct/Begindatum", "2026-04-07")
    final = only_first(stop("2026-07-20", einddatum="2026-07-14"), "StopProduct")
    final.set("Client/StopProducten/StopProduct/Begindatum", "2026-04-07")
    path: list[tuple[str, bytes]] = [
        ("provider-a", vot().to_bytes()),
        ("diemen", antwoord(REF_1, "2").to_bytes()),
        ("diemen", antwoord(REF_2, "2").to_bytes()),
        ("diemen", toewijzing().to_bytes()),
        ("provider-a", start().to_bytes()),
        ("provider-a", correction.to_bytes()),
        ("provider-a", declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))),
        (
            "provider-a",
            declaratie(
                "D2",
                APRIL,
                "2026-05-20",
                Line("R2", *APRIL, vorig="R1"),
                Line("R3", *APRIL, volume=9),
            ),
        ),
        ("provider-a", temporary.to_bytes()),
        ("provider-a", final.to_bytes()),
    ]
    for party, raw in path:
        sent = await harness.submit(party, raw)
        assert sent["state"] == "queued", sent
        assert harness.store.findings(str(sent["id"])) == []
        assert _codes(_retour_of(harness, str(sent["id"]))) == []


# --- JW325 with provider findings; the submission of a rejected JW323 ---------------------------


def _jw325_for(claim: bytes, **changes: str) -> bytes:
    """The gemeente's JW325 accepting every line of ``claim``, with ``changes`` applied."""
    report = validate(claim, official_schema_set())
    assert isinstance(report.document, MessageDocument)
    raw = build_retour(
        report.document,
        report.findings,
        RetourIdentity(f"G{next(_retour_ids)}", dt.date(2026, 5, 12)),
        official_schema_set(),
    )
    answer = Mutable(etree.ElementTree(etree.fromstring(raw)))
    for path, value in changes.items():
        answer.set(path.replace("__", "/"), value)
    return answer.to_bytes()


async def test_jw325_with_provider_findings_is_delivered_and_logged(
    make_gateway: MakeGateway,
) -> None:
    """A JW325 whose DeclaratieNummer is not the claim's (TR376): delivered to the provider,
    no retour, the finding kept, and one warning logged that names the rule and no BSN."""
    harness = await make_gateway({})  # Diemen answers itself: its JW325 is the real one
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    claim = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    sent = await harness.submit("provider-a", claim)
    assert sent["state"] == "queued"
    answer = _jw325_for(claim, DeclaratieAntwoord__DeclaratieNummer="D9")
    with capture_logs() as logs:
        delivered = await harness.submit("diemen", answer)
    assert delivered["state"] == "queued", delivered
    stored = harness.store.get(str(delivered["id"]))
    assert stored is not None
    assert stored.recipient == "provider-a"
    assert [f["rule"] for f in harness.store.findings(stored.id)] == ["TR376"]
    assert _retour_of(harness, stored.id) is None
    warnings = [e for e in logs if e["event"] == "delivered_with_provider_findings"]
    assert len(warnings) == 1
    assert warnings[0]["rules"] == ["TR376"]
    assert warnings[0]["log_level"] == "warning"
    assert all(BSN not in repr(entry) for entry in logs)


async def test_clean_jw325_is_delivered_without_findings(make_gateway: MakeGateway) -> None:
    """The gemeente's correct answer passes the provider checks silently."""
    harness = await make_gateway({})
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    claim = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    await harness.submit("provider-a", claim)
    with capture_logs() as logs:
        delivered = await harness.submit("diemen", _jw325_for(claim))
    assert delivered["state"] == "queued"
    assert harness.store.findings(str(delivered["id"])) == []
    assert not [e for e in logs if e["event"] == "delivered_with_provider_findings"]


async def test_wholly_rejected_jw323_is_remembered_as_submitted(
    make_gateway: MakeGateway,
) -> None:
    """A JW323 the gateway rejects as a whole (9333) establishes nothing but is stored as
    submitted, so a JW325 answering it is recognised (no TR337) and one naming another
    Identificatie is not."""
    harness = await make_gateway()
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    await harness.submit("provider-a", declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL)))
    again = declaratie("D1", MAY, "2026-06-03", Line("R5", *MAY))
    refused = await harness.submit("provider-a", again)
    assert refused["state"] == "rejected"
    assert _verdicts(harness, str(refused["id"])) == {"accepted"}  # the submission row only
    with harness.store.engine.connect() as conn:
        kinds = conn.execute(
            select(REGISTER.c.kind).where(REGISTER.c.message_id == refused["id"])
        ).all()
    assert [row[0] for row in kinds] == ["submitted"]

    answer = _jw325_for(again)
    known = await harness.submit("diemen", answer)
    assert known["state"] == "queued"
    assert harness.store.findings(str(known["id"])) == []
    unknown = await harness.submit(
        "diemen", _jw325_for(again, Header__DeclaratieIdentificatie__Identificatie="NOPE")
    )
    assert unknown["state"] == "queued"
    assert [f["rule"] for f in harness.store.findings(str(unknown["id"]))] == ["TR337"]


# --- TR381 with a product code list --------------------------------------------------------------


async def test_tr381_against_the_configured_code_lists(make_gateway: MakeGateway) -> None:
    """``product_codes = "JZ21, SYNTHETIC-EXAMPLES"`` (the union of both lists): the examples'
    55A11/55A12 pass and a start naming 55A13 in category 55 gets S329 on that StartProduct."""
    harness = await make_gateway(
        BOTH_ANSWERED, rules='dossier = true\nproduct_codes = "JZ21, SYNTHETIC-EXAMPLES"'
    )
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        sent = await harness.submit(party, message.to_bytes())
        assert sent["state"] == "queued", sent
    wrong = start().set("Client/StartProducten/StartProduct[2]/Product/Code", "55A13")
    refused = await harness.submit("provider-a", wrong.to_bytes())
    assert refused["state"] == "rejected"
    assert [f["rule"] for f in harness.store.findings(str(refused["id"]))] == ["TR381"]
    assert _codes(_retour_of(harness, str(refused["id"]))) == [("StartProduct", "S329")]


async def test_shipped_jz21_alone_lacks_category_55(make_gateway: MakeGateway) -> None:
    """The shipped JZ21 export has no category-55 (landelijk ingekochte zorg) codes, so with
    it alone the official examples' JW315 gets S329 on both requested products."""
    harness = await make_gateway(rules='dossier = true\nproduct_codes = "JZ21"')
    refused = await harness.submit("provider-a", vot().to_bytes())
    assert refused["state"] == "rejected"
    assert _codes(_retour_of(harness, str(refused["id"]))) == [
        ("AangevraagdProduct", "S329"),
        ("AangevraagdProduct", "S329"),
    ]


# --- the other external-list rules (TR135, TR378, TR346, TR418) ---------------------------------


async def _allocated(harness: Harness) -> None:
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        sent = await harness.submit(party, message.to_bytes())
        assert sent["state"] == "queued", sent


async def test_tr135_dagtekening_after_the_gateways_day(make_gateway: MakeGateway) -> None:
    """8848 on the header of a start dated tomorrow by the gateway's (injected) clock."""
    harness = await make_gateway()
    await _allocated(harness)
    refused = await harness.submit("provider-a", start("2026-09-02").to_bytes())
    assert refused["state"] == "rejected"
    assert [f["rule"] for f in harness.store.findings(str(refused["id"]))] == ["TR135"]
    assert _codes(_retour_of(harness, str(refused["id"]))) == [("Header", "8848")]


async def test_tr378_gemeente_not_in_the_cbs_list(make_gateway: MakeGateway) -> None:
    """S300 on the header when the addressed gemeente (a configured party) is not a CBS code."""
    harness = await make_gateway(
        {**GEMEENTE_ANSWERED, "amsterdam": {"identity": "0999", "answered_by": "bvo"}}
    )
    request = vot().set("Header/Ontvanger", "0999")
    refused = await harness.submit("provider-a", request.to_bytes())
    assert refused["state"] == "rejected"
    assert [f["rule"] for f in harness.store.findings(str(refused["id"]))] == ["TR378"]
    assert _codes(_retour_of(harness, str(refused["id"]))) == [("Header", "S300")]


async def test_tr346_amount_is_not_volume_times_tariff(make_gateway: MakeGateway) -> None:
    """9346 on the one prestatie whose IngediendBedrag is off; the other line is accepted."""
    harness = await make_gateway()
    await _allocated(harness)
    wrong = Line("R2", *APRIL, toewijzing="300202", code="55A12", eenheid="16", bedrag=10001)
    claim = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL), wrong)
    sent = await harness.submit("provider-a", claim)
    assert sent["state"] == "queued", sent
    assert [f["rule"] for f in harness.store.findings(str(sent["id"]))] == ["TR346"]
    assert _codes(_retour_of(harness, str(sent["id"]))) == [("Prestatie", "9346")]


async def test_tr418_tariff_differs_from_the_contract(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """0611 on the prestatie whose ProductTarief is not the contract tariff of [lists]."""
    table = tmp_path / "contracts.csv"
    table.write_text(
        "# kind: contracts\n# codes: SYNTHETIC-EXAMPLES\n"
        "gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note\n"
        "0384,42420001,55,55A11,04,1250,2026-01-01,,test contract\n",
        encoding="utf-8",
    )
    harness = await make_gateway(extra=f'[lists]\ncontracts = "{table}"')
    await _allocated(harness)
    good = await harness.submit(
        "provider-a", declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    )
    assert good["state"] == "queued"
    assert harness.store.findings(str(good["id"])) == []
    dear = declaratie("D2", MAY, "2026-06-05", Line("R2", *MAY, tarief=1300))
    refused = await harness.submit("provider-a", dear)
    assert refused["state"] == "rejected"
    assert [f["rule"] for f in harness.store.findings(str(refused["id"]))] == ["TR418"]
    assert _codes(_retour_of(harness, str(refused["id"]))) == [("Prestatie", "0611")]


# --- request clocks on /metrics -----------------------------------------------------------------


async def test_metrics_show_an_overdue_request(make_gateway: MakeGateway) -> None:
    """A JW315 unanswered for more than 5 working days counts against the gemeente in
    ``gateway_overdue_answers``, once per requested product (each ReferentieAanbieder gets
    its own JW319, so its own clock); every other party shows 0."""
    harness = await make_gateway()
    await harness.submit("provider-a", vot("2026-09-01").to_bytes())

    async def overdue() -> dict[str, float]:
        found = samples(await harness.metrics(), "gateway_overdue_answers")
        return {dict(labels)["party"]: value for labels, value in found.items()}

    on_time = await overdue()
    assert on_time["diemen"] == 0
    assert set(on_time) >= {"bvo", "diemen", "amsterdam", "provider-a", "provider-b"}
    harness.clock.advance(days=14)
    late = await overdue()
    assert late["diemen"] == 2  # REF_1 and REF_2
    assert {party: n for party, n in late.items() if party != "diemen"} == {
        party: 0 for party in late if party != "diemen"
    }
