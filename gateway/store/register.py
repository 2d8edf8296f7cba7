"""The dossier register in the SQL store: what messages established, for the B rules.

Intake writes the entries of every message that passes (see
:func:`gateway.core.pipeline.register_update`) in the same transaction as the message itself;
:class:`~gateway.store.history.SqlHistory` answers the
:class:`~gateway.core.dossier.History` protocol from them.

Verdicts (OP286, OP080): entries of a message the gateway answered for are ``accepted`` (or,
of a JW323, only its accepted lines are written); entries of a message its recipient answers
are ``pending`` and count for the rules until the recipient's retour settles them, whichever
of the two arrives first. ``rejected`` entries are invisible to every query.

Privacy: the register holds no BSN. A client is its :func:`~gateway.core.privacy.client_key`
in a column, and the JSON body carries every field of the record except the BSN. A
:class:`~gateway.store.history.SqlHistory` is made per message with the plain BSNs of that
message: records of those
clients come back with their BSN, records of other clients with an opaque ``key:<hash>``, so
the rules' equality tests give the same answers as with plain BSNs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Collection, Sequence
from enum import Enum
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    select,
    union,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from gateway.core.correlate import Side
from gateway.core.dossier import (
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    DeliveryChange,
    Entry,
    Identification,
    RegisterUpdate,
    Request,
    RetourVerdict,
    SubmittedDeclaration,
    Verdict,
)
from gateway.core.privacy import client_key
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import insert_rows, planned_per_call
from gateway.store.tables import CORRELATIONS, REGISTER

OTHER_CLIENT_PREFIX = "key:"
"""The ``bsn`` of a record about a client the message being checked does not name."""

RETOUR_VERDICT = "retour_verdict"
SUBMITTED = "submitted"

_KINDS: dict[type[Any], str] = {
    Identification: "identification",
    Allocation: "allocation",
    DeliveryChange: "delivery",
    Request: "request",
    Answer: "answer",
    Declaration: "declaration",
    ClaimLine: "claim_line",
}

R = TypeVar("R")

Equals = tuple[tuple[str, object], ...]
"""Register columns and the values a query wants them equal to, sorted by column."""

_READS: dict[tuple[tuple[str, ...], bool], Select[Any, Any, Any]] = {}
"""The register queries, one per set of compared columns (and with or without excluded
messages), built once: building and cache-keying a SQLAlchemy statement cost more than running
it on an indexed column, and a dossier check runs dozens of them."""


def _read_statement(columns: tuple[str, ...], excluding: bool) -> Select[Any, Any, Any]:
    """The query of the live entries of one kind whose ``columns`` equal bound values."""
    found = _READS.get((columns, excluding))
    if found is None:
        found = (
            select(REGISTER.c.message_id, REGISTER.c.client_key, REGISTER.c.body)
            .where(
                REGISTER.c.kind == bindparam("p_kind"),
                REGISTER.c.verdict != Verdict.REJECTED.value,
                *(REGISTER.c[name] == bindparam(f"p_{name}") for name in columns),
            )
            .order_by(REGISTER.c.id)
        )
        if excluding:
            found = found.where(
                REGISTER.c.message_id.not_in(bindparam("p_excluded", expanding=True))
            )
        _READS[(columns, excluding)] = found
    return found


# --- rows -----------------------------------------------------------------------------------


REGISTER_COLUMNS = (
    "message_id",
    "kind",
    "verdict",
    "gemeente",
    "aanbieder",
    "client_key",
    "toewijzing_nummer",
    "referentie",
    "vorig_referentie",
    "declaratie_nummer",
    "body",
)
"""The columns of a register row as :func:`entry_rows` builds it (``id`` is the database's)."""

RegisterRow = tuple[Any, ...]


def entry_rows(message_id: str, update_: RegisterUpdate) -> list[RegisterRow]:
    """The register rows of one message (values in :data:`REGISTER_COLUMNS` order): its
    entries, and a received retour's verdict."""
    verdict = update_.verdict.value
    rows = [_entry_row(message_id, entry, verdict) for entry in update_.entries]
    if update_.submitted is not None:
        rows.append(_submitted_row(message_id, update_.submitted))
    if update_.retour is not None:
        body = {
            "rejects_all": update_.retour.rejects_all,
            "rejected_lines": sorted(update_.retour.rejected_lines),
        }
        rows.append(_blank(message_id, RETOUR_VERDICT, Verdict.ACCEPTED, body))
    return rows


def _register_row(
    message_id: str,
    kind: str,
    verdict: str,
    body: dict[str, Any],
    *,
    gemeente: str | None = None,
    aanbieder: str | None = None,
    client_key: str | None = None,
    toewijzing_nummer: int | None = None,
    referentie: str | None = None,
    vorig_referentie: str | None = None,
    declaratie_nummer: str | None = None,
) -> RegisterRow:
    """One register row in :data:`REGISTER_COLUMNS` order (the one place that knows it)."""
    return (
        message_id,
        kind,
        verdict,
        gemeente,
        aanbieder,
        client_key,
        toewijzing_nummer,
        referentie,
        vorig_referentie,
        declaratie_nummer,
        json.dumps(body, sort_keys=True),
    )


def _submitted_row(message_id: str, submitted: SubmittedDeclaration) -> RegisterRow:
    body = _encode(submitted)
    body["lines"] = [
        {"line": _encode(s.line), "client_key": _key_of(s.line.bsn), "tarief": s.tarief}
        for s in submitted.lines
    ]
    # A fact about what was sent: no retour's verdict changes it.
    return _register_row(
        message_id,
        SUBMITTED,
        Verdict.ACCEPTED.value,
        body,
        gemeente=submitted.gemeente,
        aanbieder=submitted.aanbieder,
        referentie=submitted.identificatie,
    )


def _blank(message_id: str, kind: str, verdict: Verdict, body: dict[str, Any]) -> RegisterRow:
    """A row with no key columns, only its body."""
    return _register_row(message_id, kind, verdict.value, body)


# Per record type, the key columns its record fills (the rest stay NULL).


def _identification_keys(entry: Identification) -> dict[str, Any]:
    # The sender may be either party; the key is "<type>:<Identificatie>".
    return {
        "aanbieder": entry.sender,
        "referentie": _identification_key(entry.message_type, entry.identificatie),
    }


def _allocation_keys(entry: Allocation) -> dict[str, Any]:
    return _client_keys(entry.gemeente, entry.aanbieder, entry.bsn) | {
        "toewijzing_nummer": entry.toewijzing_nummer,
        "referentie": entry.referentie_aanbieder,
    }


def _delivery_keys(entry: DeliveryChange) -> dict[str, Any]:
    d = entry.delivery
    return _client_keys(d.gemeente, d.aanbieder, d.bsn) | {
        "toewijzing_nummer": d.key.toewijzing_nummer
    }


def _request_keys(entry: Request) -> dict[str, Any]:
    return _client_keys(entry.gemeente, entry.aanbieder, entry.bsn) | {
        "referentie": entry.referentie
    }


def _answer_keys(entry: Answer) -> dict[str, Any]:
    return {
        "gemeente": entry.gemeente,
        "aanbieder": entry.aanbieder,
        "referentie": entry.referentie,
    }


def _declaration_keys(entry: Declaration) -> dict[str, Any]:
    return {
        "gemeente": entry.gemeente,
        "aanbieder": entry.aanbieder,
        "declaratie_nummer": entry.declaratie_nummer,
    }


def _claim_line_keys(entry: ClaimLine) -> dict[str, Any]:
    return _client_keys(entry.gemeente, entry.aanbieder, entry.bsn) | {
        "toewijzing_nummer": entry.toewijzing_nummer,
        "referentie": entry.referentie_nummer,
        "vorig_referentie": entry.vorig_referentie_nummer,
        "declaratie_nummer": entry.declaratie_nummer,
    }


def _client_keys(gemeente: str, aanbieder: str, bsn: str) -> dict[str, Any]:
    return {"gemeente": gemeente, "aanbieder": aanbieder, "client_key": _key_of(bsn)}


_KEYS_OF: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Identification: _identification_keys,
    Allocation: _allocation_keys,
    DeliveryChange: _delivery_keys,
    Request: _request_keys,
    Answer: _answer_keys,
    Declaration: _declaration_keys,
    ClaimLine: _claim_line_keys,
}


