"""The dossier register in the SQL store: what messages established, for the B rules.

Intake writes the entries of every message that passes (see
:func:`gateway.core.pipeline.register_update`) in the same transaction as the message itself;
:class:`SqlHistory` answers the :class:`~gateway.core.dossier.History` protocol from them.

Verdicts (OP286, OP080): entries of a message the gateway answered for are ``accepted`` (or,
of a JW323, only its accepted lines are written); entries of a message its recipient answers
are ``pending`` and count for the rules until the recipient's retour settles them, whichever
of the two arrives first. ``rejected`` entries are invisible to every query.

Privacy: the register holds no BSN. A client is its key (made by the store's
:class:`~gateway.core.privacy.Pseudonymizer`) in a column, and the JSON body carries every
field of the record except the BSN. A :class:`SqlHistory` is made per message with the plain
BSNs of that message: records of those clients come back with their BSN, records of other
clients with an opaque ``key:<hash>``, so the rules' equality tests give the same answers as
with plain BSNs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Protocol, TypeVar

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
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import BindParameter

from gateway.core.correlate import Side
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
    Settlement,
    SubmittedDeclaration,
    SubmittedLine,
    Verdict,
    fold_deliveries,
)
from gateway.core.privacy import Pseudonymizer
from gateway.store.base import ClaimedProduct
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import insert_rows, planned_per_call
from gateway.store.register_codec import decode_record, decode_value, encode_record, type_hints_of
from gateway.store.settlement import settled_periods
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


def entry_rows(
    message_id: str, update_: RegisterUpdate, pseudonyms: Pseudonymizer
) -> list[RegisterRow]:
    """The register rows of one message (values in :data:`REGISTER_COLUMNS` order): its
    entries, and a received retour's verdict; clients keyed by ``pseudonyms``."""
    verdict = update_.verdict.value
    rows = [_entry_row(message_id, entry, verdict, pseudonyms) for entry in update_.entries]
    if update_.submitted is not None:
        rows.append(_submitted_row(message_id, update_.submitted, pseudonyms))
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


def _submitted_row(
    message_id: str, submitted: SubmittedDeclaration, pseudonyms: Pseudonymizer
) -> RegisterRow:
    body = encode_record(submitted)
    body["lines"] = [
        {
            "line": encode_record(s.line),
            "client_key": _key_of(pseudonyms, s.line.bsn),
            "tarief": s.tarief,
        }
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


# Per record type, the key columns its record fills (the rest stay NULL); a client as its
# ``bsn``, which :func:`_entry_row` turns into its key.


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
    return {"gemeente": gemeente, "aanbieder": aanbieder, "bsn": bsn}


_KEYS_OF: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Identification: _identification_keys,
    Allocation: _allocation_keys,
    DeliveryChange: _delivery_keys,
    Request: _request_keys,
    Answer: _answer_keys,
    Declaration: _declaration_keys,
    ClaimLine: _claim_line_keys,
}


def _entry_row(
    message_id: str, entry: Entry, verdict: str, pseudonyms: Pseudonymizer
) -> RegisterRow:
    kind = type(entry)
    keys = _KEYS_OF[kind](entry)
    if "bsn" in keys:
        keys["client_key"] = _key_of(pseudonyms, keys.pop("bsn"))
    return _register_row(message_id, _KINDS[kind], verdict, encode_record(entry), **keys)


def _key_of(pseudonyms: Pseudonymizer, bsn: str) -> str:
    """The stored key of a BSN, or of an opaque ``key:<hash>`` handed out by a history."""
    if bsn.startswith(OTHER_CLIENT_PREFIX):
        return bsn[len(OTHER_CLIENT_PREFIX) :]
    return pseudonyms.client_key(bsn)


def _identification_key(message_type: str, identificatie: str) -> str:
    return f"{message_type}:{identificatie}"


# --- writing ----------------------------------------------------------------------------------


