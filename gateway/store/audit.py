"""The audit trail: operator actions (retry, hold, release, purge, ...), appended and read."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    insert,
    select,
)

from gateway.store.base import (
    AuditEntry,
    AuditQuery,
)
from gateway.store.database import Repository, driver_errors
from gateway.store.tables import (
    AUDIT,
)


class AuditTrail(Repository):
    """Appends operator actions and reads them back."""

    def record_audit(
        self, at: dt.datetime, actor: str, action: str, target: str, reason: str | None
    ) -> None:
        """Append an operator action to the audit trail."""
        with driver_errors("recording an audit entry"), self._db.write() as conn:
            conn.execute(
                insert(AUDIT).values(
                    at=at, actor=actor, action=action, target=target, reason=reason
                )
            )

    def audit_trail(self, target: str | None = None) -> list[dict[str, Any]]:
        """Recorded operator actions, oldest first (optionally only those on ``target``)."""
        stmt = select(AUDIT).order_by(AUDIT.c.id)
        if target is not None:
            stmt = stmt.where(AUDIT.c.target == target)
        with driver_errors("reading the audit trail"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            {k: r._mapping[k] for k in ("at", "actor", "action", "target", "reason")} for r in rows
        ]

    def audit_entries(self, q: AuditQuery) -> list[AuditEntry]:
        """Recorded operator actions matching ``q``, newest first."""
        conditions = []
        if q.target is not None:
            conditions.append(AUDIT.c.target == q.target)
        if q.actor is not None:
            conditions.append(AUDIT.c.actor == q.actor)
        if q.action is not None:
            conditions.append(AUDIT.c.action == q.action)
        if q.since is not None:
            conditions.append(AUDIT.c.at >= q.since)
        if q.before_id is not None:
            conditions.append(AUDIT.c.id < q.before_id)
        stmt = select(AUDIT).where(*conditions).order_by(AUDIT.c.id.desc()).limit(q.limit)
        with driver_errors("reading the audit trail"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            AuditEntry(
                id=int(r._mapping["id"]),
                at=r._mapping["at"],
                actor=r._mapping["actor"],
                action=r._mapping["action"],
                target=r._mapping["target"],
                reason=r._mapping["reason"],
            )
            for r in rows
        ]
