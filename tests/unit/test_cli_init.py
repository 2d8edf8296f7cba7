"""``gateway init``: a starter deployment that loads, with tokens printed once and stored hashed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import check_paths, load_config
from gateway.core.route import PartyRole
from gateway.shipped import SHIPPED_MAPPINGS, SHIPPED_SCHEMAS


def _tokens(printed: str) -> dict[str, str]:
    rows = [line.split() for line in printed.splitlines() if line.startswith("  ")]
    return {party_id: token for party_id, _role, token in rows}


def test_init_writes_a_config_that_loads_and_knows_the_printed_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "new" / "deployment"
    assert main(["init", str(folder), "--port", "9123"]) == 0
    tokens = _tokens(capsys.readouterr().out)
    text = (folder / "config.toml").read_text(encoding="utf-8")
    assert tokens and not any(token in text for token in tokens.values())

    settings = load_config(folder / "config.toml", {})
    assert check_paths(settings) == []
    assert {p.role for p in settings.parties} == set(PartyRole)
    assert settings.server.port == 9123
    assert (settings.schemas, settings.mappings) == (SHIPPED_SCHEMAS, SHIPPED_MAPPINGS)
    assert all((folder / name).is_dir() for name in ("inbox", "outbox", "data"))
    registry = settings.registry()
    for party_id, token in tokens.items():
        party = registry.authenticate(token)
        assert party is not None and party.id == party_id


def test_init_refuses_to_replace_a_config_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path)]) == 0
    first = (tmp_path / "config.toml").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["init", str(tmp_path)]) == 2
    assert "exists; give --force" in capsys.readouterr().err
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == first

    assert main(["init", "--force", str(tmp_path)]) == 0
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") != first  # new token hashes
