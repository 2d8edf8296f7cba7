"""The README's chain demo leg names `gateway chain-sim` commands the parser accepts (the leg
runs end to end in tests/e2e/test_demo_chain.py)."""

from __future__ import annotations

import shlex

from gateway.cli import build_parser
from tests.paths import REPO

PREFIX = ".venv/bin/gateway chain-sim "


def test_the_readme_chain_sim_commands_parse() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if line.startswith(PREFIX)]
    assert {shlex.split(c)[2] for c in commands} == {"certs", "serve", "send"}
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command, comments=True)[1:])
        assert args.func.__name__ == f"cmd_{args.chain_sim_command}"
