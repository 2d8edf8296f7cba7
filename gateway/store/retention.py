"""Retention: payloads dropped after their messages finished, and the disk space given back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    delete,
    func,
    select,
    update,
)

from gateway.core.correlate import Side
from gateway.core.model import State
from gateway.store.base import (
    PurgeResult,
)
from gateway.store.database import Repository, driver_errors
from gateway.store.tables import (
    CORRELATIONS,
    MESSAGES,
    PAYLOADS,
    TRANSLATIONS,
)

# An original still waiting for its retour keeps its bytes: the retour is built from them.
_UNANSWERED_ORIGINALS = select(CORRELATIONS.c.message_id).where(
    CORRELATIONS.c.side == Side.ORIGINAL.value, CORRELATIONS.c.linked_id.is_(None)
)


class Retention(Repository):
    """Drops finished messages' bytes in short batches and measures and reclaims space."""

    def purge_payloads(self, before: dt.datetime) -> int:
        """Drop the raw bytes of delivered and rejected messages last moved before ``before``.

        Metadata, history and findings stay. Dead messages keep their bytes because an
        operator may still retry them. Returns the number of payloads dropped.
        """
        finished = select(MESSAGES.c.id).where(
            MESSAGES.c.state.in_([State.DELIVERED.value, State.REJECTED.value]),
            MESSAGES.c.updated_at < before,
            MESSAGES.c.id.not_in(_UNANSWERED_ORIGINALS),
        )
        with driver_errors("purging payloads"), self._db.write() as conn:
            conn.execute(
                update(TRANSLATIONS)
                .where(TRANSLATIONS.c.message_id.in_(finished))
                .values(translated=None)
            )
            result = conn.execute(delete(PAYLOADS).where(PAYLOADS.c.message_id.in_(finished)))
        return int(result.rowcount)

    def purge(
        self, cutoffs: dict[State, dt.datetime], *, batch_size: int, dry_run: bool
    ) -> PurgeResult:
        """Drop payloads of ``delivered``/``rejected`` messages last moved before the cutoff,
        never of an original still waiting for its retour.

        Metadata, history, findings, search keys and the audit trail stay. Each batch is its
        own short transaction, so intake and delivery never wait long behind a purge.
        """
        allowed = {State.DELIVERED, State.REJECTED}
        if set(cutoffs) - allowed:
            raise ValueError("retention only drops payloads of delivered or rejected messages")
        counts: dict[str, int] = {}
        for state, before in cutoffs.items():
            candidates = (
                select(PAYLOADS.c.message_id)
                .join(MESSAGES, MESSAGES.c.id == PAYLOADS.c.message_id)
                .where(
                    MESSAGES.c.state == state.value,
                    MESSAGES.c.updated_at < before,
                    MESSAGES.c.id.not_in(_UNANSWERED_ORIGINALS),
                )
            )
            if dry_run:
                with driver_errors("counting purgeable payloads"), self._db.read() as conn:
                    counts[state.value] = int(
                        conn.execute(
                            select(func.count()).select_from(candidates.subquery())
                        ).scalar()
                        or 0
                    )
                continue
            dropped = 0
            while True:
                with driver_errors("purging payloads"), self._db.write() as conn:
                    ids = list(conn.execute(candidates.limit(batch_size)).scalars())
                    if not ids:
                        break
                    # Re-check the state inside the write: a message cannot leave delivered or
                    # rejected, but the guard keeps the promise local and obvious.
                    # The translated copy holds the same BSNs: it goes with the raw bytes.
                    conn.execute(
                        update(TRANSLATIONS)
                        .where(
                            TRANSLATIONS.c.message_id.in_(ids),
                            TRANSLATIONS.c.message_id.in_(
                                select(MESSAGES.c.id).where(
                                    MESSAGES.c.id.in_(ids), MESSAGES.c.state == state.value
                                )
                            ),
                        )
                        .values(translated=None)
                    )
                    result = conn.execute(
                        delete(PAYLOADS).where(
                            PAYLOADS.c.message_id.in_(ids),
                            PAYLOADS.c.message_id.in_(
                                select(MESSAGES.c.id).where(
                                    MESSAGES.c.id.in_(ids), MESSAGES.c.state == state.value
                                )
                            ),
                        )
                    )
                    dropped += int(result.rowcount)
                if len(ids) < batch_size:
                    break
            counts[state.value] = dropped
        return PurgeResult(counts)

    def database_bytes(self) -> int:
        """The size of the database as the engine counts it (pages in use on SQLite)."""
        with driver_errors("measuring the database"), self._db.read() as conn:
            if self._db.dialect == "sqlite":
                pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
                size = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
                return (pages - free) * size
            return int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0
            )

    def reclaim_space(self, full: bool = False) -> int:
        """Hand freed pages back to the file system; returns bytes the file shrank by.

        SQLite: ``PRAGMA incremental_vacuum`` when the file was created in incremental mode,
        otherwise only with ``full`` a ``VACUUM`` (which rewrites the file once and switches
        it to incremental mode for next time). PostgreSQL reuses the space of deleted rows
        by itself (autovacuum); nothing to do here.
        """
        if self._db.dialect != "sqlite":
            return 0
        # VACUUM cannot run inside a transaction, so use the driver connection directly (it
        # is in autocommit mode: the connect hook sets isolation_level None).
        with driver_errors("reclaiming disk space"):
            raw = self._db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                size = int(cursor.execute("PRAGMA page_size").fetchone()[0])
                before = int(cursor.execute("PRAGMA page_count").fetchone()[0])
                mode = int(cursor.execute("PRAGMA auto_vacuum").fetchone()[0])
                if mode == 2:
                    cursor.execute("PRAGMA incremental_vacuum").fetchall()
                elif full:
                    cursor.execute("VACUUM")
                after = int(cursor.execute("PRAGMA page_count").fetchone()[0])
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                cursor.close()
            finally:
                raw.close()
        return max(before - after, 0) * size
