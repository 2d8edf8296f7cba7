"""Reading the dossier register: :class:`SqlHistory`, the :class:`~gateway.core.dossier.History`
of one message's check, and the one statement that reads what the message's rules ask.

See :mod:`gateway.store.register` for what the rows hold and how they are written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, literal, select, union_all
from sqlalchemy.engine import Dialect, Engine, Row
from sqlalchemy.sql.elements import BindParameter

from gateway.core.document import MessageDocument
from gateway.core.dossier import (
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    Delivery,
    DeliveryChange,
    Identification,
    Request,
    Settlement,
    SubmittedDeclaration,
    SubmittedLine,
    Verdict,
    fold_deliveries,
)
from gateway.core.dossier.questions import Questions, questions_of
from gateway.core.privacy import Pseudonymizer
from gateway.store.register import (
    _KINDS,
    OTHER_CLIENT_PREFIX,
    SUBMITTED,
    Equals,
    R,
    _identification_key,
    _key_of,
    _read_statement,
)
from gateway.store.register_codec import decode_record, decode_value, type_hints_of
from gateway.store.settlement import settled_periods
from gateway.store.tables import REGISTER

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


def _lookups(questions: Questions, pseudonyms: Pseudonymizer) -> list[_Lookup]:
    """The questions as lookups: grouped by their fixed columns, values sorted."""
    groups: dict[_Lookup, set[object]] = defaultdict(set)
    for template, value in _asked(questions, pseudonyms):
        groups[template].add(value)
    lookups = [
        dataclasses.replace(template, values=tuple(sorted(values, key=repr)))
        for template, values in groups.items()
    ]
    return sorted(lookups, key=lambda lookup: repr((lookup.shape, lookup.fixed)))


def _asked(questions: Questions, pseudonyms: Pseudonymizer) -> Iterator[tuple[_Lookup, object]]:
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
        key = _key_of(pseudonyms, bsn)
        yield _Lookup(client_kinds, parties, "client_key", chains=client_chains), key
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
    """What a :class:`SqlHistory` reads through: a store's engine, and its client keys."""

    @property
    def engine(self) -> Engine: ...

    @property
    def pseudonyms(self) -> Pseudonymizer: ...


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
        self._pseudonyms = store.pseudonyms
        self._lookups = _lookups(questions, self._pseudonyms) if questions is not None else []
        self._loaded: list[Row[Any, Any, Any]] | None = None
        self._covered: set[tuple[str, Equals]] = set()
        self._bsn_by_key = {self._pseudonyms.client_key(bsn): bsn for bsn in known_bsns}
        self._excluded = sorted(set(exclude_messages))
        # The rules ask the same questions several times (per product, per rule); one history
        # serves one message's check, during which its clients' locks are held, so an answer
        # read once stands for the rest of the check.
        self._read: dict[tuple[str, Equals], list[Sequence[Any]]] = {}
        self._decoded: dict[tuple[str, Equals], list[Any]] = {}
        self._deliveries: dict[tuple[str, str, str], list[Delivery]] = {}
        self._settled: dict[tuple[str, int], list[Settlement]] = {}

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
                decode_record(kind, json.loads(body), self._bsn(client))
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
                client_key=_key_of(self._pseudonyms, bsn),
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
            client_key=_key_of(self._pseudonyms, bsn),
        )
        # Fold message by message, in arrival order, exactly as the in-memory history does.
        by_message: dict[str, list[DeliveryChange]] = {}
        for message_id, key, body in rows:
            change = decode_record(DeliveryChange, json.loads(body), self._bsn(key))
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
            client_key=_key_of(self._pseudonyms, bsn),
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
                decode_record(ClaimLine, item["line"], self._bsn(item["client_key"])),
                item["tarief"],
            )
            for item in body.pop("lines")
        )
        hints = type_hints_of(SubmittedDeclaration)
        values = {name: decode_value(hints[name], value, "") for name, value in body.items()}
        return SubmittedDeclaration(**values, lines=lines)

    def settlements(self, gemeente: str, toewijzing_nummer: int) -> Sequence[Settlement]:
        """See :meth:`History.settlements` (read from the settlements table, not the register)."""
        key = (gemeente, toewijzing_nummer)
        found = self._settled.get(key)
        if found is None:
            with self._engine.connect() as conn:
                found = settled_periods(conn, gemeente, toewijzing_nummer)
            self._settled[key] = found
        return list(found)


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
