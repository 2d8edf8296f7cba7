"""The shipped config.toml in a temporary folder, for tests that run the demo region."""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.config import Settings, load_config
from tests.paths import REPO


def shipped_demo_settings(folder: Path) -> Settings:
    """Settings of a copy of the shipped config.toml in ``folder``: its relative paths
    (schemas, mappings, the contract table) resolve to the shipped folders, and data, inbox and
    outbox stay in ``folder``."""
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for shipped in ("schemas", "mappings"):
        (folder / shipped).symlink_to(REPO / shipped, target_is_directory=True)
    return load_config(folder / "config.toml", {})
