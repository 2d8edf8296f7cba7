"""The connection to the database: engines per dialect, read and write transactions, and
driver errors turned into a short, payload-free :class:`StoreError`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import ConnectionPoolEntry

from gateway.core.errors import StoreError
from gateway.core.ids import IdGenerator
from gateway.core.privacy import Pseudonymizer
from gateway.store.dialect import register_array_dumpers

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for SQLite's write lock before the store reports "database busy"."""


def failure_reason(exc: BaseException) -> str:
    """A short, payload-free reason for a driver failure (shown to clients in a 503)."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).lower()
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate == "53100" or "disk is full" in message or "no space left" in message:
        return "disk full"
    if "readonly database" in message or "read-only" in message or sqlstate == "25006":
        return "database is read-only"
    if "unable to open database file" in message or isinstance(exc, OSError):
        return "cannot open the database file"
    if "database is locked" in message or "database is busy" in message:
        return "database busy"
    if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
        return "database unavailable"
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return "database unavailable"
    if isinstance(exc, IntegrityError):
        return "database constraint violated"
    return "database error"


@contextmanager
def driver_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"{failure_reason(exc)} while {doing}") from exc


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        with driver_errors("creating the database folder"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" hook decide how each transaction starts (pysqlite's own
        # implicit BEGIN would be DEFERRED and could fail on lock upgrade without waiting).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Only takes effect on a new file (or at the next VACUUM): lets retention hand
            # freed pages back to the file system without a full rewrite of the database.
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front; readers never block anyone in WAL mode.
        if conn.get_execution_options().get("gateway_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


class Database:
    """One store's connection to its database: the engine, its dialect, how a transaction is
    opened for reading or writing, the message ids it hands out and the client keys it
    stores (``pseudonyms``)."""

    def __init__(
        self, url: str, *, pseudonyms: Pseudonymizer, ids: IdGenerator | None = None
    ) -> None:
        """Connect lazily to ``url``; ``pseudonyms`` makes client keys; ``ids`` makes message
        ids (default: system clock)."""
        self.pseudonyms = pseudonyms
        with driver_errors("opening the store"):
            parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, parsed.database)
        elif self.dialect == "postgresql":
            register_array_dumpers()
            with driver_errors("opening the store"):
                self.engine = create_engine(
                    url,
                    hide_parameters=True,
                    pool_pre_ping=True,
                    connect_args={"connect_timeout": 10},
                )
        else:
            raise StoreError(f"unsupported store URL scheme {parsed.drivername!r}")
        self._ids = ids or IdGenerator()
        self._ids_lock = threading.Lock()
        # SQLite has one writer at a time anyway. Inside this process writers queue on this
        # lock, which wakes the next one at once, instead of in SQLite's busy handler, which
        # polls in sleeps of up to 100 ms; other processes still meet the busy timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite ``BEGIN IMMEDIATE``, queued on the process's lock)."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(gateway_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def new_id(self, at: dt.datetime) -> str:
        """A fresh message id, sortable by ``at``."""
        with self._ids_lock:
            return self._ids.next(at)


class Repository:
    """One area of the store (messages, mailbox, audit, ...), reading and writing through the
    :class:`Database` it shares with the others; :class:`~gateway.store.sql.SqlStore` composes
    them."""

    def __init__(self, db: Database) -> None:
        self._db = db
