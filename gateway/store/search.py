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

from sqlalchemy import Select, Table, exists, false, or_, select

from gateway.core.ids import first_id_at
from gateway.core.privacy import client_key
from gateway.store.base import KeyKind, SearchQuery

# One pass over the bytes for all three elements; each kind's length limit is checked after.
_KEYED = re.compile(
    rb"<(?:[\w.-]+:)?(Bsn|ToewijzingNummer|DeclaratieNummer)>\s*([^<\s]{1,40})\s*</"
)
_LONGEST = {b"Bsn": 9, b"ToewijzingNummer": 20, b"DeclaratieNummer": 40}
_MAX_VALUE = 100


def extract_keys(raw: bytes) -> list[tuple[KeyKind, str]]:
    """The (kind, value) pairs to index for a message's raw bytes, without duplicates.

    BSNs become :func:`gateway.core.privacy.client_key` hashes; only nine-digit values count.
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
                clients[(KeyKind.CLIENT, client_key(value.decode("ascii")))] = None
        elif tag == b"ToewijzingNummer":
            numbers[(KeyKind.TOEWIJZING, value.decode("utf-8", "replace"))] = None
        else:
            declarations[(KeyKind.DECLARATIE, value.decode("utf-8", "replace"))] = None
    return [*clients, *numbers, *declarations]


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
