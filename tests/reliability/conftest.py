"""Fixtures of the reliability tests: a throwaway PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.pg_schemas import pg_dsn


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new, empty database on the test server, as a store URL; dropped afterwards.

    Skips without ``GATEWAY_TEST_PG_DSN``.
    """
    with _throwaway_database() as url:
        yield url


@pytest.fixture
def reference_database() -> Iterator[str]:
    """A second throwaway database, for a test comparing one node with several."""
    with _throwaway_database() as url:
        yield url


@contextmanager
def _throwaway_database() -> Iterator[str]:
    url = make_url(pg_dsn())
    name = f"reliability_{uuid.uuid4().hex[:12]}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
