"""Throwaway PostgreSQL schemas for tests: each store gets an empty schema of its own on the
server named by ``GATEWAY_TEST_PG_DSN`` (started by ``.ci/postgres.sh``), dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_DSN_VARIABLE = "GATEWAY_TEST_PG_DSN"


def pg_dsn() -> str:
    """The test server's DSN; skips the test when none is configured."""
    dsn = os.environ.get(PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(f'{PG_DSN_VARIABLE} is not set (run: eval "$(bash .ci/postgres.sh)")')
    return dsn


class PgSchemas:
    """Makes empty schemas named ``<prefix>_<random>`` and drops them all at the end."""

    def __init__(self, dsn: str, prefix: str) -> None:
        self.dsn = dsn
        self.prefix = prefix
        self.schemas: list[str] = []

    def new_url(self) -> str:
        """A store URL whose search_path is a new, empty schema."""
        schema = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.dsn)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            admin.dispose()
        self.schemas.append(schema)
        url = make_url(self.dsn).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every schema made (their tables with them)."""
        if not self.schemas:
            return
        admin = create_engine(self.dsn)
        try:
            with admin.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()
        self.schemas.clear()


@contextmanager
def pg_schema_url(prefix: str) -> Iterator[str]:
    """The URL of one new empty schema for the ``with`` block (skips without a server)."""
    schemas = PgSchemas(pg_dsn(), prefix)
    try:
        yield schemas.new_url()
    finally:
        schemas.drop_all()
