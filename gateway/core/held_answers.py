"""Answering an original the gateway cannot translate: when, and with which retourcodes.

An original held for a mapping decision has no retour yet, and the standard demands exactly
one within its deadline (3 working days; a JW323 its JW325 within 10). When the BVO answers
for the recipient, the gateway answers it itself once the decision wait of the message's
generation pair is over (:class:`DecisionPolicies`), and at once for a product the receiver
can never accept (a DBC closed before the transition, ``Translation.refused``).

The answer is the retour the receiver's own TR381 would give for a product that is not on
the code list it uses: ``S329`` on each product that could not be translated
(docs/translation.md, "When no decision comes"). The whole original is rejected: a JW323's
other lines are returned ``0233`` (not assessed), so no line counts as granted while the
declaration never reached the gemeente.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.deadlines import decision_answer_day, retour_due
from gateway.core.document import MessageDocument, element_path
from gateway.core.dossier import claim_lines_in
from gateway.core.model import State
from gateway.core.pipeline import Decision
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.retour import NOT_ASSESSED
from gateway.core.route import Party
from gateway.core.translation import DBC_CLOSED_RETOURCODE

UNACCEPTED_PRODUCT_RETOURCODE = DBC_CLOSED_RETOURCODE
"""``S329`` (TR381): the product is not on the code list the receiver uses. One code for both
causes: a receiver that speaks another generation rejects the sender's code with it."""
UNACCEPTED_PRODUCT_RULE = "TR381"
ANSWERED_UNTRANSLATED = "answered without a mapping decision"
"""The reason prefix of an original the gateway answered itself with the S329 retour."""


class DecisionPolicy(StrEnum):
    """What happens to an original whose products need a mapping decision."""

    WAIT = "wait"
    """Hold it for a decision until some working days before its retour deadline."""
    ANSWER = "answer"
    """Answer it at once with the S329 retour."""


@dataclass(frozen=True, slots=True)
class PairPolicy:
    """The policy of one generation pair (``from`` -> ``to``)."""

    policy: DecisionPolicy = DecisionPolicy.WAIT
    wait_working_days_before_deadline: int = 1


@dataclass(frozen=True, slots=True)
class DecisionPolicies:
    """The configured policy per generation pair, and the default for any other pair."""

    default: PairPolicy = PairPolicy()
    pairs: Mapping[tuple[str, str], PairPolicy] = field(default_factory=dict)

    def of(self, from_generation: str, to_generation: str) -> PairPolicy:
        """The policy of translating ``from_generation`` into ``to_generation``."""
        return self.pairs.get((from_generation, to_generation), self.default)

    def answers_at_once(self, from_generation: str, to_generation: str) -> bool:
        """True when a message of this pair is answered instead of held for a decision."""
        return self.of(from_generation, to_generation).policy is DecisionPolicy.ANSWER

    def answer_day(
        self, message_type: str, received: dt.date, from_generation: str, to_generation: str
    ) -> dt.date | None:
        """The Dutch day the gateway stops waiting for a decision and answers an original of
        ``message_type`` received on ``received``; None for a type that gets no retour."""
        due = retour_due(message_type, received)
        if due is None:
            return None
        chosen = self.of(from_generation, to_generation)
        if chosen.policy is DecisionPolicy.ANSWER:
            return received
        return decision_answer_day(due, chosen.wait_working_days_before_deadline)


def wait_is_over(answer_day: dt.date | None, today: dt.date) -> bool:
    """True once the gateway must answer (on the answer day or later: a gateway that was down
    answers at its first chance)."""
    return answer_day is not None and today >= answer_day


def refusal_findings(
    document: MessageDocument, unaccepted: Iterable[tuple[str, str]]
) -> tuple[Finding, ...]:
    """The findings a refusal retour is built from: ``S329`` at each (path, reason) of a
    product the receiver cannot accept; in a JW323 ``0233`` on every other line, so the whole
    declaration is returned and nothing is granted."""
    findings: list[Finding] = []
    refused_paths: set[str] = set()
    for path, reason in unaccepted:
        if path in refused_paths:
            continue
        refused_paths.add(path)
        findings.append(
            Finding(
                UNACCEPTED_PRODUCT_RULE,
                f"the receiver cannot accept this product: {reason}",
                UNACCEPTED_PRODUCT_RETOURCODE,
                path,
                level=Level.EXTERNAL,
            )
        )
    if document.message_type == "JW323":
        for line, _ in claim_lines_in(document):
            path = element_path(line)
            if not any(path == p or p.startswith(path + "/") for p in refused_paths):
                findings.append(
                    Finding(
                        UNACCEPTED_PRODUCT_RULE,
                        "not assessed: the declaration is returned whole",
                        NOT_ASSESSED,
                        path,
                        level=Level.EXTERNAL,
                    )
                )
    return tuple(findings)


def refusal_verdict(
    report: ValidationReport,
    unaccepted: Iterable[tuple[str, str]],
    recipient: Party,
    reason: str,
) -> tuple[ValidationReport, Decision]:
    """The report and decision of an original the gateway answers on ``recipient``'s behalf
    because it cannot translate ``unaccepted`` (path, reason): rejected, with the refusal
    findings for its retour. ``report`` must hold the original's document."""
    document = report.document
    if document is None:
        raise ValueError("a refusal needs the original's document")
    findings = refusal_findings(document, unaccepted)
    refused = ValidationReport(
        Level.EXTERNAL, findings, report.message_type, report.release, document
    )
    return refused, Decision(State.REJECTED, reason, recipient=recipient, answer_for=recipient)


def answered_reason(recipient: str, why: str) -> str:
    """The state reason of an original the gateway answered itself (no client data)."""
    return (
        f"{ANSWERED_UNTRANSLATED}: {UNACCEPTED_PRODUCT_RETOURCODE} on behalf of {recipient} ({why})"
    )