def _entry_row(message_id: str, entry: Entry, verdict: str) -> RegisterRow:
    kind = type(entry)
    return _register_row(message_id, _KINDS[kind], verdict, _encode(entry), **_KEYS_OF[kind](entry))


def _key_of(bsn: str) -> str:
    """The stored key of a BSN, or of an opaque ``key:<hash>`` handed out by a history."""
    if bsn.startswith(OTHER_CLIENT_PREFIX):
        return bsn[len(OTHER_CLIENT_PREFIX) :]
    return client_key(bsn)


def _identification_key(message_type: str, identificatie: str) -> str:
    return f"{message_type}:{identificatie}"


Encoder = Callable[[Any], Any]
_PLANS: dict[type[Any], tuple[tuple[str, Encoder | None], ...]] = {}
"""Per record class: its fields except ``bsn``, each with how its value becomes JSON (None:
as it is). Worked out once per class from the type hints instead of per field per entry."""


def _encode(record: Any) -> dict[str, Any]:
    """The record's fields as JSON values, without any BSN."""
    plan = _PLANS.get(type(record))
    if plan is None:
        plan = _PLANS[type(record)] = _plan(type(record))
    out: dict[str, Any] = {}
    for name, encoder in plan:
        value = getattr(record, name)
        out[name] = value if encoder is None or value is None else encoder(value)
    return out


