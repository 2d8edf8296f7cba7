"""Test-wide hygiene: no GATEWAY_* variables leak in from the developer's shell."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the test's own config, never from the shell that runs pytest."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_") and name != "GATEWAY_TEST_PG_DSN":
            monkeypatch.delenv(name, raising=False)
    yield
