"""The SQL message store: SQLModel tables on SQLite (embedded default) or PostgreSQL.

Durability choices: SQLite runs in WAL mode with ``synchronous=FULL``, so a committed
``save_received`` survives a power cut before intake answers 202; every write transaction starts
with ``BEGIN IMMEDIATE`` so writers queue on the busy timeout instead of failing half-way. On
PostgreSQL deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` so several daemons
share one queue without claiming a message twice.

Driver errors are wrapped once, in :mod:`gateway.store.database`, as ``StoreError`` with a short
reason ("disk full", "database unavailable", ...) that intake can show in a 503. The SQL
parameters are never part of a message (they hold payloads with BSNs): the engine hides them and
the reason is our own.

:class:`SqlStore` is one repository per area over one :class:`~gateway.store.database.Database`:
each area's module answers how its part of the store is read and written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.ids import IdGenerator
from gateway.core.privacy import Pseudonymizer
from gateway.store import migrations
from gateway.store.audit import AuditTrail
from gateway.store.batch import BatchWriter
from gateway.store.chain import ChainEnvelopes
from gateway.store.database import Database, driver_errors
from gateway.store.exchanges import Exchanges
from gateway.store.leases import AdvisoryClientLocks, JobLeases
from gateway.store.ledger import TranslationLedger
from gateway.store.mailbox import Mailbox
from gateway.store.messages import MessageRepository
from gateway.store.register import DossierRegister
from gateway.store.retention import Retention
from gateway.store.search import SearchRepository
from gateway.store.settlement import Settlements

if TYPE_CHECKING:
    from gateway.store.base import Store


class SqlStore(
    MessageRepository,
    BatchWriter,
    Mailbox,
    AuditTrail,
    SearchRepository,
    Exchanges,
    DossierRegister,
    TranslationLedger,
    Retention,
    Settlements,
    JobLeases,
    ChainEnvelopes,
):
    """The :class:`~gateway.store.base.Store` on SQLAlchemy 2 (sync engine).

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/to/gateway.db`` (the folder is created) or
    ``postgresql+psycopg://user:pass@host/db``. ``pseudonyms`` turns BSNs into the client
    keys the store holds (:mod:`gateway.pseudonym_key` loads it). Call :meth:`migrate` before
    first use.
    """

    def __init__(
        self, url: str, *, pseudonyms: Pseudonymizer, ids: IdGenerator | None = None
    ) -> None:
        """Connect lazily to ``url``; ``ids`` makes message ids (default: system clock)."""
        super().__init__(Database(url, pseudonyms=pseudonyms, ids=ids))
        self._client_locks: AdvisoryClientLocks | None = None

    @property
    def dialect(self) -> str:
        """The database's dialect name: ``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def pseudonyms(self) -> Pseudonymizer:
        """What turns a BSN into the client key this store holds."""
        return self._db.pseudonyms

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and the benchmark)."""
        return self._db.engine

    def client_locks_across_nodes(self) -> AdvisoryClientLocks | None:
        """The client locks that hold across nodes (PostgreSQL); None on SQLite, where one
        writer at a time is the design and one process's locks suffice."""
        if self.dialect != "postgresql":
            return None
        if self._client_locks is None:
            self._client_locks = AdvisoryClientLocks(self._db.engine.url, self.pseudonyms)
        return self._client_locks

    def close(self) -> None:
        """Close all pooled connections."""
        self._db.engine.dispose()
        if self._client_locks is not None:
            self._client_locks.close()

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start and from two processes.

        The whole upgrade is one transaction, serialised by SQLite's write lock or, on
        PostgreSQL, by a transaction-scoped advisory lock.
        """
        with driver_errors("migrating the schema"), self._db.write() as conn:
            migrations.migrate(conn, migrations.Upgrade(self._db.pseudonyms))

    def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""
        with driver_errors("reading the schema version"), self._db.read() as conn:
            return migrations.schema_version(conn)

    def healthy(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self._db.read() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True


if TYPE_CHECKING:

    def _implements_the_protocol(store: SqlStore) -> Store:
        # mypy fails here when SqlStore drifts from the Store Protocol.
        return store
