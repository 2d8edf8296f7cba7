"""Allocations settled outside the chain: recorded with their audit entry, read back for the
report and for the B rule BVO001 (through :func:`settled_periods`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from gateway.core.dossier import Settlement
from gateway.store.database import Repository, driver_errors
from gateway.store.tables import AUDIT, SETTLEMENTS

SETTLE_ACTION = "settle"


@dataclass(frozen=True, slots=True)
class SettledPeriod:
    """One recorded settlement, as the report and ``gateway settle`` show it."""

    settlement: Settlement
    message_id: str | None
    settled_by: str
    reason: str
    at: dt.datetime


def audit_target(settlement: Settlement) -> str:
    """The audit trail's target of a settlement: ``toewijzing:<gemeente>/<number>``."""
    return f"toewijzing:{settlement.gemeente}/{settlement.toewijzing_nummer}"


def settled_periods(conn: Connection, gemeente: str, toewijzing_nummer: int) -> list[Settlement]:
    """The settled periods of one allocation, oldest first."""
    rows = conn.execute(
        select(
            SETTLEMENTS.c.gemeente,
            SETTLEMENTS.c.toewijzing_nummer,
            SETTLEMENTS.c.begindatum,
            SETTLEMENTS.c.einddatum,
            SETTLEMENTS.c.reference,
        )
        .where(
            SETTLEMENTS.c.gemeente == gemeente,
            SETTLEMENTS.c.toewijzing_nummer == toewijzing_nummer,
        )
        .order_by(SETTLEMENTS.c.id)
    ).all()
    return [Settlement(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]


class Settlements(Repository):
    """The settlements' part of the store."""

    def record_settlements(
        self,
        settlements: Sequence[tuple[Settlement, str | None]],
        *,
        actor: str,
        reason: str,
        at: dt.datetime,
    ) -> None:
        """Store each (settlement, the message it was settled from) with its audit entry, all
        in one transaction: a settlement the audit trail does not show is never stored."""
        if not settlements:
            return
        with driver_errors("recording settlements"), self._db.write() as conn:
            for settlement, message_id in settlements:
                conn.execute(
                    insert(SETTLEMENTS).values(
                        gemeente=settlement.gemeente,
                        toewijzing_nummer=settlement.toewijzing_nummer,
                        begindatum=settlement.begindatum,
                        einddatum=settlement.einddatum,
                        reference=settlement.reference,
                        message_id=message_id,
                        settled_by=actor,
                        reason=reason,
                        at=at,
                    )
                )
                period = f"{settlement.begindatum.isoformat()}..{settlement.einddatum.isoformat()}"
                source = f", message {message_id}" if message_id else ""
                conn.execute(
                    insert(AUDIT).values(
                        at=at,
                        actor=actor,
                        action=SETTLE_ACTION,
                        target=audit_target(settlement),
                        reason=f"{reason} (settled {period}, reference {settlement.reference}"
                        f"{source})",
                    )
                )

    def settlements(
        self, gemeente: str | None = None, toewijzing_nummer: int | None = None
    ) -> list[SettledPeriod]:
        """Recorded settlements, oldest first, optionally of one gemeente or allocation."""
        query = select(SETTLEMENTS).order_by(SETTLEMENTS.c.id)
        if gemeente is not None:
            query = query.where(SETTLEMENTS.c.gemeente == gemeente)
        if toewijzing_nummer is not None:
            query = query.where(SETTLEMENTS.c.toewijzing_nummer == toewijzing_nummer)
        with driver_errors("reading settlements"), self._db.read() as conn:
            rows = conn.execute(query).all()
        return [
            SettledPeriod(
                Settlement(
                    r.gemeente, int(r.toewijzing_nummer), r.begindatum, r.einddatum, r.reference
                ),
                r.message_id,
                r.settled_by,
                r.reason,
                r.at,
            )
            for r in rows
        ]
