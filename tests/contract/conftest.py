"""Backends for the store contract: SQLite always, PostgreSQL when GATEWAY_TEST_PG_DSN is set.

Each PostgreSQL test gets a schema of its own (dropped afterwards), selected through the
connection's ``search_path``, so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.store.sql import SqlStore
from tests.pg_schemas import pg_schema_url
from tests.pseudonyms import TEST_PSEUDONYMS


def undo_identificatie_claims(conn: Connection) -> None:
    """Take the schema back to before migration 8 (the BerichtIdentificatie holders)."""
    conn.execute(text("DROP INDEX ux_messages_identificatie"))
    conn.execute(text("ALTER TABLE messages DROP COLUMN identificatie_claim"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    name: str = request.param
    return name


def _sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'data' / 'gateway.db'}"


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on the backend under test."""
    if backend == "sqlite":
        yield _sqlite_url(tmp_path)
        return
    with pg_schema_url("contract") as url:
        yield url


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[[], SqlStore]]:
    """Builds more stores (each with its own engine) on the same database; closes them."""
    made: list[SqlStore] = []

    def make() -> SqlStore:
        store = SqlStore(store_url, pseudonyms=TEST_PSEUDONYMS)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], SqlStore]) -> SqlStore:
    """A migrated, empty store on the backend under test."""
    fresh = make_store()
    fresh.migrate()
    return fresh
