"""The rule engine: rules are small objects in one registry, run against a message + context.

In-message rules (level X) need only the message. Cross-message (B) and external-list (E)
rules read what they need from the :class:`RuleContext`; a rule whose context part is absent
is skipped, so the same engine serves ``gateway validate`` (X only) and the daemon (X, B, E).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.core.catalogue import CURRENT_RELEASE
from gateway.core.document import Element, MessageDocument, element_path, source_line
from gateway.core.privacy import scrub_findings
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

_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the standard: code, level, the message types it covers and its retourcode.

    ``message_types`` are those of the current release (3.2); ``other_releases`` names the
    message types the rule covers in another release (2.3) where it means the same there.
    """

    code: str
    level: RuleLevel
    message_types: frozenset[str]
    retourcode: str
    summary: str
    check: Check
    needs: frozenset[str] = frozenset()
    # Pairs rather than a dict, so that a rule stays hashable.
    other_releases: tuple[tuple[str, frozenset[str]], ...] = ()

    def types_in(self, release: str) -> frozenset[str]:
        """The message types this rule covers in ``release``."""
        if release == CURRENT_RELEASE:
            return self.message_types
        return next((types for name, types in self.other_releases if name == release), _NONE)

    @property
    def releases(self) -> tuple[str, ...]:
        """The releases the rule covers, the current one first."""
        return (CURRENT_RELEASE, *(name for name, _types in self.other_releases))

    def applies_to(self, message_type: str, context: RuleContext, release: str) -> bool:
        """True when the rule covers this message type of ``release`` and its context needs
        are present."""
        if message_type not in self.types_in(release):
            return False
        return all(getattr(context, need, None) is not None for need in self.needs)

    def run(self, doc: MessageDocument, context: RuleContext) -> Iterator[Finding]:
        """Run the check and turn its violations into findings (no personal value quoted)."""
        yield from scrub_findings(
            tuple(self.finding(violation) for violation in self.check(doc, context)), doc.root
        )

    def finding(self, violation: Violation) -> Finding:
        """The report entry for one violation of this rule."""
        return Finding(
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
        # Rules by message type, in registration order, with the number of rules it was built
        # from: rule modules may register after the first message, and rules are never
        # removed, so a different count means the index is stale (also under a race).
        self._by_type: tuple[int, dict[tuple[str, str], tuple[Rule, ...]]] = (0, {})
        # The same per context: keyed by message type, release and which context needs are present,
        # stamped like _by_type; each stamp gets a fresh dict, so a stale entry is never read.
        self._by_context: tuple[int, tuple[str, ...], dict[Any, tuple[Rule, ...]]] = (0, (), {})
        self._last_context: tuple[RuleContext | None, tuple[str, ...], tuple[bool, ...]] = (
            None,
            (),
            (),
        )

    def rule(
        self,
        code: str,
        *,
        types: Iterable[str],
        summary: str,
        retourcode: str = "0001",
        level: RuleLevel = RuleLevel.IN_MESSAGE,
        needs: Iterable[str] = (),
        other_releases: Mapping[str, Iterable[str]] | None = None,
    ) -> Callable[[Check], Check]:
        """Decorator registering ``check`` as the rule ``code``: for ``types`` of the current
        release and, where it means the same on the same elements, ``other_releases``."""

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
                other_releases=tuple(
                    (release, frozenset(covered))
                    for release, covered in sorted((other_releases or {}).items(), reverse=True)
                ),
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

    def for_type(self, message_type: str, release: str) -> tuple[Rule, ...]:
        """The rules covering a message type of a release, in registration order, whatever
        the context."""
        built_from, by_type = self._by_type
        if built_from != len(self._rules):
            registered = tuple(self._rules.values())
            grouped: dict[tuple[str, str], list[Rule]] = {}
            for rule in registered:
                for covered_release in rule.releases:
                    for covered in rule.types_in(covered_release):
                        grouped.setdefault((covered_release, covered), []).append(rule)
            by_type = {key: tuple(rules) for key, rules in grouped.items()}
            self._by_type = (len(registered), by_type)
        return by_type.get((release, message_type), ())

    def for_message(self, message_type: str, release: str, context: RuleContext) -> list[Rule]:
        """The rules that apply to a message type of a release given what the context holds."""
        return [
            r
            for r in self.for_type(message_type, release)
            if r.applies_to(message_type, context, release)
        ]

    def for_context(
        self, message_type: str, release: str, context: RuleContext
    ) -> tuple[Rule, ...]:
        """:meth:`for_message` as a tuple, remembered per type and set of present needs."""
        built_from, need_names, by_context = self._by_context
        if built_from != len(self._rules):
            need_names = tuple(sorted({n for rule in self._rules.values() for n in rule.needs}))
            by_context = {}
            self._by_context = (len(self._rules), need_names, by_context)
        # The same test as Rule.applies_to, once per need instead of once per rule; a caller
        # that validates many messages usually passes one (frozen) context for all of them.
        last_context, last_names, present = self._last_context
        if last_context is not context or last_names is not need_names:
            present = tuple([getattr(context, name, None) is not None for name in need_names])
            self._last_context = (context, need_names, present)
        key = (message_type, release, present)
        found = by_context.get(key)
        if found is None:
            found = tuple(self.for_message(message_type, release, context))
            by_context[key] = found
        return found


def run_rules(
    rules: Iterable[Rule], doc: MessageDocument, context: RuleContext
) -> tuple[Finding, ...]:
    """Run every applicable rule and collect the findings in rule order."""
    message_type, release = doc.message_type, doc.release
    if isinstance(rules, RuleRegistry):
        # The registry has matched type, release and context needs already.
        candidates: Iterable[Rule] = rules.for_context(message_type, release, context)
    else:
        candidates = [rule for rule in rules if rule.applies_to(message_type, context, release)]
    findings: list[Finding] = []
    for rule in candidates:
        for violation in rule.check(doc, context):
            findings.append(rule.finding(violation))
    # A message names what is wrong, never the personal value it read (privacy.py decides).
    return scrub_findings(tuple(findings), doc.root)