def _plan(cls: type[Any]) -> tuple[tuple[str, Encoder | None], ...]:
    hints = _hints(cls)
    return tuple(
        (f.name, _encoder_for(hints[f.name])) for f in dataclasses.fields(cls) if f.name != "bsn"
    )


def _encoder_for(hint: Any) -> Encoder | None:
    """How :func:`_encode_value` treats values of this hint, decided once; the generic
    :func:`_encode_value` for anything else."""
    target = hint
    if isinstance(hint, UnionType) or get_origin(hint) is Union:
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) != 1:
            return _encode_value
        target = members[0]
    if target in (str, int, bool):
        return None
    if target in (dt.date, dt.time):
        return _isoformat
    if isinstance(target, type) and issubclass(target, Enum):
        return _enum_value
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return _encode
    return _encode_value


def _isoformat(value: dt.date | dt.time) -> str:
    return value.isoformat()


def _enum_value(value: Enum) -> Any:
    return value.value


def _encode_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode(value)
    return value


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


Decoder = Callable[[Any, str], Any]
_DECODERS: dict[type[Any], tuple[tuple[str, Decoder | None], ...]] = {}
"""Per record class: its fields, each with how its JSON value is read back (None: as it is),
worked out once from the type hints (``bsn`` is set apart: it is never in the body)."""


def _decode(cls: type[R], body: dict[str, Any], bsn: str) -> R:
    plan = _DECODERS.get(cls)
    if plan is None:
        plan = _DECODERS[cls] = tuple(
            (name, _decoder_for(hint)) for name, hint in _hints(cls).items()
        )
    values: dict[str, Any] = {}
    for name, decoder in plan:
        if name == "bsn":
            values[name] = bsn
            continue
        value = body.get(name)
        values[name] = value if value is None or decoder is None else decoder(value, bsn)
    return cls(**values)


def _decoder_for(hint: Any) -> Decoder | None:
    """How :func:`_decode_value` reads a value of this hint, decided once."""
    target = next((a for a in get_args(hint) if a is not type(None)), hint)
    if target is dt.date:
        return lambda value, _: dt.date.fromisoformat(value)
    if target is dt.time:
        return lambda value, _: dt.time.fromisoformat(value)
    if isinstance(target, type) and issubclass(target, Enum):
        return lambda value, _: target(value)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return lambda value, bsn: _decode(target, value, bsn)
    return None


def _decode_value(hint: Any, value: Any, bsn: str) -> Any:
    if value is None:
        return None
    target = next((a for a in get_args(hint) if a is not type(None)), hint)
    if target is dt.date:
        return dt.date.fromisoformat(value)
    if target is dt.time:
        return dt.time.fromisoformat(value)
    if isinstance(target, type) and issubclass(target, Enum):
        return target(value)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        return _decode(target, value, bsn)
    return value


# --- writing ----------------------------------------------------------------------------------


def write_entries(
    conn: Connection,
    updates: Sequence[tuple[str, RegisterUpdate]],
    replaces: str | None = None,
    *,
    fresh: bool = False,
    correlated: Collection[str] | None = None,
) -> None:
    """Insert the register rows of stored messages and settle what their retours decide.

    Call it after the messages' correlations are recorded and linked. ``replaces`` is the
    original of an operator replay: the replay adds nothing while the original's entries
    still count (they stand for both). ``fresh`` says the messages were created in this
    transaction, so none can have rows yet; ``correlated`` names those of them that take part
    in an exchange (only they can be settled), when the caller knows.
    """
    if (
        replaces is not None
        and conn.execute(
            select(REGISTER.c.id)
            .where(REGISTER.c.message_id == replaces, REGISTER.c.verdict != Verdict.REJECTED.value)
            .limit(1)
        ).first()
    ):
        return
    written = {message_id for message_id, _ in updates}
    have: set[str] = set()
    if not fresh:
        have = set(
            conn.execute(
                select(REGISTER.c.message_id).where(REGISTER.c.message_id.in_(sorted(written)))
            ).scalars()
        )
    rows = [row for mid, upd in updates if mid not in have for row in entry_rows(mid, upd)]
    insert_rows(conn, conn.dialect.name, REGISTER, REGISTER_COLUMNS, rows)
    settle(conn, written if correlated is None else written & set(correlated))


