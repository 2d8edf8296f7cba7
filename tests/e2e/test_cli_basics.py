"""The command line's own manners, as a user meets them: a subprocess each time.

``--version``, a bare ``gateway``, a mistyped option, a date or message type it cannot read.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.e2e.console_env import BSN_A, ConsoleEnv, example, make_env


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_version_is_the_installed_package_version() -> None:
    result = gateway("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gateway {version('ijw-gateway')}"


def test_bare_gateway_lists_the_commands() -> None:
    """No argparse error: the help, with every command and a pointer to COMMAND --help."""
    result = gateway()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for command in ("validate", "run", "check-config", "messages", "show", "retry", "mappings"):
        assert re.search(rf"^    {command}\b", result.stdout, re.MULTILINE), command
    assert "gateway COMMAND --help" in result.stdout


def test_an_unknown_option_shows_the_subcommand_usage() -> None:
    result = gateway("messages", "--colour", "never")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gateway messages ")
    assert "gateway messages: error: unrecognized arguments: --colour never" in result.stderr


def test_an_unknown_option_of_a_nested_command_shows_its_usage() -> None:
    result = gateway("mappings", "check", "--tables", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gateway mappings check ")
    assert "unrecognized arguments: --tables x" in result.stderr


def test_an_unreadable_time_names_the_accepted_forms() -> None:
    result = gateway("messages", "--since", "tomorrow")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gateway messages ")
    assert "argument --since: cannot read the time 'tomorrow'" in result.stderr
    assert "today, yesterday" in result.stderr
    assert "isoformat" not in result.stderr


def test_an_unreadable_date_says_which_form_is_wanted() -> None:
    result = gateway("validate", "--today", "gisteren", "one.xml")
    assert result.returncode == 2
    assert "argument --today: 'gisteren' is not a date; use YYYY-MM-DD" in result.stderr
    assert "isoformat" not in result.stderr


def test_an_unknown_message_type_lists_the_known_ones() -> None:
    result = gateway("cancel", "--type", "JW999", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gateway cancel ")
    assert "unknown message type 'JW999'; known types: JW301, JW302," in result.stderr


def test_since_yesterday_and_a_bare_type_number_filter_messages(tmp_path: Path) -> None:
    """The documented day words and ``323`` for ``JW323`` work against a real store."""
    for env in make_env(tmp_path, "sqlite"):
        _filter_by_words(env)


def _filter_by_words(env: ConsoleEnv) -> None:
    (sent,) = env.submit(
        ("provider-a", example("JW323.xml", identificatie="100000031", bsns=(BSN_A,)))
    )
    found = env.json("messages", "--since", "yesterday", "--type", "323")
    assert [m["id"] for m in found["messages"]] == [sent.id]
    assert env.json("messages", "--since", "today", "--type", "JW301")["messages"] == []
    assert env.json("messages", "--until", "yesterday")["messages"] == []
