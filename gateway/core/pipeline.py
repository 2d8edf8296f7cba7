"""What happens to a validated message: reject it, or route it, and whether we answer it.

Pure: the caller validated the message and passes the report, the authenticated party, the
registry, today's date and the parties an operator has put on hold. The edges store and move
messages according to the :class:`Decision` returned here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.document import element_path
from gateway.core.dossier import (
    RegisterUpdate,
    Verdict,
    claim_lines_in,
    entries_of,
    retour_verdict,
    submitted_declaration_in,
)
from gateway.core.model import State
from gateway.core.report import Level, ValidationReport
from gateway.core.route import Party, PartyRegistry, PartyRole, addressing, may_transmit_as
from gateway.core.rules import RuleContext
from gateway.core.rules.engine import run_rules
from gateway.core.rules.provider import PROVIDER_RULES, warnings_only
from gateway.core.rules.registry import REGISTRY

OPERATOR_HOLD = "operator hold"
# Reason prefix of a hold an operator put on one message: releasing its party leaves it held.
MESSAGE_HOLD = "operator hold (message)"
MALFORMED = "malformed message"
NOT_VALID_AGAINST_XSD = "not valid against the XSD"
"""How the reasons of messages rejected before any rule ran begin (no retour answers them)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one received message.

    ``state`` is where the message goes (``rejected``, ``queued`` or ``held``) and ``reason``
    why. ``recipient`` is the party it is routed to (None when it could not be routed).
    ``answer_for`` is set when the gateway answers with a retour on the recipient's behalf:
    then a retour is built and sent back to the party that transmitted the message.
    ``rejected_lines`` is set only for a JW323 the gateway answered and accepted in part.
    """

    state: State
    reason: str
    recipient: Party | None = None
    answer_for: Party | None = None
    rejected_lines: frozenset[str] = frozenset()
    """Of a JW323 accepted in part: the ReferentieNummers of the rejected prestaties."""

    @property
    def rejected(self) -> bool:
        """True when the message goes no further."""
        return self.state is State.REJECTED


def placement(party: Party, today: dt.date, holds: Collection[str]) -> tuple[State, str]:
    """Queue for delivery to ``party``, or hold with the reason it must wait."""
    reason = party.hold_reason(today)
    if reason is None and party.id in holds:
        reason = OPERATOR_HOLD
    if reason is not None:
        return State.HELD, reason
    return State.QUEUED, f"routed to {party.id}"


def failed_before_rules(reason: str | None) -> bool:
    """True for a rejection :func:`decide` made because the message could not be read or failed
    its XSD: the standard answers those through the transport (StUF055, CC02), not a retour."""
    return reason is not None and reason.startswith((MALFORMED, NOT_VALID_AGAINST_XSD))


def _summary(report: ValidationReport, limit: int = 5) -> str:
    codes = list(dict.fromkeys(f.rule for f in report.findings))
    shown = ", ".join(codes[:limit]) + (", ..." if len(codes) > limit else "")
    return shown or "no details"


def release_refusal(report: ValidationReport, sender: Party, today: dt.date) -> str | None:
    """Why a message is refused because its sender does not speak its iJw release on its
    Dagtekening (today when it has none), or None when it does or declares no release."""
    doc = report.document
    if doc is None:
        return None
    day = doc.dagtekening or today
    spoken = sender.release_on(day)
    if spoken is None or doc.release == spoken:
        return None
    return (
        f"release mismatch: this message is iJw {doc.release}, but {sender.id} speaks iJw "
        f"{spoken} on its Dagtekening {day.isoformat()}"
    )


def gateway_answers(message_type: str | None, recipient: Party) -> bool:
    """True when the gateway answers this message on the recipient's behalf: the recipient is
    configured with ``answered_by`` and the message is not itself a retour."""
    kind = MESSAGE_KINDS.get(message_type or "")
    return kind is not None and not kind.is_retour and recipient.answered_by is not None


def decide(
    report: ValidationReport,
    sender: Party,
    registry: PartyRegistry,
    today: dt.date,
    holds: Collection[str] = (),
) -> Decision:
    """Decide what happens to a message that ``sender`` submitted, given its validation.

    Order matters: a message that cannot be read is rejected without an answer (the standard
    answers those through the transport); then the header must name the sender itself (or a
    party the sender answers for); then the recipient must be known; only then do the rules
    decide between rejection and delivery. The gateway answers on the recipient's behalf when
    the recipient is configured with ``answered_by``, and never answers a retour. A JW325
    whose only findings are the provider-side checks is delivered all the same: those
    findings are the aanbieder's to judge (they are kept, and the edge logs a warning).
    """
    if report.level is Level.MALFORMED:
        return Decision(State.REJECTED, f"{MALFORMED} ({_summary(report)})")
    doc = report.document
    if report.level is Level.XSD or doc is None:
        return Decision(State.REJECTED, f"{NOT_VALID_AGAINST_XSD} ({_summary(report)})")

    route = addressing(report.message_type, doc.afzender, doc.ontvanger)
    if not may_transmit_as(sender, route.transmitter, registry):
        return Decision(
            State.REJECTED,
            f"sender identity mismatch: header names {route.transmitter or 'nobody'}, "
            f"authenticated party is {sender.id}",
        )
    recipient = registry.by_identity(route.destination)
    if recipient is None or recipient.role is PartyRole.BVO:
        return Decision(State.REJECTED, f"unknown recipient {route.destination or '(none)'}")
    refusal = release_refusal(report, registry.by_identity(route.transmitter) or sender, today)
    if refusal is not None:
        return Decision(State.REJECTED, refusal, recipient=recipient)

    answer_for = recipient if gateway_answers(report.message_type, recipient) else None

    rejected_lines = rejected_claim_lines(report) if answer_for is not None else None
    if not report.ok and rejected_lines is None and not warnings_only(report):
        return Decision(
            State.REJECTED,
            f"{report.level.value} check failed ({_summary(report)})",
            recipient=recipient,
            answer_for=answer_for,
        )
    state, reason = placement(recipient, today, holds)
    return Decision(
        state,
        reason,
        recipient=recipient,
        answer_for=answer_for,
        rejected_lines=rejected_lines or frozenset(),
    )


_DOSSIER_NEEDS = frozenset({"history", "lists"})
_PROVIDER_CHECKED = frozenset({"JW325"})
_CHECKED_LEVELS = (Level.RULES, Level.STATE, Level.EXTERNAL)


def needs_dossier(report: ValidationReport, decision: Decision) -> bool:
    """True when the gateway must run the cross-message and list rules on this message.

    Only for a message it answers on the recipient's behalf, and only once the message has
    passed the XSD and the in-message rules (an in-message fault decides alone, ``0001``).
    Any other recipient checks these rules itself and answers with its own retour. The one
    exception is a JW325 on its way to an aanbieder: the provider-side checks (TR337, TR366,
    TR367, TR371, TR376) run on every one, since they only warn and never stop it.
    """
    if report.document is None or report.level not in (Level.OK, Level.STATE, Level.EXTERNAL):
        return False
    if decision.answer_for is not None:
        return True
    return (
        report.message_type in _PROVIDER_CHECKED
        and decision.recipient is not None
        and not decision.rejected
    )


def with_dossier_findings(report: ValidationReport, context: RuleContext) -> ValidationReport:
    """``report`` plus the findings of the rules that read the dossier or the external lists.

    The rules that need only the message (and today's date) ran already; the level is the
    shallowest failing one, as :func:`gateway.core.validate.validate` decides it. A retour
    gets only the provider-side checks: its sender (the gemeente) is not answered for, so the
    list rules are not the gateway's to apply to it.
    """
    doc = report.document
    if doc is None:
        return report
    rules = [
        rule
        for rule in REGISTRY.for_type(doc.message_type, doc.release)
        if rule.needs & _DOSSIER_NEEDS
    ]
    kind = MESSAGE_KINDS.get(doc.message_type)
    if kind is not None and kind.is_retour:
        rules = [rule for rule in rules if rule.code in PROVIDER_RULES]
    added = run_rules(rules, doc, context)
    if not added:
        return report
    findings = (*report.findings, *added)
    level = next(lv for lv in _CHECKED_LEVELS if any(f.level is lv for f in findings))
    return ValidationReport(level, findings, report.message_type, report.release, doc)


def rejected_claim_lines(report: ValidationReport) -> frozenset[str] | None:
    """The prestaties to reject when a JW323 can be accepted in part; None when it cannot.

    Spec section 4: cross-message and external faults reject only the prestaties they are
    found in. Any in-message fault, or a fault on the header, the Declaratie or a Client,
    rejects the whole message; so does a fault in every prestatie, since nothing is left.
    An empty set means there is nothing to reject.
    """
    if report.message_type != "JW323" or report.document is None:
        return None
    if report.level not in (Level.OK, Level.STATE, Level.EXTERNAL):
        return None
    lines = {
        element_path(prestatie): line.referentie_nummer
        for prestatie, line in claim_lines_in(report.document)
    }
    rejected: set[str] = set()
    for finding in report.findings:
        found = _line_of(finding.path, lines)
        if found is None:
            return None
        rejected.add(found)
    if rejected and rejected >= set(lines.values()):
        return None
    return frozenset(rejected)


def _line_of(path: str | None, lines: dict[str, str]) -> str | None:
    if path is None:
        return None
    for prestatie_path, referentie in lines.items():
        if path == prestatie_path or path.startswith(prestatie_path + "/"):
            return referentie
    return None


def register_update(report: ValidationReport, decision: Decision) -> RegisterUpdate | None:
    """What a decided message writes to the dossier register (None for a rejected one).

    A retour is accepted as it passes and settles its original's pending entries. An original
    the gateway answered for has its verdict now: accepted, a JW323 perhaps in part. Any other
    original waits for its recipient's retour, and its entries count meanwhile (OP080).
    A rejected JW323 establishes nothing, but is remembered as submitted when it was routed
    to a known recipient (the JW325 that answers it names it, and the provider checks look it
    up).
    """
    doc = report.document
    if doc is None:
        return None
    if decision.rejected:
        submitted = submitted_declaration_in(doc) if decision.recipient is not None else None
        if submitted is None:
            return None
        return RegisterUpdate((), Verdict.REJECTED, submitted=submitted)
    kind = MESSAGE_KINDS.get(doc.message_type)
    if kind is None:
        return None
    if kind.is_retour:
        # Other retours repeat their original's Identificatie; a JW325 has its own.
        own = entries_of(doc) if doc.message_type == "JW325" else []
        return RegisterUpdate(tuple(own), Verdict.ACCEPTED, retour_verdict(doc))
    submitted = submitted_declaration_in(doc)
    if decision.answer_for is not None:
        entries = entries_of(doc, decision.rejected_lines)
        return RegisterUpdate(tuple(entries), Verdict.ACCEPTED, submitted=submitted)
    return RegisterUpdate(tuple(entries_of(doc)), Verdict.PENDING, submitted=submitted)
