"""The pure pipeline decision: reject, route, hold, and when the gateway answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import pytest

from gateway.core.model import State
from gateway.core.pipeline import OPERATOR_HOLD, decide
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.route import Channel, Party, PartyRegistry, PartyRole
from gateway.core.rules import RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR

TODAY = dt.date(2026, 5, 1)

BVO = Party("bvo", PartyRole.BVO, None, Channel.MAILBOX)
DIEMEN = Party("diemen", PartyRole.GEMEENTE, "0384", Channel.FOLDER)
AMSTERDAM = Party("amsterdam", PartyRole.GEMEENTE, "0363", Channel.MAILBOX, answered_by="bvo")
PROVIDER_A = Party("provider-a", PartyRole.AANBIEDER, "42420001", Channel.MAILBOX)
PROVIDER_B = Party("provider-b", PartyRole.AANBIEDER, "65656055", Channel.FOLDER)
ALL = (BVO, DIEMEN, AMSTERDAM, PROVIDER_A, PROVIDER_B)


@cache
def _schemas() -> SchemaSet:
    return load_schema_set([OFFICIAL_XSD_DIR])


def _report(name: str) -> ValidationReport:
    raw = (EXAMPLES_DIR / f"{name}.xml").read_bytes()
    return validate(raw, _schemas(), RuleContext(today=TODAY))


def _registry(*parties: Party) -> PartyRegistry:
    return PartyRegistry(parties or ALL)


def test_original_routed_to_header_ontvanger() -> None:
    """JW301 from Diemen (0384) goes to the provider with AGB 42420001, queued."""
    decision = decide(_report("JW301"), DIEMEN, _registry(), TODAY)
    assert decision.state is State.QUEUED
    assert decision.recipient == PROVIDER_A
    assert decision.answer_for is None


def test_retour_routed_back_to_header_afzender() -> None:
    """A JW302 keeps the original's header: it travels from Ontvanger back to Afzender."""
    decision = decide(_report("JW302"), PROVIDER_A, _registry(), TODAY)
    assert decision.state is State.QUEUED
    assert decision.recipient == DIEMEN
    assert decision.answer_for is None


def test_gateway_answers_for_a_municipality_with_answered_by() -> None:
    """JW305 to Amsterdam (answered by the BVO) is queued and the gateway builds the JW306."""
    decision = decide(_report("JW305"), PROVIDER_B, _registry(), TODAY)
    assert decision.state is State.QUEUED
    assert decision.recipient == AMSTERDAM
    assert decision.answer_for == AMSTERDAM


def test_retours_are_never_answered() -> None:
    """A JW306 sent on Amsterdam's behalf by the BVO is routed, not answered again."""
    decision = decide(_report("JW306"), BVO, _registry(), TODAY)
    assert decision.state is State.QUEUED
    assert decision.recipient == PROVIDER_B
    assert decision.answer_for is None


@pytest.mark.parametrize(
    ("example", "sender"),
    [("JW301", PROVIDER_A), ("JW305", DIEMEN), ("JW302", DIEMEN), ("JW301", BVO)],
)
def test_sender_identity_mismatch_rejected(example: str, sender: Party) -> None:
    """A party may only send as itself (or as a party its BVO answers for)."""
    decision = decide(_report(example), sender, _registry(), TODAY)
    assert decision.state is State.REJECTED
    assert decision.reason.startswith("sender identity mismatch")
    assert decision.answer_for is None


def test_unknown_recipient_rejected() -> None:
    """No party with the header Ontvanger: rejected, and nobody is answered."""
    decision = decide(_report("JW305"), PROVIDER_B, _registry(PROVIDER_B), TODAY)
    assert decision.state is State.REJECTED
    assert decision.reason == "unknown recipient 0363"
    assert decision.recipient is None


def test_malformed_and_xsd_invalid_rejected_without_retour() -> None:
    """Transport-level faults get no retour message, whoever the recipient is."""
    malformed = validate(b"<Bericht><oops></Bericht>", _schemas())
    xsd = _report("JW318")
    assert xsd.level is Level.XSD
    for report in (malformed, xsd):
        decision = decide(report, PROVIDER_B, _registry(), TODAY)
        assert decision.state is State.REJECTED
        assert decision.answer_for is None
    assert decide(malformed, PROVIDER_B, _registry(), TODAY).reason.startswith("malformed")
    assert "XSD" in decide(xsd, PROVIDER_B, _registry(), TODAY).reason


@pytest.mark.parametrize("level", [Level.RULES, Level.STATE, Level.EXTERNAL])
def test_rule_failures_rejected_and_answered(level: Level) -> None:
    """Rule findings reject the message; when the gateway answers, a retour is due."""
    ok = _report("JW305")
    failed = dataclasses.replace(
        ok, level=level, findings=(Finding("TR999", "made up", "9999", level=level),)
    )
    decision = decide(failed, PROVIDER_B, _registry(), TODAY)
    assert decision.state is State.REJECTED
    assert "TR999" in decision.reason
    assert decision.answer_for == AMSTERDAM
    not_answered = decide(
        dataclasses.replace(_report("JW301"), level=level, findings=failed.findings),
        DIEMEN,
        _registry(),
        TODAY,
    )
    assert not_answered.state is State.REJECTED and not_answered.answer_for is None


@pytest.mark.parametrize(
    ("recipient", "holds", "state", "reason"),
    [
        (
            dataclasses.replace(PROVIDER_A, not_ready_until=dt.date(2026, 6, 1)),
            (),
            State.HELD,
            "party not ready until 2026-06-01",
        ),
        (
            dataclasses.replace(PROVIDER_A, not_ready_until=TODAY),
            (),
            State.QUEUED,
            "routed to provider-a",
        ),
        (
            dataclasses.replace(PROVIDER_A, paused=True),
            (),
            State.HELD,
            "party paused in configuration",
        ),
        (PROVIDER_A, ("provider-a",), State.HELD, OPERATOR_HOLD),
        (PROVIDER_A, ("provider-b",), State.QUEUED, "routed to provider-a"),
    ],
)
def test_held_when_recipient_not_ready(
    recipient: Party, holds: tuple[str, ...], state: State, reason: str
) -> None:
    """Paused, not-ready-until-later or operator-held recipients get their messages held."""
    decision = decide(_report("JW301"), DIEMEN, _registry(DIEMEN, recipient), TODAY, holds)
    assert (decision.state, decision.reason) == (state, reason)
    assert decision.recipient == recipient
