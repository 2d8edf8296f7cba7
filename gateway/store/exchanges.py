"""Heen/retour exchanges and request clocks: correlation rows, their linking, overdue notices."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from gateway.core.correlate import Correlation, Side
from gateway.core.ids import first_id_at
from gateway.core.model import State
from gateway.store.base import (
    OpenOriginal,
    RequestAnswer,
    RequestExchange,
)
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import TextArray, planned_per_call
from gateway.store.register import settle
from gateway.store.rows import (
    correlation_values,
    message_from_row,
)
from gateway.store.tables import (
    CORRELATIONS,
    DEADLINE_NOTICES,
    MESSAGES,
    REGISTER,
)


def lock_exchanges(conn: Connection, bericht_ids: Collection[str]) -> None:
    """On PostgreSQL, make this transaction wait for any other that stores a side of the same
    exchanges, until it commits; call before inserting correlation rows.

    Two write transactions may run at once there (two daemons on one database). One storing an
    original and one storing its retour would each run their linking UPDATE before the other
    committed, see no other side, and leave the exchange unlinked for good
    (tests/contract/test_concurrent_linking.py). With this lock the second inserts and links
    only after the first committed, and sees its row. Transaction-scoped advisory locks, one
    per BerichtIdentificatie (a hash clash only makes two exchanges wait for each other), taken
    in one order, so two transactions cannot wait for each other in a cycle. SQLite runs one
    write transaction at a time and needs nothing.
    """
    if conn.dialect.name == "sqlite" or not bericht_ids:
        return
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(id, 0) AS key "
        "FROM unnest(%b::text[]) AS id) AS keys ORDER BY key",
        (TextArray(sorted(set(bericht_ids))),),
    )


def link_correlations(conn: Connection, bericht_ids: Collection[str]) -> int:
    """Link every unlinked exchange with one of ``bericht_ids`` whose both sides are stored;
    returns how many correlation rows were linked (0: no exchange was linked, nothing to settle).

    Two set-based statements, whatever arrived first (OP080): waiting retours get the most
    recent original with their key, then waiting originals get their first retour, an
    inbound one or the one the gateway generated (``messages.in_reply_to``).
    """
    if not bericht_ids:
        return 0
    dialect = conn.dialect.name
    ids = sorted(set(bericht_ids))
    link_retours, link_originals = link_sql(dialect, len(ids) if dialect == "sqlite" else 0)
    retour, original = Side.RETOUR.value, Side.ORIGINAL.value
    with planned_per_call(conn):
        linked = conn.exec_driver_sql(
            link_retours, link_parameters(dialect, original, retour, ids)
        ).rowcount
        return (
            linked
            + conn.exec_driver_sql(
                link_originals, link_parameters(dialect, retour, original, ids)
            ).rowcount
        )


def link_parameters(
    dialect: str, other_side: str, own_side: str, bericht_ids: list[str]
) -> tuple[Any, ...]:
    """The parameters of one statement of :func:`link_sql`: on SQLite the ids one by one, on
    PostgreSQL as one array."""
    ids: tuple[Any, ...] = tuple(bericht_ids) if dialect == "sqlite" else (TextArray(bericht_ids),)
    return (other_side, own_side, *ids, other_side)


@functools.lru_cache(maxsize=256)
def link_sql(dialect: str, count: int) -> tuple[str, str]:
    """The two linking UPDATEs of :func:`link_correlations` for ``count`` BerichtIdentificaties,
    in the driver's paramstyle (intake runs them on every batch; through SQLAlchemy, building
    and binding them cost more than running them). On PostgreSQL the ids are one array
    parameter (``= ANY(%b)``), one text for every count (still planned on every call: see
    :func:`planned_per_call`); SQLite gets an IN-list of ``count`` marks.

    Both must find their rows through ``ix_correlations_key`` (a few rows per
    BerichtIdentificatie). Given ``side = ? AND linked_id IS NULL``, SQLite's planner picks
    ``ix_correlations_linked`` instead, which walks every exchange still waiting for its retour:
    a cost that grew with the store on every intake batch. Comparing the side through an
    expression (``coalesce(side, '')``) keeps that index out of these two statements.

    Each touches only rows that really get a link (the new value is not NULL), so the rowcount
    says whether anything was linked: intake settles dossier verdicts only then, and an original
    whose retour is not there yet is not rewritten on every batch. That test is a scalar
    subquery, not an EXISTS: PostgreSQL may plan an EXISTS as a semi-join over the whole
    correlations table, and in bench/daemon.py it did (237 table scans reading 282,706 rows in
    6,000 messages; 3 scans reading none with the scalar subquery, which runs per candidate
    row through the indexes on both databases).
    """
    mark = "?" if dialect == "sqlite" else "%s"
    one_of_ids = f"IN ({', '.join([mark] * count)})" if dialect == "sqlite" else "= ANY(%b::text[])"
    waiting = (
        f"coalesce(correlations.side, '') = {mark} AND correlations.linked_id IS NULL "
        f"AND correlations.bericht_id {one_of_ids}"
    )
    # Parameters: the original side, the retour side, the ids, the original side.
    same_key_original = (
        f"FROM correlations AS other WHERE other.side = {mark} "
        "AND other.bericht_id = correlations.bericht_id "
        "AND other.afzender = correlations.afzender "
        "AND other.original_type = correlations.original_type"
    )
    original_of_retour = (
        f"(SELECT other.message_id {same_key_original} ORDER BY other.message_id DESC LIMIT 1)"
    )
    link_retours = (
        f"UPDATE correlations SET linked_id = {original_of_retour} "
        f"WHERE {waiting} AND {original_of_retour} IS NOT NULL"
    )
    # Parameters: the retour side, the original side, the ids, the retour side.
    inbound_retour = (
        f"FROM correlations AS other WHERE other.side = {mark} "
        "AND other.linked_id = correlations.message_id"
    )
    generated_retour = "FROM messages WHERE messages.in_reply_to = correlations.message_id"
    first_retour = (
        f"coalesce((SELECT min(other.message_id) {inbound_retour}), "
        f"(SELECT min(messages.id) {generated_retour}))"
    )
    link_originals = (
        f"UPDATE correlations SET linked_id = {first_retour} "
        f"WHERE {waiting} AND {first_retour} IS NOT NULL"
    )
    return link_retours, link_originals


class Exchanges(Repository):
    """Correlations of originals and retours, requests with their answers, and the once-only
    overdue notices of both clocks."""

    def record_correlation(self, message_id: str, correlation: Correlation) -> None:
        """Remember a stored message's place in an exchange and link what pairs up (idempotent:
        a message already recorded keeps its row)."""
        upsert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        with driver_errors("recording a correlation"), self._db.write() as conn:
            lock_exchanges(conn, [correlation.key.bericht_id])
            conn.execute(
                upsert(CORRELATIONS)
                .values(**correlation_values(message_id, correlation))
                .on_conflict_do_nothing()
            )
            link_correlations(conn, [correlation.key.bericht_id])
            settle(conn, [message_id])

    def linked_message(self, message_id: str) -> str | None:
        """The other side of a message's exchange, once linked.

        A message the gateway rejected has no correlation, yet its retour names it
        (``in_reply_to``): the retour links to its original and the original to its first
        retour all the same.
        """
        with driver_errors("reading a correlation"), self._db.read() as conn:
            found = conn.execute(
                select(CORRELATIONS.c.linked_id).where(CORRELATIONS.c.message_id == message_id)
            ).scalar()
            if found is None:
                found = conn.execute(
                    select(MESSAGES.c.in_reply_to).where(MESSAGES.c.id == message_id)
                ).scalar()
            if found is None:
                found = conn.execute(
                    select(func.min(MESSAGES.c.id)).where(MESSAGES.c.in_reply_to == message_id)
                ).scalar()
        return str(found) if found is not None else None

    def open_originals(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[OpenOriginal]:
        """Originals (not rejected) with no retour linked yet, oldest first."""
        stmt = (
            select(MESSAGES, CORRELATIONS.c.overdue_logged_at)
            .join(CORRELATIONS, CORRELATIONS.c.message_id == MESSAGES.c.id)
            .where(
                CORRELATIONS.c.side == Side.ORIGINAL.value,
                CORRELATIONS.c.linked_id.is_(None),
                MESSAGES.c.state.not_in([State.REJECTED.value, State.RECEIVED.value]),
            )
            .order_by(MESSAGES.c.id)
        )
        if party is not None:
            stmt = stmt.where(or_(MESSAGES.c.sender == party, MESSAGES.c.recipient == party))
        if received_before is not None:
            # Message ids grow with their receipt time: the primary key bounds the scan.
            stmt = stmt.where(MESSAGES.c.id < first_id_at(received_before))
        with driver_errors("listing originals waiting for a retour"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [OpenOriginal(message_from_row(r), r._mapping["overdue_logged_at"]) for r in rows]

    def mark_overdue_logged(self, message_ids: Sequence[str], at: dt.datetime) -> list[str]:
        """Mark the overdue notice of these originals logged; returns those not marked before."""
        if not message_ids:
            return []
        with driver_errors("marking overdue notices"), self._db.write() as conn:
            marked = conn.execute(
                update(CORRELATIONS)
                .where(
                    CORRELATIONS.c.message_id.in_(list(message_ids)),
                    CORRELATIONS.c.overdue_logged_at.is_(None),
                )
                .values(overdue_logged_at=at)
                .returning(CORRELATIONS.c.message_id)
            )
            return sorted(str(row[0]) for row in marked)

    def request_exchanges(
        self, party: str | None = None, received_before: dt.datetime | None = None
    ) -> list[RequestExchange]:
        """Requests that count, with their answers, oldest request first."""
        counts = REGISTER.c.verdict != "rejected"
        requests = (
            select(MESSAGES, REGISTER.c.referentie, REGISTER.c.gemeente, REGISTER.c.aanbieder)
            .join(REGISTER, REGISTER.c.message_id == MESSAGES.c.id)
            .where(REGISTER.c.kind == "request", counts, REGISTER.c.referentie.is_not(None))
            .order_by(MESSAGES.c.id, REGISTER.c.id)
        )
        if party is not None:
            involved = or_(MESSAGES.c.sender == party, MESSAGES.c.recipient == party)
            requests = requests.where(involved)
        if received_before is not None:
            requests = requests.where(MESSAGES.c.id < first_id_at(received_before))
        with driver_errors("reading the request clocks"), self._db.read() as conn:
            rows = conn.execute(requests).all()
            references = sorted({str(r._mapping["referentie"]) for r in rows})
            answers = (
                conn.execute(
                    select(
                        REGISTER.c.message_id,
                        REGISTER.c.kind,
                        REGISTER.c.gemeente,
                        REGISTER.c.aanbieder,
                        REGISTER.c.referentie,
                        REGISTER.c.body,
                        MESSAGES.c.message_type,
                        MESSAGES.c.received_at,
                    )
                    .join(MESSAGES, MESSAGES.c.id == REGISTER.c.message_id)
                    .where(
                        REGISTER.c.kind.in_(("answer", "allocation")),
                        counts,
                        REGISTER.c.referentie.in_(references),
                    )
                    .order_by(REGISTER.c.message_id)
                ).all()
                if references
                else []
            )
        by_request: dict[tuple[str, str, str], dict[str, RequestAnswer]] = {}
        for a in answers:
            verzoek = json.loads(a.body).get("verzoek_antwoord") if a.kind == "answer" else None
            found = RequestAnswer(str(a.message_id), a.message_type or "", a.received_at, verzoek)
            # A JW301 honouring a request names it in every product: one answer per message.
            key = (str(a.gemeente), str(a.aanbieder), str(a.referentie))
            by_request.setdefault(key, {})[found.message_id] = found
        # One tuple per reference, shared by every request that carries it: a reference
        # reused by many requests must not cost requests x answers.
        shared = {key: tuple(found.values()) for key, found in by_request.items()}
        result = []
        for row in rows:
            m = row._mapping
            key = (str(m["gemeente"]), str(m["aanbieder"]), str(m["referentie"]))
            result.append(
                RequestExchange(
                    message=message_from_row(row),
                    referentie=key[2],
                    gemeente=key[0],
                    aanbieder=key[1],
                    answers=shared.get(key, ()),
                )
            )
        return result

    def mark_notices_logged(self, keys: Sequence[str], at: dt.datetime) -> list[str]:
        """Mark these deadline keys' overdue notices logged; returns those not marked before."""
        if not keys:
            return []
        upsert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        with driver_errors("marking overdue notices"), self._db.write() as conn:
            marked = conn.execute(
                upsert(DEADLINE_NOTICES)
                .values([{"key": key, "logged_at": at} for key in sorted(set(keys))])
                .on_conflict_do_nothing()
                .returning(DEADLINE_NOTICES.c.key)
            )
            return sorted(str(row[0]) for row in marked)

    def logged_notices(self, keys: Sequence[str]) -> dict[str, dt.datetime]:
        """When each of these deadline keys' overdue notice was logged."""
        if not keys:
            return {}
        with driver_errors("reading overdue notices"), self._db.read() as conn:
            rows = conn.execute(
                select(DEADLINE_NOTICES).where(DEADLINE_NOTICES.c.key.in_(sorted(set(keys))))
            ).all()
        return {str(r.key): r.logged_at for r in rows}
