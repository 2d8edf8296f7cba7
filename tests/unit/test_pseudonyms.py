"""Client keys: HMAC-SHA256 of a BSN under the gateway's secret, and where that secret lives.

A stored key must not be recomputable from a BSN by anyone holding only the database: no
fixed salt, no plain hash. The key file is made private on first start, reused afterwards,
and refused when others may read it or when it is a link.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import re
import stat
from pathlib import Path

import pytest

from gateway.config import Settings, load_config
from gateway.core import privacy
from gateway.core.errors import ConfigError
from gateway.core.privacy import CLIENT_KEY_LENGTH, Pseudonymizer
from gateway.core.rules.common import bsn_passes_eleven_proof
from gateway.pseudonym_key import key_from_file, load_pseudonymizer
from gateway.store.migrations import eleven_proof_bsns
from tests.paths import REPO

BSN = "999900006"


def _settings(
    tmp_path: Path, privacy_section: str = "", environ: dict[str, str] | None = None
) -> Settings:
    config = tmp_path / "config.toml"
    config.write_text(privacy_section, encoding="utf-8")
    return load_config(config, environ or {})


def test_a_client_key_is_no_hash_anyone_can_recompute_from_the_bsn() -> None:
    mine = Pseudonymizer(os.urandom(32))
    key = mine.client_key(BSN)
    assert len(key) == CLIENT_KEY_LENGTH and int(key, 16) >= 0
    obvious = {
        hashlib.sha256(text.encode()).hexdigest()
        for text in (BSN, f"ijw-gateway:{BSN}", f"{BSN}ijw-gateway", f"ijw-gateway{BSN}")
    }
    assert not any(o.startswith(key[:16]) or key.startswith(o[:16]) for o in obvious)
    # Another secret (an attacker's guess) gives another key; the same secret the same one.
    assert Pseudonymizer(os.urandom(32)).client_key(BSN) != key
    assert mine.client_key(f" {BSN}\n") == key
    assert mine.client_key("999900018") != key
    assert "secret" in repr(mine) and key not in repr(mine)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short")


def test_no_code_path_keys_clients_with_a_fixed_salt() -> None:
    """The core has no unkeyed client hash; the legacy salt survives only in the migration
    that replaces its keys."""
    assert not hasattr(privacy, "client_key")
    users = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "gateway").rglob("*.py")
        if re.search(r"""ijw-gateway:["'{]""", path.read_text(encoding="utf-8"))
    ]
    assert users == ["gateway/store/migrations.py"]


def test_key_file_is_made_private_on_first_start_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "data" / "pseudonym.key"
    assert settings.pseudonym_key_path == path and not path.exists()
    first = load_pseudonymizer(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text())) == 32
    # A restart (a new process reads the same file) gives the same keys.
    assert load_pseudonymizer(_settings(tmp_path)).client_key(BSN) == first.client_key(BSN)


def _key_in_another_process(settings: Settings) -> str:
    return load_pseudonymizer(settings).client_key(BSN)


def test_another_process_on_the_same_settings_has_the_same_key(tmp_path: Path) -> None:
    """Prepare workers are spawned processes building their store from the settings."""
    settings = _settings(tmp_path)
    here = load_pseudonymizer(settings).client_key(BSN)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_key_in_another_process, (settings,)) == here


def test_key_file_others_may_read_or_a_link_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    key_from_file(path)
    for mode in (0o640, 0o604):
        path.chmod(mode)
        with pytest.raises(ConfigError, match="others may read"):
            key_from_file(path)
    path.chmod(0o600)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(ConfigError, match="links are refused"):
        key_from_file(link)
    # A dangling link is not written through either.
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(ConfigError):
        key_from_file(dangling)
    assert not (tmp_path / "elsewhere.key").exists()
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="not hex"):
        key_from_file(path)


def test_key_from_the_environment_or_a_configured_file(tmp_path: Path) -> None:
    secret = os.urandom(32)
    from_env = _settings(
        tmp_path,
        '[privacy]\npseudonym_key_env = "PSEUDO_KEY"\n',
        {"PSEUDO_KEY": secret.hex()},
    )
    assert load_pseudonymizer(from_env).client_key(BSN) == Pseudonymizer(secret).client_key(BSN)
    assert secret.hex() not in repr(from_env)
    assert not (tmp_path / "data" / "pseudonym.key").exists()
    with pytest.raises(ConfigError, match="PSEUDO_KEY is not set"):
        _settings(tmp_path, '[privacy]\npseudonym_key_env = "PSEUDO_KEY"\n')
    with pytest.raises(ConfigError, match="fewer than 16 bytes"):
        _settings(tmp_path, '[privacy]\npseudonym_key_env = "K"\n', {"K": "abcd"})
    configured = _settings(tmp_path, '[privacy]\npseudonym_key_file = "keys/p.key"\n')
    load_pseudonymizer(configured)
    assert (tmp_path / "keys" / "p.key").exists()


def test_the_bsn_space_is_every_eleven_proof_number_in_order() -> None:
    """What the migration searches when a legacy key's payload is gone."""
    head = list(itertools.islice(eleven_proof_bsns(), 20_000))
    expected = [f"{n:09d}" for n in range(300_000) if bsn_passes_eleven_proof(f"{n:09d}")]
    assert head == expected[: len(head)] and len(expected) > len(head)
