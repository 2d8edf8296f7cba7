"""The dossier register in the SQL store: what messages established, for the B rules.

Intake writes the entries of every message that passes (see
:func:`gateway.core.pipeline.register_update`) in the same transaction as the message itself;
:class:`SqlHistory` answers the :class:`~gateway.core.dossier.History` protocol from them.

Verdicts (OP286, OP080): entries of a message the gateway answered for are ``accepted`` (or,
of a JW323, only its accepted lines are written); entries of a message its recipient answers
are ``pending`` and count for the rules until the recipient's retour settles them, whichever
of the two arrives first. ``rejected`` entries are invisible to every query.

Privacy: the register holds no BSN. A client is its :func:`~gateway.core.privacy.client_key`
in a column, and the JSON body carries every field of the record except the BSN. A
:class:`SqlHistory` is made per message with the plain BSNs of that message: records of those
clients come back with their BSN, records of other clients with an opaque ``key:<hash>``, so
the rules' equality tests give the same answers as with plain BSNs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from enum import Enum
from types import UnionType
from typing import Any, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    literal,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine, Row
from sqlalchemy.sql.elements import BindParameter

from gateway.core.correlate import Side
from gateway.core.document import MessageDocument
from gateway.core.dossier import (
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    Delivery,
    DeliveryChange,
    Entry,
    Identification,
    RegisterUpdate,
    Request,
    RetourVerdict,
    SubmittedDeclaration,
    SubmittedLine,
    Verdict,
    fold_deliveries,
)
from gateway.core.dossier.questions import Questions, questions_of
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


# --- reading ----------------------------------------------------------------------------------

# What a message's rules need is read in one statement (:func:`_read_once_statement`): a UNION
# of index lookups, each a group of the message's questions (one kind of key, the header's
# parties fixed, the message's values in an IN list), and the lookups that follow from what
# those find (every version of an allocation number found, what settles a request found).
# The answers are then filtered from those rows; a question outside them is asked on its own.

_LOADED = (
    "id",
    "message_id",
    "kind",
    "gemeente",
    "aanbieder",
    "client_key",
    "toewijzing_nummer",
    "referentie",
    "vorig_referentie",
    "declaratie_nummer",
    "body",
)
_INDEX = {name: n for n, name in enumerate(_LOADED)}


@dataclasses.dataclass(frozen=True, slots=True)
class _Hop:
    """From the rows of kind ``source`` found so far, on to the live rows of ``kinds`` with
    the same values in ``columns``."""

    source: str
    kinds: tuple[str, ...]
    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Lookup:
    """Live rows of ``kinds`` with ``fixed`` columns equal and ``column`` one of ``values``,
    and where each chain of hops leads from them. Every prefix of a chain is a chain too (the
    empty one first): a hop starts from rows the lookup read, as :func:`_covered` assumes."""

    kinds: tuple[str, ...]
    fixed: tuple[tuple[str, object], ...]
    column: str
    values: tuple[object, ...] = ()
    chains: tuple[tuple[_Hop, ...], ...] = ((),)

    @property
    def shape(self) -> tuple[object, ...]:
        return (self.kinds, tuple(name for name, _ in self.fixed), self.column, self.chains)


_ALLOCATION = _KINDS[Allocation]
_REQUEST = _KINDS[Request]
_ANSWER = _KINDS[Answer]
_CLAIM_LINE = _KINDS[ClaimLine]
_VERSIONS = _Hop(_ALLOCATION, (_ALLOCATION,), ("gemeente", "toewijzing_nummer"))
_REFERENCED = (_REQUEST, _ALLOCATION, _ANSWER)
"""What a ReferentieAanbieder is asked about: requests, allocations and answers."""
_SETTLING = _Hop(_REQUEST, _REFERENCED, ("aanbieder", "referentie"))


def _lookups(questions: Questions) -> list[_Lookup]:
    """The questions as lookups: grouped by their fixed columns, values sorted."""
    groups: dict[_Lookup, set[object]] = defaultdict(set)
    for template, value in _asked(questions):
        groups[template].add(value)
    lookups = [
        dataclasses.replace(template, values=tuple(sorted(values, key=repr)))
        for template, values in groups.items()
    ]
    return sorted(lookups, key=lambda lookup: repr((lookup.shape, lookup.fixed)))


def _asked(questions: Questions) -> Iterator[tuple[_Lookup, object]]:
    """Each expected question as (its lookup without values, its value)."""
    for sender, message_type, identificatie in questions.identifications:
        by_sender = (("aanbieder", sender),)
        yield (
            _Lookup((_KINDS[Identification],), by_sender, "referentie"),
            _identification_key(message_type, identificatie),
        )
    for gemeente, number in questions.allocation_numbers:
        by_gemeente = (("gemeente", gemeente),)
        yield _Lookup((_ALLOCATION, _CLAIM_LINE), by_gemeente, "toewijzing_nummer"), number
    client_chains = ((), (_VERSIONS,), (_SETTLING,), (_SETTLING, _VERSIONS))
    client_kinds = (_ALLOCATION, _KINDS[DeliveryChange], _REQUEST)
    for gemeente, aanbieder, bsn in questions.clients:
        parties = (("aanbieder", aanbieder), ("gemeente", gemeente))
        yield _Lookup(client_kinds, parties, "client_key", chains=client_chains), _key_of(bsn)
    for aanbieder, referentie in questions.references:
        by_aanbieder = (("aanbieder", aanbieder),)
        chains = ((), (_VERSIONS,))
        yield _Lookup(_REFERENCED, by_aanbieder, "referentie", chains=chains), referentie
    for aanbieder, declaratie_nummer in questions.declaration_numbers:
        by_aanbieder = (("aanbieder", aanbieder),)
        yield (
            _Lookup((_KINDS[Declaration],), by_aanbieder, "declaratie_nummer"),
            declaratie_nummer,
        )
    for kind, column, keys in (
        (_CLAIM_LINE, "referentie", questions.claim_references),
        (_CLAIM_LINE, "vorig_referentie", questions.credited_references),
        (SUBMITTED, "referentie", questions.submissions),
    ):
        for aanbieder, gemeente, reference in keys:
            parties = (("aanbieder", aanbieder), ("gemeente", gemeente))
            yield _Lookup((kind,), parties, column), reference


@dataclasses.dataclass(frozen=True, slots=True)
class _ReadOnce:
    """The one-read statement of one shape, compiled for one dialect: its text, the values of
    its constant parameters and, for a positional driver, the order of its parameters."""

    sql: str
    constants: dict[str, Any]
    order: tuple[str, ...] | None

    def arguments(self, params: dict[str, object]) -> Any:
        values = self.constants | params
        return values if self.order is None else tuple(values[name] for name in self.order)


_READ_ONCE: dict[tuple[object, ...], _ReadOnce] = {}
"""The one-read statements by dialect and shape (the lookups, how many values each, how many
excluded messages), compiled once: SQLAlchemy's per-execution work (cache key, expanding IN
lists) on a statement of this size cost more than SQLite spent running it."""


def _read_once_statement(dialect: Dialect, lookups: Sequence[_Lookup], excluded: int) -> _ReadOnce:
    """One UNION ALL for every lookup, with parameters ``p<n>_<column>`` (the fixed columns),
    ``p<n>_in<i>`` (the values) and ``p_excluded<i>``; rows in :data:`_LOADED` order, a row
    found by several branches several times."""
    shape = (
        dialect.name,
        tuple((lookup.shape, len(lookup.values)) for lookup in lookups),
        excluded,
    )
    found = _READ_ONCE.get(shape)
    if found is not None:
        return found

    def live(table: Any) -> list[ColumnElement[bool]]:
        conditions = [table.c.verdict != Verdict.REJECTED.value]
        if excluded:
            ids: list[BindParameter[Any]] = [bindparam(f"p_excluded{i}") for i in range(excluded)]
            conditions.append(table.c.message_id.not_in(ids))
        return conditions

    def kind_in(table: Any, kinds: Sequence[str]) -> ColumnElement[bool]:
        column: ColumnElement[str] = table.c.kind
        # One bound value each: a list would be an expanding parameter, rendered per call.
        return column == kinds[0] if len(kinds) == 1 else column.in_([literal(k) for k in kinds])

    branches = []
    for n, lookup in enumerate(lookups):
        values: list[BindParameter[Any]] = [
            bindparam(f"p{n}_in{i}") for i in range(len(lookup.values))
        ]
        for chain in lookup.chains:
            tables = [REGISTER.alias(f"l{n}_{step}") for step in range(len(chain) + 1)]
            seed = tables[0]
            conditions = [
                kind_in(seed, lookup.kinds),
                *(seed.c[name] == bindparam(f"p{n}_{name}") for name, _ in lookup.fixed),
                seed.c[lookup.column].in_(values),
                *live(seed),
            ]
            for hop, before, after in zip(chain, tables, tables[1:], strict=False):
                conditions += [
                    before.c.kind == hop.source,
                    kind_in(after, hop.kinds),
                    *(after.c[name] == before.c[name] for name in hop.columns),
                    *live(after),
                ]
            last = tables[-1]
            branches.append(select(*(last.c[name] for name in _LOADED)).where(*conditions))
    statement = union_all(*branches) if len(branches) > 1 else branches[0]
    compiled = statement.compile(dialect=dialect)
    # The kinds and verdict are bound constants; the rest come with each read.
    defaults = compiled.construct_params(_check=False)
    constants = {name: value for name, value in defaults.items() if value is not None}
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    found = _READ_ONCE[shape] = _ReadOnce(compiled.string, constants, order)
    return found


def _covered(
    lookups: Sequence[_Lookup], rows: Sequence[Row[Any, Any, Any]]
) -> set[tuple[str, Equals]]:
    """The ``(kind, equals)`` questions whose every answer is among ``rows`` (what the lookups
    read): the same filters, applied in Python."""
    covered: set[tuple[str, Equals]] = set()

    def mark(kinds: Sequence[str], equals: Iterable[tuple[str, object]]) -> None:
        key = tuple(sorted(equals))
        covered.update((kind, key) for kind in kinds)

    for lookup in lookups:
        values = set(lookup.values)
        for value in lookup.values:
            mark(lookup.kinds, (*lookup.fixed, (lookup.column, value)))
        seeds = [
            row
            for row in rows
            if row[_INDEX["kind"]] in lookup.kinds
            and all(row[_INDEX[name]] == value for name, value in lookup.fixed)
            and row[_INDEX[lookup.column]] in values
        ]
        for chain in lookup.chains:
            found = seeds
            for hop in chain:
                keys = {
                    tuple(row[_INDEX[name]] for name in hop.columns)
                    for row in found
                    if row[_INDEX["kind"]] == hop.source
                }
                keys = {key for key in keys if None not in key}
                for key in keys:
                    mark(hop.kinds, zip(hop.columns, key, strict=True))
                found = [
                    row
                    for row in rows
                    if row[_INDEX["kind"]] in hop.kinds
                    and tuple(row[_INDEX[name]] for name in hop.columns) in keys
                ]
    return covered


class EngineHolder(Protocol):
    """What a :class:`SqlHistory` reads through: a store's engine."""

    @property
    def engine(self) -> Engine: ...


