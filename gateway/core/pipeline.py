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
from gateway.core.model import State
from gateway.core.report import Level, ValidationReport
from gateway.core.route import Party, PartyRegistry, PartyRole, addressing, may_transmit_as

OPERATOR_HOLD = "operator hold"
# Reason prefix of a hold an operator put on one message: releasing its party leaves it held.
MESSAGE_HOLD = "operator hold (message)"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one received message.

    ``state`` is where the message goes (``rejected``, ``queued`` or ``held``) and ``reason``
    why. ``recipient`` is the party it is routed to (None when it could not be routed).
    ``answer_for`` is set when the gateway answers with a retour on the recipient's behalf:
    then a retour is built and sent back to the party that transmitted the message.
    """

    state: State
    reason: str
    recipient: Party | None = None
    answer_for: Party | None = None

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


def _summary(report: ValidationReport, limit: int = 5) -> str:
    codes = list(dict.fromkeys(f.rule for f in report.findings))
    shown = ", ".join(codes[:limit]) + (", ..." if len(codes) > limit else "")
    return shown or "no details"


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
    the recipient is configured with ``answered_by``, and never answers a retour.
    """
    if report.level is Level.MALFORMED:
        return Decision(State.REJECTED, f"malformed message ({_summary(report)})")
    doc = report.document
    if report.level is Level.XSD or doc is None:
        return Decision(State.REJECTED, f"not valid against the XSD ({_summary(report)})")

    route = addressing(
        report.message_type, doc.header_text("Afzender"), doc.header_text("Ontvanger")
    )
    if not may_transmit_as(sender, route.transmitter, registry):
        return Decision(
            State.REJECTED,
            f"sender identity mismatch: header names {route.transmitter or 'nobody'}, "
            f"authenticated party is {sender.id}",
        )
    recipient = registry.by_identity(route.destination)
    if recipient is None or recipient.role is PartyRole.BVO:
        return Decision(State.REJECTED, f"unknown recipient {route.destination or '(none)'}")

    kind = MESSAGE_KINDS.get(report.message_type or "")
    answers = kind is not None and not kind.is_retour and recipient.answered_by is not None
    answer_for = recipient if answers else None

    if not report.ok:
        return Decision(
            State.REJECTED,
            f"{report.level.value} check failed ({_summary(report)})",
            recipient=recipient,
            answer_for=answer_for,
        )
    state, reason = placement(recipient, today, holds)
    return Decision(state, reason, recipient=recipient, answer_for=answer_for)
