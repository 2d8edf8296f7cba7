"""The dossier rules through the daemon: real service, real SQLite register, injected clock.

Diemen (0384) is answered by the BVO here, so the gateway checks what providers send it and
answers with the retour; the scenario messages of tests/unit/dossier/scenario.py are sent
over HTTP and the retour the gateway generated is read back from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree
from sqlalchemy import select

from gateway.store.base import MessageQuery
from gateway.store.tables import REGISTER
from tests.integration.conftest import Harness
from tests.unit.dossier.scenario import Line, declaratie, start, toewijzing, vot

APRIL = ("2026-04-01", "2026-04-30")
# Diemen answered by the BVO; TR381 off: the official examples use category 55, which the
# shipped JZ21 export lacks.
OVERRIDES = {"diemen": {"answered_by": "bvo"}}
RULES = 'dossier = true\nproduct_codes = ""'


async def _harness(make_harness: Callable[..., Any]) -> Harness:
    built = await make_harness(overrides=OVERRIDES, rules=RULES)
    assert isinstance(built, Harness)
    return built


def _generated_retour(harness: Harness, message_id: str) -> etree._Element:
    for message in harness.store.query(MessageQuery(recipient="provider-a", limit=500)):
        if message.in_reply_to == message_id:
            raw = harness.store.payload(message.id)
            assert raw is not None
            return etree.fromstring(raw)
    raise AssertionError(f"no retour for {message_id}")


def _codes(retour: etree._Element) -> list[tuple[str, str]]:
    """(class local name, code) of every RetourCode in the retour."""
    found = []
    for code in retour.iter("{*}RetourCode"):
        holder = code.getparent().getparent()  # RetourCode < RetourCodes < class
        found.append((etree.QName(holder).localname, code.text or ""))
    return found


async def test_start_on_a_pending_allocation_is_accepted_and_unknown_number_is_9019(
    make_harness: Callable[..., Any],
) -> None:
    """OP080: the JW301 waits for the provider's JW302 (pending) but counts; a start on an
    unknown number gets 9019 on exactly that StartProduct."""
    harness = await _harness(make_harness)
    await harness.submit("provider-a", vot().to_bytes())
    sent = await harness.submit("diemen", toewijzing().to_bytes())
    assert sent["state"] == "queued"
    ok = await harness.submit("provider-a", start().to_bytes())
    assert ok["state"] == "queued", ok
    assert _codes(_generated_retour(harness, str(ok["id"]))) == []
    bad = start("2026-04-16")
    bad.set("Client/StartProducten/StartProduct[2]/ToewijzingNummer", "999999")
    refused = await harness.submit("provider-a", bad.to_bytes())
    assert refused["state"] == "rejected"
    codes = _codes(_generated_retour(harness, str(refused["id"])))
    assert ("StartProduct", "9019") in codes
    assert codes.count(("StartProduct", "9019")) == 1


async def test_jw323_partly_accepted_is_forwarded_and_only_accepted_lines_registered(
    make_harness: Callable[..., Any],
) -> None:
    """Spec section 4: one line on an unknown assignment is rejected (9338), the other line
    is accepted; the JW323 goes on to the gemeente and the JW325 grants the accepted total."""
    harness = await _harness(make_harness)
    for party, message in (("provider-a", vot()), ("diemen", toewijzing())):
        await harness.submit(party, message.to_bytes())
    await harness.submit("provider-a", start().to_bytes())
    good = Line("R1", *APRIL)
    wrong = Line("R2", *APRIL, toewijzing="999999")
    claim = declaratie("D1", APRIL, "2026-05-01", good, wrong)
    sent = await harness.submit("provider-a", claim)
    assert sent["state"] == "queued", sent
    answer = _generated_retour(harness, str(sent["id"]))
    assert ("Prestatie", "9338") in _codes(answer)
    assert ("DeclaratieAntwoord", "0200") in _codes(answer)
    returned = [t.text for t in answer.iter("{*}ReferentieNummer")]
    assert returned == ["R2"]
    granted = answer.find(".//{*}TotaalToegekendBedrag/{*}TotaalBedrag")
    assert granted is not None
    assert int(granted.text or "0") == good.signed
    with harness.store.engine.connect() as conn:
        lines = conn.execute(
            select(REGISTER.c.referentie, REGISTER.c.verdict).where(REGISTER.c.kind == "claim_line")
        ).all()
    assert lines == [("R1", "accepted")]
