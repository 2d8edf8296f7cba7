"""The rule engine: rules are small objects in one registry, run against a message + context.

In-message rules (level X) need only the message. Cross-message (B) and external-list (E)
rules read what they need from the :class:`RuleContext`; a rule whose context part is absent
is skipped, so the same engine serves ``gateway validate`` (X only) and the daemon (X, B, E).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.core.document import Element, MessageDocument, element_path, source_line
from gateway.core.report import Finding, Level


class RuleLevel(StrEnum):
    """The standard's control levels (spec section 7)."""

    IN_MESSAGE = "X"
    CROSS_MESSAGE = "B"
    EXTERNAL = "E"

    @property
    def report_level(self) -> Level:
        """The report level a finding of this rule level gets."""
        return {
            RuleLevel.IN_MESSAGE: Level.RULES,
            RuleLevel.CROSS_MESSAGE: Level.STATE,
            RuleLevel.EXTERNAL: Level.EXTERNAL,
        }[self]


@dataclass(frozen=True, slots=True)
class Violation:
    """What a rule check yields: the element at fault and a sentence saying why."""

    element: Element
    message: str


@dataclass(frozen=True)
class RuleContext:
    """What rules may need beyond the message itself.

    ``today`` is the receiver's system date (TR135), injected so tests control it. ``history``
    and ``lists`` are filled by the daemon for cross-message and external rules; they are typed
    loosely here because the core defines only the protocols those rules use.
    """

    today: dt.date | None = None
    history: Any = None
    lists: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


Check = Callable[[MessageDocument, RuleContext], Iterable[Violation]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the standard: code, level, the message types it covers and its retourcode."""

    code: str
    level: RuleLevel
    message_types: frozenset[str]
    retourcode: str
    summary: str
    check: Check
    needs: frozenset[str] = frozenset()

    def applies_to(self, message_type: str, context: RuleContext) -> bool:
        """True when the rule covers this message type and its context needs are present."""
        if message_type not in self.message_types:
            return False
        return all(getattr(context, need, None) is not None for need in self.needs)

    def run(self, doc: MessageDocument, context: RuleContext) -> Iterator[Finding]:
        """Run the check and turn its violations into findings."""
        for violation in self.check(doc, context):
            yield Finding(
                rule=self.code,
                message=violation.message,
                retourcode=self.retourcode,
                path=element_path(violation.element),
                line=source_line(violation.element),
                level=self.level.report_level,
            )


class RuleRegistry:
    """The one place rules are registered; modules add theirs with :meth:`rule`."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def rule(
        self,
        code: str,
        *,
        types: Iterable[str],
        summary: str,
        retourcode: str = "0001",
        level: RuleLevel = RuleLevel.IN_MESSAGE,
        needs: Iterable[str] = (),
    ) -> Callable[[Check], Check]:
        """Decorator registering ``check`` as the rule ``code``."""

        def register(check: Check) -> Check:
            if code in self._rules:
                raise ValueError(f"rule {code} registered twice")
            self._rules[code] = Rule(
                code=code,
                level=level,
                message_types=frozenset(types),
                retourcode=retourcode,
                summary=summary,
                check=check,
                needs=frozenset(needs),
            )
            return check

        return register

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, code: str) -> Rule:
        return self._rules[code]

    def codes(self) -> list[str]:
        """All registered rule codes in registration order."""
        return list(self._rules)

    def for_message(self, message_type: str, context: RuleContext) -> list[Rule]:
        """The rules that apply to a message type given what the context holds."""
        return [r for r in self._rules.values() if r.applies_to(message_type, context)]


def run_rules(
    rules: Iterable[Rule], doc: MessageDocument, context: RuleContext
) -> tuple[Finding, ...]:
    """Run every applicable rule and collect the findings in rule order."""
    findings: list[Finding] = []
    for rule in rules:
        if rule.applies_to(doc.message_type, context):
            findings.extend(rule.run(doc, context))
    return tuple(findings)
