"""Driver failures surface as StoreError with a clear reason, never as raw driver errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from gateway.core.errors import StoreError
from gateway.store.base import NewMessage
from gateway.store.sql import SqlStore
from tests.pseudonyms import TEST_PSEUDONYMS

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def _new(raw: bytes = b"<Bericht/>") -> NewMessage:
    return NewMessage(
        sender="aanbieder-a",
        raw=raw,
        content_hash=hashlib.sha256(raw).hexdigest(),
        bericht_id="B1",
        message_type="JW315",
        received_at=T0,
        actor="test",
    )


def test_database_path_that_is_a_directory_raises_store_error(tmp_path: Path) -> None:
    """A database 'file' that is a directory cannot be opened: StoreError, not sqlite3."""
    (tmp_path / "gateway.db").mkdir()
    store = SqlStore(f"sqlite:///{tmp_path / 'gateway.db'}", pseudonyms=TEST_PSEUDONYMS)
    try:
        with pytest.raises(StoreError, match="cannot open the database file") as caught:
            store.migrate()
        assert caught.value.__cause__ is not None
        assert not store.healthy()
    finally:
        store.close()


def test_database_folder_under_a_regular_file_raises_store_error(tmp_path: Path) -> None:
    """The data folder cannot be created where a file stands in the way."""
    (tmp_path / "blocker").write_text("not a folder")
    with pytest.raises(StoreError, match="database folder"):
        SqlStore(
            f"sqlite:///{tmp_path / 'blocker' / 'data' / 'gateway.db'}", pseudonyms=TEST_PSEUDONYMS
        )


def test_read_only_database_refuses_writes_with_store_error(tmp_path: Path) -> None:
    """Writes to a database opened read-only fail as StoreError saying so (works as root too)."""
    path = tmp_path / "gateway.db"
    writable = SqlStore(f"sqlite:///{path}", pseudonyms=TEST_PSEUDONYMS)
    writable.migrate()
    writable.close()
    read_only = SqlStore(f"sqlite:///file:{path}?mode=ro&uri=true", pseudonyms=TEST_PSEUDONYMS)
    try:
        with pytest.raises(StoreError, match="read-only") as caught:
            read_only.save_received(_new())
        assert "Bericht" not in str(caught.value)
    finally:
        read_only.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder_raises_store_error(tmp_path: Path) -> None:
    """A folder without write permission makes the store fail with StoreError."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        store = SqlStore(f"sqlite:///{folder / 'gateway.db'}", pseudonyms=TEST_PSEUDONYMS)
        with pytest.raises(StoreError):
            store.migrate()
        store.close()
    finally:
        folder.chmod(0o700)


def test_unreachable_postgresql_is_reported_unavailable(tmp_path: Path) -> None:
    """No server behind the DSN: intake can answer 503 'database unavailable'."""
    store = SqlStore(
        f"postgresql+psycopg://postgres@/gateway?host={tmp_path}&port=1", pseudonyms=TEST_PSEUDONYMS
    )
    try:
        with pytest.raises(StoreError, match="database unavailable"):
            store.save_received(_new())
        assert not store.healthy()
    finally:
        store.close()


def test_unknown_url_scheme_is_refused() -> None:
    """Only SQLite and PostgreSQL are supported."""
    with pytest.raises(StoreError, match="unsupported"):
        SqlStore("mysql://localhost/gateway", pseudonyms=TEST_PSEUDONYMS)
