"""The dossier register in the SQL store: what messages established, for the B rules.

Intake writes the entries of every message that passes (see
:func:`gateway.core.pipeline.register_update`) in the same transaction as the message itself;
:class:`~gateway.store.history.SqlHistory` answers the
:class:`~gateway.core.dossier.History` protocol from them.

Verdicts (OP286, OP080): entries of a message the gateway answered for are ``accepted`` (or,
of a JW323, only its accepted lines are written); entries of a message its recipient answers
are ``pending`` and count for the rules until the recipient's retour settles them, whichever
of the two arrives first. ``rejected`` entries are invisible to every query.

Privacy: the register holds no BSN. A client is its key (made by the store's
:class:`~gateway.core.privacy.Pseudonymizer`) in a column, and the JSON body carries every
field of the record except the BSN. A :class:`~gateway.store.history.SqlHistory` is made per
message with the plain BSNs of that message: records of those clients come back with their
BSN, records of other clients with an opaque ``key:<hash>``, so the rules' equality tests give
the same answers as with plain BSNs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

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
from gateway.core.privacy import Pseudonymizer
from gateway.store.base import ClaimedProduct
from gateway.store.database import Repository, driver_errors
from gateway.store.dialect import insert_rows, planned_per_call
from gateway.store.register_codec import encode_record
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
