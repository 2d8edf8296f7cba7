"""The rule registry holds every in-message rule the standard marks level X, and the rule
table in docs/rules.md is what the registry says."""

from __future__ import annotations

import pytest

from gateway.cli.rules import files_mentioning, markdown_table
from gateway.core.catalogue import ALL_TYPES
from gateway.core.rules import REGISTRY, RuleLevel
from tests.paths import REPO

# Spec §7, level X, as listed in the message-core issue (ranges written out).
IN_MESSAGE_RULES = [
    "CS002",
    "CS139",
    "TR002",
    "CS050",
    "CS318",
    "TR061",
    "TR006",
    "CD005",
    "CD025",
    "CD034",
    "CS089",
    "CD009",
    "CD007",
    "TR101",
    "TR302",
    "TR386",
    "TR410",
    "CS335",
    "CS336",
    "CD041",
    "CD075",
    "CD076",
    "CD077",
    "CD078",
    "CD079",
    "CD080",
    "CD095",
    "CD096",
    "CS338",
    "CS343",
    "CS003",
    "CD043",
    "CD066",
    "CD067",
    "CD068",
    "TR383",
    "TR352",
    "TR353",
    "TR380",
    "CD085",
    "CD086",
    "TR377",
    "TR409",
    "CS058",
    "TR018",
    "CS340",
    "CS100",
    "CS337",
    "CD060",
    "TR315",
    "TR316",
    "TR416",
    "TR358",
    "CS325",
    "CD087",
    "CS339",
    "TR319",
    "TR335",
    "TR342",
    # Measured against the official validation XSLT 2.10.5 (not in spec §7): dates after the
    # Dagtekening.
    "TR134",
    "TR137",
]


@pytest.mark.parametrize("code", IN_MESSAGE_RULES)
def test_every_in_message_rule_is_registered_with_retourcode_0001(code: str) -> None:
    """Each level-X rule exists once, as an in-message rule answered with 0001."""
    rule = REGISTRY[code]
    assert rule.level is RuleLevel.IN_MESSAGE
    assert rule.retourcode == "0001"


def test_rules_name_only_known_message_types_and_explain_themselves() -> None:
    """Every rule covers real message types and has a summary an operator can read."""
    for rule in REGISTRY:
        covered = [rule.types_in(release) for release in rule.releases]
        assert any(covered), rule.code
        assert all(types <= ALL_TYPES for types in covered), rule.code
        assert len(rule.summary) > 20, rule.code


def test_docs_rules_table_matches_the_registry() -> None:
    """docs/rules.md carries the table `gateway rules --markdown --tests tests` prints."""
    rules = sorted(REGISTRY, key=lambda r: (r.level.value != "X", r.level.value, r.code))
    table = markdown_table(rules, files_mentioning(REPO / "tests", [r.code for r in rules]))
    document = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert table in document, "regenerate: gateway rules --markdown --tests tests"


def test_every_rule_is_named_in_some_test() -> None:
    """No registered rule goes untested: each code appears in at least one test file."""
    mentioned = files_mentioning(REPO / "tests", REGISTRY.codes())
    assert [
        code
        for code, files in mentioned.items()
        if files == ["tests/unit/test_rule_registry.py"] or not files
    ] == []
