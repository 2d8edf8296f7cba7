"""Loading config.toml: defaults, the demo file, and errors that name the file and the key."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from gateway.cli import main as daemon_main
from gateway.config import load_config
from gateway.core.errors import ConfigError
from gateway.core.route import Channel, PartyRole
from gateway.shipped import SHIPPED_MAPPINGS, SHIPPED_SCHEMAS
from tests.paths import REPO

GEMEENTE = """
[[parties]]
id = "gemeente-a"
role = "gemeente"
identity = "0150"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), environ or {})
    return str(caught.value)


def test_demo_config_loads_with_seven_parties_one_not_ready() -> None:
    """The shipped demo configuration is valid and has the promised parties."""
    settings = load_config(REPO / "config.toml", {})
    roles = [p.role for p in settings.parties]
    assert roles.count(PartyRole.GEMEENTE) == 2
    assert roles.count(PartyRole.AANBIEDER) == 4
    assert roles.count(PartyRole.BVO) == 1
    today = dt.date(2026, 5, 1)
    not_ready = [p.id for p in settings.parties if p.hold_reason(today)]
    assert not_ready == ["kompas"]
    assert all(
        p.answered_by == "bvo-ijsselland" for p in settings.parties if p.role is PartyRole.GEMEENTE
    )
    assert settings.registry().authenticate("demo-token-zwolle").id == "gemeente-zwolle"


def test_empty_file_gets_defaults_relative_to_config_folder(tmp_path: Path) -> None:
    """Defaults: 127.0.0.1:8480, SQLite in <config dir>/data, folders beside the file, the
    shipped schemas and mapping tables."""
    settings = load_config(_write(tmp_path, ""), {})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8480)
    assert settings.store_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'gateway.db'}"
    assert settings.inbox == tmp_path.resolve() / "inbox"
    assert settings.schemas == SHIPPED_SCHEMAS
    assert [folder.name for folder in SHIPPED_SCHEMAS] == ["ijw-3.2", "ijw-2.3"]
    assert (SHIPPED_SCHEMAS[0] / "jw301.xsd").is_file()
    assert (SHIPPED_SCHEMAS[1] / "jw303.xsd").is_file()
    assert settings.mappings == SHIPPED_MAPPINGS
    assert (SHIPPED_MAPPINGS / "generations.toml").is_file()
    assert settings.limits.max_message_bytes == 25 * 1024 * 1024
    assert settings.max_body_bytes == 25 * 1024 * 1024


def test_store_url_from_environment_wins(tmp_path: Path) -> None:
    """GATEWAY_STORE_URL overrides the file's store url."""
    path = _write(tmp_path, '[store]\nurl = "sqlite:///other.db"\n')
    assert load_config(path, {}).store_url == f"sqlite:///{tmp_path.resolve() / 'other.db'}"
    env = {"GATEWAY_STORE_URL": "postgresql+psycopg://u@h/db"}
    assert load_config(path, env).store_url == "postgresql+psycopg://u@h/db"


