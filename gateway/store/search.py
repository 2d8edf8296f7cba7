"""Search support for the operator console: the key index and the keyset-paginated queries.

Intake records, next to each message, the values an operator searches by that are not header
metadata: a keyed hash of every BSN (never the BSN), every ToewijzingNummer and the
DeclaratieNummer. Findings add their rule codes. They live in ``message_keys`` with the
primary key (kind, value, message_id), so a lookup walks one index range already sorted by
message id, which is what keyset pagination needs.

Extraction is a byte-level scan, not a parse: it runs inside the intake path on messages of up
to 25 MB and must cost next to nothing. A value that is not well-formed simply is not indexed;
validation decides about the message itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, Table, and_, exists, false, func, or_, select

from gateway.core.ids import first_id_at
from gateway.core.model import Message, State
from gateway.core.privacy import Pseudonymizer
from gateway.store.base import KeyKind, Related, SearchPage, SearchQuery
from gateway.store.database import Repository, driver_errors
from gateway.store.rows import message_from_row
from gateway.store.tables import MESSAGE_KEYS, MESSAGES

# One pass over the bytes for all three elements; each kind's length limit is checked after.
_KEYED = re.compile(
    rb"<(?:[\w.-]+:)?(Bsn|ToewijzingNummer|DeclaratieNummer)>\s*([^<\s]{1,40})\s*</"
)
_LONGEST = {b"Bsn": 9, b"ToewijzingNummer": 20, b"DeclaratieNummer": 40}
_MAX_VALUE = 100


def extract_keys(raw: bytes, pseudonyms: Pseudonymizer) -> list[tuple[KeyKind, str]]:
    """The (kind, value) pairs to index for a message's raw bytes, without duplicates.

    BSNs become client keys (``pseudonyms``); only nine-digit values count.
    Clients come first, then ToewijzingNummers, then DeclaratieNummers, each in document order.
    """
    clients: dict[tuple[KeyKind, str], None] = {}
    numbers: dict[tuple[KeyKind, str], None] = {}
    declarations: dict[tuple[KeyKind, str], None] = {}
    for match in _KEYED.finditer(raw):
        tag, value = match.group(1), match.group(2)
        if len(value) > _LONGEST[tag]:
            continue
        if tag == b"Bsn":
            if len(value) == 9 and value.isdigit():
                clients[(KeyKind.CLIENT, pseudonyms.client_key(value.decode("ascii")))] = None
        elif tag == b"ToewijzingNummer":
            numbers[(KeyKind.TOEWIJZING, value.decode("utf-8", "replace"))] = None
        else:
            declarations[(KeyKind.DECLARATIE, value.decode("utf-8", "replace"))] = None
    return [*clients, *numbers, *declarations]


def bsns_in(raw: bytes) -> list[str]:
    """The distinct nine-digit BSNs a message's raw bytes name, in document order: the clients
    :func:`extract_keys` indexes."""
    found: dict[str, None] = {}
    for match in _KEYED.finditer(raw):
        value = match.group(2)
        if match.group(1) == b"Bsn" and len(value) == 9 and value.isdigit():
            found[value.decode("ascii")] = None
    return list(found)


def rule_keys(findings: Iterable[dict[str, Any]]) -> list[tuple[KeyKind, str]]:
    """The rule codes of findings, as index entries."""
    codes = {str(f["rule"]) for f in findings if f.get("rule")}
    return [(KeyKind.RULE, code[:_MAX_VALUE]) for code in sorted(codes)]


def key_rows(message_id: str, keys: Sequence[tuple[KeyKind, str]]) -> list[dict[str, str]]:
    """Rows for ``message_keys``."""
    return [
        {"message_id": message_id, "kind": kind.value, "value": value[:_MAX_VALUE]}
        for kind, value in keys
    ]


def search_statements(
    q: SearchQuery, messages: Table, keys: Table, limit: int
) -> list[Select[Any]]:
    """The SELECTs whose merged, sorted output answers ``q`` (one, or two for ``party``).

    ``party`` means sender OR recipient. One OR query cannot walk an index in id order, so it
    becomes two branches (sender = P, recipient = P and sender <> P), each walking its own
    (column, id) index; the caller merges them and keeps the first ``limit``.
    """
    if q.party is None:
        return [_statement(q, messages, keys, limit, [])]
    as_sender = [messages.c.sender == q.party]
    as_recipient = [messages.c.recipient == q.party, messages.c.sender != q.party]
    return [
        _statement(q, messages, keys, limit, as_sender),
        _statement(q, messages, keys, limit, as_recipient),
    ]


def _statement(
    q: SearchQuery, messages: Table, keys: Table, limit: int, extra: list[Any]
) -> Select[Any]:
    conditions = list(extra)
    conditions += filter_conditions(q, messages, keys)
    wanted = q.keys()
    # The first key filter drives the query through the key index (sorted by message id);
    # any further key filters are EXISTS checks on the rows it yields.
    if wanted:
        kind, value = wanted[0]
        order_column = keys.c.message_id
        stmt = select(messages).join(keys, keys.c.message_id == messages.c.id)
        conditions += [keys.c.kind == kind.value, keys.c.value == value]
        conditions += _id_bounds(q, order_column)
    else:
        order_column = messages.c.id
        stmt = select(messages)
        conditions += _id_bounds(q, order_column)
    if q.cursor is not None:
        conditions.append(order_column < q.cursor if q.newest_first else order_column > q.cursor)
    order = order_column.desc() if q.newest_first else order_column.asc()
    return stmt.where(*conditions).order_by(order).limit(limit)


def filter_conditions(q: SearchQuery, messages: Table, keys: Table) -> list[Any]:
    """The WHERE conditions of ``q`` except party, the driving key and the id range."""
    conditions: list[Any] = []
    if q.sender is not None:
        conditions.append(messages.c.sender == q.sender)
    if q.recipient is not None:
        conditions.append(messages.c.recipient == q.recipient)
    if q.direction is not None:
        conditions.append(messages.c.direction == q.direction)
    if q.message_type is not None:
        conditions.append(messages.c.message_type == q.message_type)
    if q.states:
        conditions.append(messages.c.state.in_([s.value for s in q.states]))
    if q.bericht_id is not None:
        conditions.append(messages.c.bericht_id == q.bericht_id)
    for kind, value in q.keys()[1:]:
        # An alias: the driving key filter may already join ``keys`` in the outer query.
        other = keys.alias()
        conditions.append(
            exists().where(
                other.c.message_id == messages.c.id,
                other.c.kind == kind.value,
                other.c.value == value,
            )
        )
    return conditions


def _id_bounds(q: SearchQuery, id_column: Any) -> list[Any]:
    bounds: list[Any] = []
    if q.since is not None:
        bounds.append(id_column >= first_id_at(q.since))
    if q.until is not None:
        bounds.append(id_column < first_id_at(q.until))
    if q.since is not None and q.until is not None and q.until <= q.since:
        bounds.append(false())
    return bounds


def count_statement(q: SearchQuery, messages: Table, keys: Table) -> Select[Any]:
    """SELECT the ids matching ``q`` regardless of cursor and limit (wrap it in a count)."""
    conditions = filter_conditions(q, messages, keys)
    wanted = q.keys()
    if wanted:
        kind, value = wanted[0]
        stmt = select(messages.c.id).join(keys, keys.c.message_id == messages.c.id)
        conditions += [keys.c.kind == kind.value, keys.c.value == value]
        conditions += _id_bounds(q, keys.c.message_id)
    else:
        stmt = select(messages.c.id)
        conditions += _id_bounds(q, messages.c.id)
    if q.party is not None:
        conditions.append(or_(messages.c.sender == q.party, messages.c.recipient == q.party))
    return stmt.where(*conditions)


class SearchRepository(Repository):
    """The operator console's reads: search pages and counts, a message's keys and its
    related messages."""

    def search(self, q: SearchQuery) -> SearchPage:
        """One page of messages matching ``q``, sorted by id, with the next page's cursor."""
        limit = max(q.limit, 0)
        statements = search_statements(q, MESSAGES, MESSAGE_KEYS, limit + 1)
        with driver_errors("searching messages"), self._db.read() as conn:
            rows = [row for stmt in statements for row in conn.execute(stmt).all()]
        found = sorted(
            (message_from_row(r) for r in rows), key=lambda m: m.id, reverse=q.newest_first
        )
        page = found[:limit]
        more = len(found) > limit
        return SearchPage(page, page[-1].id if more and page else None)

    def count(self, q: SearchQuery) -> int:
        """How many messages match ``q`` (ignores cursor and limit)."""
        stmt = select(func.count()).select_from(
            count_statement(q, MESSAGES, MESSAGE_KEYS).subquery()
        )
        with driver_errors("counting messages"), self._db.read() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def keys_of(self, message_id: str) -> dict[KeyKind, list[str]]:
        """The searchable values indexed for a message."""
        stmt = (
            select(MESSAGE_KEYS.c.kind, MESSAGE_KEYS.c.value)
            .where(MESSAGE_KEYS.c.message_id == message_id)
            .order_by(MESSAGE_KEYS.c.kind, MESSAGE_KEYS.c.value)
        )
        with driver_errors("reading message keys"), self._db.read() as conn:
            rows = conn.execute(stmt).all()
        keys: dict[KeyKind, list[str]] = {}
        for kind, value in rows:
            keys.setdefault(KeyKind(kind), []).append(value)
        return keys

    def replay_of(self, message_id: str) -> str | None:
        """The original of a replayed message (None for an original or an unknown id)."""
        with driver_errors("reading a message"), self._db.read() as conn:
            found = conn.execute(
                select(MESSAGES.c.replay_of).where(MESSAGES.c.id == message_id)
            ).scalar()
        return str(found) if found is not None else None

    def related(self, message_id: str) -> list[Related]:
        """Retours, originals, replays and messages with the same BerichtIdentificatie."""
        with driver_errors("reading related messages"), self._db.read() as conn:
            row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
            if row is None:
                return []
            me = row._mapping
            labelled: list[tuple[str, Any]] = [
                ("retour", MESSAGES.c.in_reply_to == message_id),
                ("replayed as", MESSAGES.c.replay_of == message_id),
            ]
            if me["in_reply_to"]:
                labelled.append(("answers", MESSAGES.c.id == me["in_reply_to"]))
            if me["replay_of"]:
                labelled.append(("replay of", MESSAGES.c.id == me["replay_of"]))
                labelled.append(("other replay", MESSAGES.c.replay_of == me["replay_of"]))
            if me["bericht_id"]:
                labelled.append(
                    (
                        "same BerichtIdentificatie",
                        and_(
                            MESSAGES.c.bericht_id == me["bericht_id"],
                            MESSAGES.c.sender == me["sender"],
                        ),
                    )
                )
            found: dict[str, Related] = {}
            for relation, condition in labelled:
                stmt = (
                    select(MESSAGES)
                    .where(condition, MESSAGES.c.id != message_id)
                    .order_by(MESSAGES.c.id)
                    .limit(50)
                )
                for r in conn.execute(stmt).all():
                    found.setdefault(r._mapping["id"], Related(relation, message_from_row(r)))
        return sorted(found.values(), key=lambda rel: rel.message.id)

    def delivered_copies(self, message: Message) -> list[Message]:
        """Delivered messages with the same sender, BerichtIdentificatie and content."""
        same_bericht = (
            MESSAGES.c.bericht_id.is_(None)
            if message.bericht_id is None
            else MESSAGES.c.bericht_id == message.bericht_id
        )
        stmt = (
            select(MESSAGES)
            .where(
                MESSAGES.c.sender == message.sender,
                same_bericht,
                MESSAGES.c.content_hash == message.content_hash,
                MESSAGES.c.state == State.DELIVERED.value,
            )
            .order_by(MESSAGES.c.id)
        )
        with driver_errors("looking for delivered copies"), self._db.read() as conn:
            return [message_from_row(r) for r in conn.execute(stmt).all()]
