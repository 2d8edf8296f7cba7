"""PostgreSQL's driver is the extra ``postgres``: without it a PostgreSQL store says so."""

from __future__ import annotations

import sys

import pytest

from gateway.core.errors import StoreError
from gateway.store import database
from gateway.store.database import Database
from gateway.store.dialect import register_array_dumpers
from tests.pseudonyms import TEST_PSEUDONYMS


def test_a_postgres_url_without_the_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import psycopg` fail as it does where it is not installed.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    # Uncached: a test before this one may have registered the dumpers already.
    monkeypatch.setattr(database, "register_array_dumpers", register_array_dumpers.__wrapped__)
    with pytest.raises(StoreError, match=r"pip install 'ijw-gateway\[postgres\]'"):
        Database("postgresql+psycopg://gateway@127.0.0.1:1/gateway", pseudonyms=TEST_PSEUDONYMS)
