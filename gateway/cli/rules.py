"""``gateway rules``: every rule the gateway checks, with its level, messages and retourcode."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.catalogue import RELEASE_2_3

if TYPE_CHECKING:
    from gateway.core.rules import Rule

# Keyed by RuleLevel's values: importing the registry to build the parser would cost every
# command its start-up time (tests/unit/test_cli_parser.py checks the two agree).
LEVEL_NAMES = {
    "X": "X (in-message)",
    "B": "B (cross-message)",
    "E": "E (external list)",
}


def add_rules_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``gateway rules``."""
    cmd = subparsers.add_parser(
        "rules",
        help="list every rule the gateway checks",
        description="List the standard's rules the gateway checks: code, level, message types, "
        "retourcode and what the rule checks.",
        epilog="examples:\n  gateway rules\n  gateway rules --level X --json\n"
        "  gateway rules --markdown --tests tests > docs/rules.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--level", choices=list(LEVEL_NAMES), help="only this level")
    output = cmd.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per rule")
    output.add_argument("--markdown", action="store_true", help="the table of docs/rules.md")
    cmd.add_argument(
        "--tests",
        type=Path,
        metavar="DIR",
        help="with --markdown: name the test files that mention each rule",
    )
    cmd.set_defaults(func=run_rules_command)


def _selected(level: str | None) -> list[Rule]:
    from gateway.core.rules import REGISTRY

    rules = [r for r in REGISTRY if level is None or r.level.value == level]
    return sorted(rules, key=lambda r: (r.level.value != "X", r.level.value, r.code))


def files_mentioning(tests: Path, codes: Iterable[str]) -> dict[str, list[str]]:
    """For each rule code, the test files (relative to ``tests``) that name it."""
    texts = {
        p.relative_to(tests.parent).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(tests.rglob("test_*.py"))
    }
    found: dict[str, list[str]] = {}
    for code in codes:
        word = re.compile(rf"\b{re.escape(code)}\b")
        found[code] = [name for name, text in texts.items() if word.search(text)]
    return found


def _short_types(types: Iterable[str]) -> str:
    return ", ".join(t.removeprefix("JW") for t in sorted(types))


def markdown_table(rules: list[Rule], tested_in: dict[str, list[str]] | None) -> str:
    """The rule table as Markdown, as kept in docs/rules.md."""
    header = "| rule | level | messages (3.2) | messages (2.3) | retourcode | checks |"
    divider = "|---|---|---|---|---|---|"
    if tested_in is not None:
        header += " tested in |"
        divider += "---|"
    lines = [header, divider]
    for rule in rules:
        types = _short_types(rule.message_types)
        types_2_3 = _short_types(rule.types_in(RELEASE_2_3)) or "-"
        summary = rule.summary.replace("|", "\\|")
        row = (
            f"| {rule.code} | {rule.level.value} | {types} | {types_2_3} | {rule.retourcode} "
            f"| {summary} |"
        )
        if tested_in is not None:
            row += " " + ", ".join(f"`{t}`" for t in tested_in.get(rule.code, [])) + " |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def run_rules_command(args: argparse.Namespace) -> int:
    """Print the rules as a table, JSON lines or Markdown."""
    rules = _selected(args.level)
    if args.json:
        for rule in rules:
            print(
                json.dumps(
                    {
                        "rule": rule.code,
                        "level": rule.level.value,
                        "message_types": sorted(rule.message_types),
                        "releases": {
                            release: sorted(rule.types_in(release)) for release in rule.releases
                        },
                        "retourcode": rule.retourcode,
                        "summary": rule.summary,
                    }
                )
            )
        return 0
    if args.markdown:
        tested = files_mentioning(args.tests, [r.code for r in rules]) if args.tests else None
        print(markdown_table(rules, tested), end="")
        return 0
    for rule in rules:
        print(
            f"{rule.code:<7} {LEVEL_NAMES[rule.level.value]:<18} {rule.retourcode:<5} "
            f"{','.join(t.removeprefix('JW') for t in sorted(rule.message_types)):<30} "
            f"{'(also 2.3) ' if rule.types_in(RELEASE_2_3) else ''}{rule.summary}"
        )
    print(f"{len(rules)} rules")
    return 0