def write_entries(
    conn: Connection,
    updates: Sequence[tuple[str, RegisterUpdate]],
    replaces: str | None = None,
    *,
    pseudonyms: Pseudonymizer,
    fresh: bool = False,
    correlated: Collection[str] | None = None,
) -> None:
    """Insert the register rows of stored messages and settle what their retours decide.

    Call it after the messages' correlations are recorded and linked. ``replaces`` is the
    original of an operator replay: the replay adds nothing while the original's entries
    still count (they stand for both). ``fresh`` says the messages were created in this
    transaction, so none can have rows yet; ``correlated`` names those of them that take part
    in an exchange (only they can be settled), when the caller knows. ``pseudonyms`` makes
    the client keys.
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
    rows = [
        row for mid, upd in updates if mid not in have for row in entry_rows(mid, upd, pseudonyms)
    ]
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
            write_entries(
                conn, [(message_id, update)], replaces=replay_of, pseudonyms=self._db.pseudonyms
            )

    def claimed_products(
        self,
        first: dt.date | None = None,
        last: dt.date | None = None,
        aanbieder: str | None = None,
    ) -> list[ClaimedProduct]:
        """The products of submitted JW323 lines whose ProductPeriode begins in
        ``first..last``, counted per gemeente, aanbieder, product and begin date.

        Read from the ``submitted`` rows (every line as sent, whatever its verdict); a claim
        stored twice (an operator replay) counts once, as its latest row.
        """
        query = select(
            REGISTER.c.id, REGISTER.c.gemeente, REGISTER.c.aanbieder, REGISTER.c.referentie,
            REGISTER.c.body,
        ).where(REGISTER.c.kind == SUBMITTED)  # fmt: skip
        if aanbieder is not None:
            query = query.where(REGISTER.c.aanbieder == aanbieder)
        with driver_errors("reading submitted claims"), self._db.read() as conn:
            latest = {
                (row.gemeente, row.aanbieder, row.referentie): row.body
                for row in conn.execute(query.order_by(REGISTER.c.id))
            }
        counts: dict[tuple[str, str, str, str, str, dt.date], int] = defaultdict(int)
        for body in latest.values():
            for submitted in json.loads(body).get("lines", ()):
                line = submitted["line"]
                begin = dt.date.fromisoformat(line["begindatum"])
                if (first is not None and begin < first) or (last is not None and begin > last):
                    continue
                key = (
                    line["gemeente"], line["aanbieder"], line["categorie"], line["code"],
                    line["eenheid"], begin,
                )  # fmt: skip
                counts[key] += 1
        return [ClaimedProduct(*key, lines) for key, lines in sorted(counts.items())]


# --- reading ----------------------------------------------------------------------------------


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
    Answers are those :class:`~gateway.core.dossier.InMemoryHistory` gives for the same
    accepted messages folded in arrival order.
    """

    def __init__(
        self,
        store: EngineHolder,
        known_bsns: Iterable[str] = (),
        exclude_messages: Iterable[str] = (),
    ) -> None:
        self._engine = store.engine
        self._pseudonyms = store.pseudonyms
        self._bsn_by_key = {self._pseudonyms.client_key(bsn): bsn for bsn in known_bsns}
        self._excluded = sorted(set(exclude_messages))
        # The rules ask the same questions several times (per product, per rule); one history
        # serves one message's check, during which its clients' locks are held, so an answer
        # read once stands for the rest of the check.
        self._read: dict[tuple[str, Equals], list[Row[Any, Any, Any]]] = {}
        self._decoded: dict[tuple[str, Equals], list[Any]] = {}
        self._settled: dict[tuple[str, int], list[Settlement]] = {}

    # -- plumbing --

    def _rows(self, kind: type[Any] | str, **equals: object) -> list[Row[Any, Any, Any]]:
        kind_name = kind if isinstance(kind, str) else _KINDS[kind]
        key = (kind_name, tuple(sorted(equals.items())))
        found = self._read.get(key)
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
        return current

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


HistoryFactory = Callable[[Collection[str], Collection[str]], SqlHistory]
"""Builds the history for one message: (its plain BSNs, message ids to leave out)."""


def history_factory(store: EngineHolder) -> HistoryFactory:
    """A factory of :class:`SqlHistory` over ``store``, for the service."""

    def build(known_bsns: Collection[str], exclude_messages: Collection[str]) -> SqlHistory:
        return SqlHistory(store, known_bsns, exclude_messages)

    return build