def settle(conn: Connection, message_ids: Collection[str]) -> None:
    """Apply every linked retour's verdict to its original's pending entries.

    Looks at exchanges where one of ``message_ids`` is the retour or the original, so either
    arrival order settles (OP080). Only pending entries change: an original the gateway
    answered for is decided already, and the first retour decides.
    """
    if not message_ids:
        return
    with planned_per_call(conn):
        statement = _settle_statement(conn.dialect.name)
        pairs = conn.execute(statement, {"ids": sorted(message_ids)}).all()
    for _retour_id, original_id, body in pairs:
        data = json.loads(body)
        _apply(
            conn,
            str(original_id),
            RetourVerdict(data["rejects_all"], frozenset(data["rejected_lines"])),
        )


@functools.cache
def _settle_statement(dialect: str) -> Select[Any, Any, Any]:
    """The linked retours' verdicts that concern the messages ``ids``; built once (building the
    union cost more than running it). On PostgreSQL ``ids`` is one array parameter, one SQL
    text for any number of ids (an expanding IN-list is a new text for every count); it is
    planned on every call all the same (see :func:`~gateway.store.dialect.planned_per_call`)."""

    def one_of_ids(column: ColumnElement[Any]) -> ColumnElement[bool]:
        if dialect == "sqlite":
            ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
            return column.in_(ids)
        return column == any_(bindparam("ids", type_=ARRAY(String)))

    # Two index searches (the retour's own row by message id; the retours linked to an
    # original by ix_correlations_linked) instead of one OR, for which SQLite's planner walks
    # every received retour's verdict: a cost that grew with the store, in every batch.
    exchanges = union(
        select(CORRELATIONS.c.message_id, CORRELATIONS.c.linked_id).where(
            one_of_ids(CORRELATIONS.c.message_id),
            CORRELATIONS.c.side == Side.RETOUR.value,
            CORRELATIONS.c.linked_id.is_not(None),
        ),
        select(CORRELATIONS.c.message_id, CORRELATIONS.c.linked_id).where(
            CORRELATIONS.c.side == Side.RETOUR.value, one_of_ids(CORRELATIONS.c.linked_id)
        ),
    ).subquery()
    return (
        select(exchanges.c.message_id, exchanges.c.linked_id, REGISTER.c.body)
        .join(REGISTER, REGISTER.c.message_id == exchanges.c.message_id)
        .where(REGISTER.c.kind == RETOUR_VERDICT)
        .order_by(exchanges.c.message_id)
    )


def _apply(conn: Connection, original_id: str, verdict: RetourVerdict) -> None:
    pending = and_(
        REGISTER.c.message_id == original_id, REGISTER.c.verdict == Verdict.PENDING.value
    )
    if verdict.rejects_all:
        conn.execute(update(REGISTER).where(pending).values(verdict=Verdict.REJECTED.value))
        return
    if verdict.rejected_lines:
        conn.execute(
            update(REGISTER)
            .where(
                pending,
                REGISTER.c.kind == _KINDS[ClaimLine],
                REGISTER.c.referentie.in_(sorted(verdict.rejected_lines)),
            )
            .values(verdict=Verdict.REJECTED.value)
        )
        lines_left = conn.execute(
            select(REGISTER.c.id).where(
                REGISTER.c.message_id == original_id,
                REGISTER.c.kind == _KINDS[ClaimLine],
                REGISTER.c.verdict != Verdict.REJECTED.value,
            )
        ).first()
        if lines_left is None:
            # Nothing of the declaration was accepted: its number was never used (TR333).
            conn.execute(update(REGISTER).where(pending).values(verdict=Verdict.REJECTED.value))
            return
    conn.execute(update(REGISTER).where(pending).values(verdict=Verdict.ACCEPTED.value))


class DossierRegister(Repository):
    """The register's part of the store: a stored message's entries, outside intake's batch."""

    def record_register(
        self, message_id: str, update: RegisterUpdate, replay_of: str | None = None
    ) -> None:
        """Write a stored message's register entries once and settle what its link decides."""
        with driver_errors("recording dossier entries"), self._db.write() as conn:
            write_entries(conn, [(message_id, update)], replaces=replay_of)
