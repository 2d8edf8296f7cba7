"""What lets several gateway nodes share one database: leases on jobs and roles, and client
locks that hold across nodes.

A lease row names one job (``retention``) or role (``folders``) and the node holding it until a
time. A node takes it only when nobody holds it or the holder's lease has run out, and, for a
periodic job, only once it is due: so a job runs on one node per interval, and a node that dies
mid-job blocks it for one lease at most. On SQLite the same rows work for one node.

:class:`AdvisoryClientLocks` serialises the dossier checks of one client across nodes on
PostgreSQL: each holder takes an advisory lock per client key on a connection of its own and
lets go of them when its intake record is committed (a node's connection dying does too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, or_, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from gateway.core.errors import StoreError
from gateway.core.privacy import Pseudonymizer
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import insert_rows
from gateway.store.tables import JOB_LEASES

CLIENT_LOCK_POOL = 8
"""Lock connections a node keeps open; up to as many again are opened when busy."""
CLIENT_LOCK_TIMEOUT = "30s"
"""Longest a node waits for another node's lock on a client before intake answers 503."""


_LOCK = "SELECT pg_advisory_lock(%s)"
_UNLOCK_ALL = "SELECT pg_advisory_unlock_all()"


class JobLeases(Repository):
    """Claims, renews and lets go of the lease rows (see the module docstring)."""

    def claim_lease(self, name: str, holder: str, now: dt.datetime, until: dt.datetime) -> bool:
        """Hold ``name`` until ``until`` if it is free, its lease ran out, or ``holder`` holds it
        already (a renewal), and it is due; True when ``holder`` holds it now."""
        with driver_errors(f"claiming the lease {name}"), self._db.write() as conn:
            insert_rows(
                conn, self._db.dialect, JOB_LEASES, ("name",), [(name,)], on_conflict="DO NOTHING"
            )
            row = JOB_LEASES.c
            claimed = conn.execute(
                update(JOB_LEASES)
                .where(
                    row.name == name,
                    or_(row.lease_until.is_(None), row.lease_until <= now, row.holder == holder),
                    or_(row.due_at.is_(None), row.due_at <= now),
                )
                .values(holder=holder, lease_until=until)
            )
            return claimed.rowcount == 1

    def release_lease(self, name: str, holder: str, due: dt.datetime | None = None) -> bool:
        """Let go of ``name`` if ``holder`` still holds it; a periodic job is next due at
        ``due``. False when the lease had passed to another node."""
        with driver_errors(f"releasing the lease {name}"), self._db.write() as conn:
            released = conn.execute(
                update(JOB_LEASES)
                .where(JOB_LEASES.c.name == name, JOB_LEASES.c.holder == holder)
                .values(holder=None, lease_until=None, due_at=due)
            )
            return released.rowcount == 1

    def lease_holder(self, name: str, now: dt.datetime) -> str | None:
        """The node holding ``name`` at ``now`` (None: nobody, or its lease ran out)."""
        row = JOB_LEASES.c
        with driver_errors(f"reading the lease {name}"), self._db.read() as conn:
            found = conn.execute(
                JOB_LEASES.select().where(row.name == name, row.lease_until > now)
            ).first()
        return None if found is None else found.holder


@dataclass
class HeldClients:
    """The connection holding some clients' advisory locks (see :class:`AdvisoryClientLocks`)."""

    conn: Connection

    def release(self) -> None:
        """Let go of the locks and give the connection back; a connection that cannot say so
        is thrown away, which lets go of them as well."""
        try:
            with driver_errors("unlocking a client"):
                self.conn.exec_driver_sql(_UNLOCK_ALL)
        except StoreError:
            self.conn.invalidate()
            raise
        finally:
            self.conn.close()


def advisory_key(client_key: str) -> int:
    """A signed 64-bit advisory lock key for a client key (a pseudonym, never a BSN)."""
    digest = hashlib.sha256(b"ijw-gateway client lock\0" + client_key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryClientLocks:
    """Client locks across nodes on PostgreSQL: blocking calls, run them in a thread.

    A pool of its own (at most :attr:`capacity` connections), so a node's in-flight checks
    never starve its reads and writes of connections. Session locks on connections in
    autocommit: one round trip to take a client's lock and one to let go, no transaction
    around them; a node that dies takes its locks along with its connections. Keys go in
    sorted order, so two nodes never wait for each other in a circle.
    """

    capacity = 2 * CLIENT_LOCK_POOL
    """Most locks held or waited for at once (the pool's connections)."""

    def __init__(self, url: str | URL, pseudonyms: Pseudonymizer) -> None:
        self._pseudonyms = pseudonyms
        with driver_errors("opening the client lock connections"):
            # No ping per checkout (a round trip per message): a connection found dead is
            # replaced and the locks taken again once, below. The wait for another node's
            # lock is bounded on the connection itself, not with a statement per message.
            self._engine: Engine = create_engine(
                url,
                hide_parameters=True,
                isolation_level="AUTOCOMMIT",
                pool_size=CLIENT_LOCK_POOL,
                max_overflow=self.capacity - CLIENT_LOCK_POOL,
                connect_args={
                    "connect_timeout": 10,
                    "options": f"-c lock_timeout={CLIENT_LOCK_TIMEOUT}",
                },
            )

    def acquire(self, bsns: Collection[str]) -> HeldClients:
        """Wait for and take the locks of the clients with these BSNs."""
        keys = sorted({advisory_key(self._pseudonyms.client_key(bsn)) for bsn in bsns})
        with driver_errors("locking a client"):
            try:
                return self._lock(keys)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                return self._lock(keys)  # a pooled connection the server had closed

    def _lock(self, keys: list[int]) -> HeldClients:
        conn = self._engine.connect()
        try:
            for key in keys:
                conn.exec_driver_sql(_LOCK, (key,))
        except BaseException:
            # Locks taken before the failure must not stay with a pooled connection.
            conn.invalidate()
            conn.close()
            raise
        return HeldClients(conn)

    def close(self) -> None:
        """Close the lock connections."""
        self._engine.dispose()