class SqlHistory:
    """The :class:`~gateway.core.dossier.History` of the register, for checking one message.

    ``known_bsns`` are the plain BSNs of the message being checked; ``exclude_messages`` are
    message ids whose entries must not count (the original of an operator replay, so the
    replay does not collide with itself on uniqueness rules such as TR056 or TR333).
    ``questions`` (:func:`~gateway.core.dossier.questions.questions_of` the message) are read
    in one statement at the first question; any other question is read when asked.
    Answers are those :class:`~gateway.core.dossier.InMemoryHistory` gives for the same
    accepted messages folded in arrival order.
    """

    def __init__(
        self,
        store: EngineHolder,
        known_bsns: Iterable[str] = (),
        exclude_messages: Iterable[str] = (),
        questions: Questions | None = None,
    ) -> None:
        self._engine = store.engine
        self._lookups = _lookups(questions) if questions is not None else []
        self._loaded: list[Row[Any, Any, Any]] | None = None
        self._covered: set[tuple[str, Equals]] = set()
        self._bsn_by_key = {client_key(bsn): bsn for bsn in known_bsns}
        self._excluded = sorted(set(exclude_messages))
        # The rules ask the same questions several times (per product, per rule); one history
        # serves one message's check, during which its clients' locks are held, so an answer
        # read once stands for the rest of the check.
        self._read: dict[tuple[str, Equals], list[Sequence[Any]]] = {}
        self._decoded: dict[tuple[str, Equals], list[Any]] = {}
        self._deliveries: dict[tuple[str, str, str], list[Delivery]] = {}

    # -- plumbing --

    def _rows(self, kind: type[Any] | str, **equals: object) -> list[Sequence[Any]]:
        kind_name = kind if isinstance(kind, str) else _KINDS[kind]
        key = (kind_name, tuple(sorted(equals.items())))
        found = self._read.get(key)
        if found is None and self._lookups:
            self._read_once()
            if key in self._covered:
                found = self._from_loaded(key)
        if found is None:
            columns = tuple(name for name, _ in key[1])
            params: dict[str, object] = {f"p_{name}": value for name, value in key[1]}
            params["p_kind"] = kind_name
            if self._excluded:
                params["p_excluded"] = self._excluded
            stmt = _read_statement(columns, bool(self._excluded))
            with self._engine.connect() as conn:
                found = list(conn.execute(stmt, params).all())
            self._read[key] = found
        return found

    def _read_once(self) -> None:
        """Read what the expected questions need, once (see :func:`_read_once_statement`)."""
        if self._loaded is not None:
            return
        params: dict[str, object] = {}
        for n, lookup in enumerate(self._lookups):
            params.update({f"p{n}_{name}": value for name, value in lookup.fixed})
            params.update({f"p{n}_in{i}": value for i, value in enumerate(lookup.values)})
        params.update({f"p_excluded{i}": value for i, value in enumerate(self._excluded)})
        with self._engine.connect() as conn:
            statement = _read_once_statement(conn.dialect, self._lookups, len(self._excluded))
            rows = conn.exec_driver_sql(statement.sql, statement.arguments(params)).all()
        # A row two lookups found comes once; arrival order, as every answer is read.
        self._loaded = sorted({row[0]: row for row in rows}.values(), key=lambda row: row[0])
        self._covered = _covered(self._lookups, self._loaded)

    def _from_loaded(self, key: tuple[str, Equals]) -> list[Sequence[Any]]:
        """The rows :meth:`_rows` would read for ``key``, filtered from those read once."""
        kind, equals = key
        wanted = [(_INDEX[name], value) for name, value in equals]
        message_id, client, body = _INDEX["message_id"], _INDEX["client_key"], _INDEX["body"]
        found = [
            row
            for row in self._loaded or ()
            if row[_INDEX["kind"]] == kind
            and all(value is not None and row[i] == value for i, value in wanted)
        ]
        rows: list[Sequence[Any]] = [(row[message_id], row[client], row[body]) for row in found]
        self._read[key] = rows
        return rows

    def _bsn(self, key: str | None) -> str:
        if key is None:
            return ""
        return self._bsn_by_key.get(key, OTHER_CLIENT_PREFIX + key)

    def _records(self, kind: type[R], **equals: object) -> list[R]:
        key = (_KINDS[kind], tuple(sorted(equals.items())))
        found = self._decoded.get(key)
        if found is None:
            found = [
                _decode(kind, json.loads(body), self._bsn(client))
                for _, client, body in self._rows(kind, **equals)
            ]
            self._decoded[key] = found
        # A copy: callers may filter or extend what they get.
        return list(found)

    def _allocations(self, **equals: object) -> list[Allocation]:
        """Every version of the numbers that have a version matching ``equals``; a later entry
        with the same moment replaces an earlier one, as in the in-memory history."""
        numbers = {(a.gemeente, a.toewijzing_nummer) for a in self._records(Allocation, **equals)}
        versions: dict[tuple[str, int], dict[dt.datetime, Allocation]] = defaultdict(dict)
        for gemeente, nummer in sorted(numbers):
            for version in self._records(Allocation, gemeente=gemeente, toewijzing_nummer=nummer):
                versions[(gemeente, nummer)][version.moment] = version
        return [v for by_moment in versions.values() for v in by_moment.values()]

    def _lines(self, **equals: object) -> list[ClaimLine]:
        """Claim lines matching ``equals``, the latest per ReferentieNummer."""
        latest: dict[tuple[str, str, str], ClaimLine] = {}
        for line in self._records(ClaimLine, **equals):
            latest[(line.aanbieder, line.gemeente, line.referentie_nummer)] = line
        return list(latest.values())

    # -- History --

    def message_seen(self, sender: str, message_type: str, identificatie: str) -> bool:
        """See :meth:`History.message_seen`."""
        return bool(
            self._rows(
                Identification,
                aanbieder=sender,
                referentie=_identification_key(message_type, identificatie),
            )
        )

    def allocation_versions(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Allocation]:
        """See :meth:`History.allocation_versions`."""
        return self._allocations(gemeente=gemeente, toewijzing_nummer=toewijzing_nummer)

    def client_allocations(self, gemeente: str, aanbieder: str, bsn: str) -> Sequence[Allocation]:
        """See :meth:`History.client_allocations`."""
        return [
            v
            for v in self._allocations(
                gemeente=gemeente,
                aanbieder=aanbieder,
                client_key=_key_of(bsn),
            )
            if v.aanbieder == aanbieder and v.bsn == bsn
        ]

    def allocations_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Allocation]:
        """See :meth:`History.allocations_with_reference`."""
        return [
            v
            for v in self._allocations(aanbieder=aanbieder, referentie=referentie)
            if v.aanbieder == aanbieder and v.referentie_aanbieder == referentie
        ]

    def deliveries(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Delivery]:
        """See :meth:`History.deliveries`."""
        client = (aanbieder, gemeente, bsn)
        known = self._deliveries.get(client)
        if known is not None:
            return list(known)
        rows = self._rows(
            DeliveryChange,
            aanbieder=aanbieder,
            gemeente=gemeente,
            client_key=_key_of(bsn),
        )
        # Fold message by message, in arrival order, exactly as the in-memory history does.
        by_message: dict[str, list[DeliveryChange]] = {}
        for message_id, key, body in rows:
            change = _decode(DeliveryChange, json.loads(body), self._bsn(key))
            by_message.setdefault(message_id, []).append(change)
        current: list[Delivery] = []
        for changes in by_message.values():
            current = fold_deliveries(current, changes)
        self._deliveries[client] = current
        return list(current)

    def requests_with_reference(self, aanbieder: str, referentie: str) -> Sequence[Request]:
        """See :meth:`History.requests_with_reference`."""
        return self._records(Request, aanbieder=aanbieder, referentie=referentie)

    def client_requests(self, aanbieder: str, gemeente: str, bsn: str) -> Sequence[Request]:
        """See :meth:`History.client_requests`."""
        return self._records(
            Request,
            aanbieder=aanbieder,
            gemeente=gemeente,
            client_key=_key_of(bsn),
        )

    def answers(self, aanbieder: str, referentie: str) -> Sequence[Answer]:
        """See :meth:`History.answers`."""
        return self._records(Answer, aanbieder=aanbieder, referentie=referentie)

    def declaration_number_seen(self, aanbieder: str, declaratie_nummer: str) -> bool:
        """See :meth:`History.declaration_number_seen`."""
        return bool(
            self._rows(
                Declaration,
                aanbieder=aanbieder,
                declaratie_nummer=declaratie_nummer,
            )
        )

    def claim_line(self, aanbieder: str, gemeente: str, referentie_nummer: str) -> ClaimLine | None:
        """See :meth:`History.claim_line`."""
        lines = self._lines(
            aanbieder=aanbieder,
            gemeente=gemeente,
            referentie=referentie_nummer,
        )
        return lines[0] if lines else None

    def credits_of(
        self, aanbieder: str, gemeente: str, referentie_nummer: str
    ) -> Sequence[ClaimLine]:
        """See :meth:`History.credits_of`."""
        return [
            line
            for line in self._lines(
                aanbieder=aanbieder,
                gemeente=gemeente,
                vorig_referentie=referentie_nummer,
            )
            if line.credit
        ]

    def allocation_claims(self, gemeente: str, toewijzing_nummer: int) -> Sequence[ClaimLine]:
        """See :meth:`History.allocation_claims`."""
        return self._lines(gemeente=gemeente, toewijzing_nummer=toewijzing_nummer)

    def submitted_declaration(
        self, aanbieder: str, gemeente: str, identificatie: str
    ) -> SubmittedDeclaration | None:
        """See :meth:`History.submitted_declaration`."""
        rows = self._rows(
            SUBMITTED,
            aanbieder=aanbieder,
            gemeente=gemeente,
            referentie=identificatie,
        )
        if not rows:
            return None
        body = json.loads(rows[-1][2])
        lines = tuple(
            SubmittedLine(
                _decode(ClaimLine, item["line"], self._bsn(item["client_key"])), item["tarief"]
            )
            for item in body.pop("lines")
        )
        hints = _hints(SubmittedDeclaration)
        values = {name: _decode_value(hints[name], value, "") for name, value in body.items()}
        return SubmittedDeclaration(**values, lines=lines)


HistoryFactory = Callable[[Collection[str], Collection[str], MessageDocument | None], SqlHistory]
"""Builds the history for one message: (its plain BSNs, message ids to leave out, the message
read, whose questions are then read at once)."""


def history_factory(store: EngineHolder) -> HistoryFactory:
    """A factory of :class:`SqlHistory` over ``store``, for the service."""

    def build(
        known_bsns: Collection[str],
        exclude_messages: Collection[str],
        document: MessageDocument | None = None,
    ) -> SqlHistory:
        questions = questions_of(document) if document is not None else None
        return SqlHistory(store, known_bsns, exclude_messages, questions)

    return build
