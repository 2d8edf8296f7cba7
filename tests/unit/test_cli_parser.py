"""The ``gateway`` parser: every command documented, and the argument types' readable errors."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator

import pytest

from gateway.cli import build_parser
from gateway.cli.common import ConsoleError, iso_date, message_type, moment, parse_moment
from gateway.cli.rules import LEVEL_NAMES
from gateway.core.catalogue import ALL_TYPES
from gateway.core.rules import RuleLevel


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield " ".join((*path, name)), sub
                yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def test_the_parser_knows_the_commands_operators_use() -> None:
    """A guard on the walk below: it sees top-level and nested commands."""
    assert {
        "run",
        "check-config",
        "validate",
        "messages",
        "mappings check",
        "schemas check",
    } <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_description_and_an_example(name: str) -> None:
    """``gateway X --help`` says what X does and shows at least one ``gateway X`` call."""
    parser = COMMANDS[name]
    assert parser.description and len(parser.description) > 20
    assert parser.epilog and "example" in parser.epilog
    assert f"gateway {name}" in parser.epilog


def test_rule_levels_offered_are_the_registry_levels() -> None:
    """``rules --level`` lists its choices without importing the registry: they must agree."""
    assert set(LEVEL_NAMES) == {level.value for level in RuleLevel}


NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", dt.datetime(2026, 3, 10, tzinfo=dt.UTC)),
        ("Yesterday", dt.datetime(2026, 3, 9, tzinfo=dt.UTC)),
        ("2d", dt.datetime(2026, 3, 8, 15, 30, tzinfo=dt.UTC)),
        ("90m", dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC)),
        ("2026-03-01", dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        ("2026-03-01T09:30+01:00", dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)),
    ],
)
def test_moments_in_every_documented_form(text: str, expected: dt.datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_an_unreadable_moment_names_the_accepted_forms_and_no_python_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        moment("tomorrow")
    assert "today, yesterday" in str(raised.value) and "7d" in str(raised.value)
    assert "isoformat" not in str(raised.value)
    with pytest.raises(ConsoleError) as direct:
        parse_moment("last week")
    assert direct.value.__cause__ is None  # so main() prints no "Invalid isoformat string"


def test_message_types_are_checked_against_the_catalogue() -> None:
    assert message_type("jw315") == "JW315"
    assert message_type("315") == "JW315"
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        message_type("JW999")
    assert all(kind in str(raised.value) for kind in ALL_TYPES)


def test_a_bad_date_says_which_form_is_wanted() -> None:
    assert iso_date("2026-03-01") == dt.date(2026, 3, 1)
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        iso_date("01-03-2026")