def test_token_from_environment_is_stored_hashed(tmp_path: Path) -> None:
    """token_env reads a GATEWAY_* variable; only its SHA-256 is kept."""
    text = GEMEENTE + 'token_env = "GATEWAY_TOKEN_A"\n'
    settings = load_config(_write(tmp_path, text), {"GATEWAY_TOKEN_A": "s3cret"})
    party = settings.parties[0]
    assert party.token_sha256 == hashlib.sha256(b"s3cret").hexdigest()
    assert "s3cret" not in repr(settings)
    assert settings.registry().authenticate("s3cret") == party
    assert settings.registry().authenticate("wrong") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\ncolour = 'blue'\n", "server.colour: unknown key"),
        (GEMEENTE + "colour = 'blue'\n", "parties[0] (id 'gemeente-a').colour: unknown key"),
        ("[serverr]\nport = 1\n", "serverr: unknown key"),
        ("[server]\nport = 'x'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprepare_workers = -1\n", "server.prepare_workers"),
        ("[server]\nprepare_workers = 'two'\n", "server.prepare_workers"),
        ("[retry]\nbase_seconds = 60\ncap_seconds = 10\n", "cap_seconds must not be smaller"),
        (GEMEENTE.replace("0150", "12345678"), "must be a 4-digit CBS code"),
        (GEMEENTE.replace('"gemeente"', '"aanbieder"'), "must be an 8-digit AGB code"),
        (GEMEENTE.replace('"gemeente"', '"ziekenhuis"'), "parties[0] (id 'gemeente-a').role"),
        (GEMEENTE + 'channel = "http"\n', "channel 'http' but no url"),
        (GEMEENTE + 'url = "http://x"\n', "url is only used with channel 'http'"),
        (GEMEENTE + 'readiness = "sleepy"\n', "readiness"),
        (GEMEENTE + "not_ready_until = 'soon'\n", "not_ready_until"),
        (GEMEENTE + 'token_sha256 = "abc"\n', "64 hexadecimal"),
        (GEMEENTE + 'token_env = "TOKEN"\n', "GATEWAY_*"),
        (GEMEENTE + 'token_env = "GATEWAY_MISSING"\n', "GATEWAY_MISSING is not set"),
        (GEMEENTE + GEMEENTE.replace("gemeente-a", "gemeente-b"), "0150 is also party"),
        (GEMEENTE + GEMEENTE, "duplicate party id"),
        (GEMEENTE + 'answered_by = "nobody"\n', "no party with id 'nobody'"),
        (GEMEENTE.replace("gemeente-a", "Gemeente A"), "lower-case"),
        ("[server\n", "not valid TOML"),
        ("[server]\nmetrics_token_sha256 = 'abc'\n", "metrics_token_sha256 must be 64"),
        ("[server]\nmetrics_token_env = 'TOKEN'\n", "metrics_token_env must name a GATEWAY_*"),
        ("[server]\nmetrics_token_env = 'GATEWAY_M'\n", "GATEWAY_M is not set"),
        ("[server]\nheader_timeout_seconds = 0\n", "server.header_timeout_seconds"),
        ("[server]\nmax_bodies_in_flight = 0\n", "server.max_bodies_in_flight"),
        ("[limits]\nparty_bytes_per_window = -1\n", "limits.party_bytes_per_window"),
        (
            "[server]\nmax_body_bytes_in_flight = 1000\nmax_body_bytes = 1001\n",
            "max_body_bytes_in_flight: 1000 is below the body limit 1001",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake becomes one ConfigError naming the file and the offending key."""
    message = _error(tmp_path, text)
    assert str(tmp_path / "config.toml") in message
    assert expected in message


def test_metrics_token_from_the_environment_is_kept_as_its_digest(tmp_path: Path) -> None:
    """``metrics_token_env`` names a variable; only the token's SHA-256 is kept."""
    path = _write(tmp_path, "[server]\nmetrics_token_env = 'GATEWAY_METRICS'\n")
    settings = load_config(path, {"GATEWAY_METRICS": "scrape-me"})
    assert settings.metrics_token_sha256 == hashlib.sha256(b"scrape-me").hexdigest()
    assert load_config(_write(tmp_path, ""), {}).metrics_token_sha256 is None


def test_answered_by_must_be_a_bvo(tmp_path: Path) -> None:
    """Only the BVO can answer retours on another party's behalf."""
    text = (
        GEMEENTE
        + 'answered_by = "gemeente-b"\n'
        + GEMEENTE.replace("gemeente-a", "gemeente-b").replace("0150", "0193")
    )
    assert "'gemeente-b' is not a bvo" in _error(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is named as such."""
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml", {})


def test_party_channels_and_readiness(tmp_path: Path) -> None:
    """Readiness: paused holds always; not_ready_until holds until that date."""
    text = (
        GEMEENTE
        + 'readiness = "paused"\n'
        + GEMEENTE.replace("gemeente-a", "gemeente-b").replace("0150", "0193")
        + 'not_ready_until = 2026-06-01\nchannel = "http"\nurl = "https://b.example/in"\n'
    )
    a, b = load_config(_write(tmp_path, text), {}).parties
    assert a.hold_reason(dt.date(2030, 1, 1)) == "party paused in configuration"
    assert b.channel is Channel.HTTP
    assert b.hold_reason(dt.date(2026, 5, 31)) == "party not ready until 2026-06-01"
    assert b.hold_reason(dt.date(2026, 6, 1)) is None


def test_check_config_command_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config: exit 2 naming file and key on an unknown key; 0 with a summary otherwise."""
    bad = _write(tmp_path, "[server]\ncolour = 'blue'\n")
    assert daemon_main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "server.colour: unknown key" in err and str(bad) in err

    (tmp_path / "schemas" / "ijw-3.2").mkdir(parents=True)
    good = _write(tmp_path, GEMEENTE)
    assert daemon_main(["check-config", "--config", str(good)]) == 0
    assert "gemeente-a" in capsys.readouterr().out


def test_check_config_reports_missing_schema_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema folder that does not exist is a configuration error (exit 2)."""
    path = _write(tmp_path, '[paths]\nschemas = ["nowhere"]\n')
    assert daemon_main(["check-config", "--config", str(path)]) == 2
    assert "paths.schemas" in capsys.readouterr().err
