"""Envelopes of the national chain (StUF-GGk), by ``referentienummer``: what came in or went
out, which message it was, and the answer given or received (Bv03/Fo03 bytes).

Inbound, the row is written after intake stored the payload and before the answer leaves, so a
repeated envelope (the GGk retries when it saw no answer) gets the same answer and its payload
is stored once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.core.envelope import Stuurgegevens
from gateway.store.database import Repository, driver_errors
from gateway.store.tables import CHAIN_ENVELOPES


class ChainDirection(StrEnum):
    """Whether the gateway received the envelope or sent it."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class ChainEnvelope:
    """One envelope as recorded: ``answer`` holds the SOAP answer given or got (None while there
    is none), ``answer_code`` the Fo03's error code when that answer was a fault."""

    direction: ChainDirection
    referentienummer: str
    berichtcode: str
    zender: str
    ontvanger: str
    functie: str | None
    cross_refnummer: str | None
    payload_sha256: str
    message_id: str | None
    answer: bytes | None
    answer_code: str | None
    at: dt.datetime


def envelope_row(
    direction: ChainDirection,
    sg: Stuurgegevens,
    *,
    payload_sha256: str,
    message_id: str | None,
    answer: bytes | None,
    answer_code: str | None,
    at: dt.datetime,
) -> ChainEnvelope:
    """The row that records an envelope with these stuurgegevens."""
    return ChainEnvelope(
        direction=direction,
        referentienummer=sg.referentienummer,
        berichtcode=sg.berichtcode.value,
        zender=sg.zender.organisatie or "",
        ontvanger=sg.ontvanger.organisatie or "",
        functie=sg.functie,
        cross_refnummer=sg.cross_refnummer,
        payload_sha256=payload_sha256,
        message_id=message_id,
        answer=answer,
        answer_code=answer_code,
        at=at,
    )


_COLUMNS = (
    CHAIN_ENVELOPES.c.direction,
    CHAIN_ENVELOPES.c.referentienummer,
    CHAIN_ENVELOPES.c.berichtcode,
    CHAIN_ENVELOPES.c.zender,
    CHAIN_ENVELOPES.c.ontvanger,
    CHAIN_ENVELOPES.c.functie,
    CHAIN_ENVELOPES.c.cross_refnummer,
    CHAIN_ENVELOPES.c.payload_sha256,
    CHAIN_ENVELOPES.c.message_id,
    CHAIN_ENVELOPES.c.answer,
    CHAIN_ENVELOPES.c.answer_code,
    CHAIN_ENVELOPES.c.at,
)


class ChainEnvelopes(Repository):
    """The chain envelopes' part of the store."""

    def chain_envelope(
        self, direction: ChainDirection, referentienummer: str
    ) -> ChainEnvelope | None:
        """The envelope recorded under this reference, or None."""
        with driver_errors("reading a chain envelope"), self._db.read() as conn:
            row = conn.execute(
                select(*_COLUMNS).where(
                    CHAIN_ENVELOPES.c.direction == direction.value,
                    CHAIN_ENVELOPES.c.referentienummer == referentienummer,
                )
            ).first()
        return None if row is None else _envelope(row._asdict())

    def chain_envelope_of_message(
        self, message_id: str, direction: ChainDirection
    ) -> ChainEnvelope | None:
        """The envelope that carried this stored message in the given direction, or None."""
        with driver_errors("reading a chain envelope"), self._db.read() as conn:
            row = conn.execute(
                select(*_COLUMNS)
                .where(
                    CHAIN_ENVELOPES.c.message_id == message_id,
                    CHAIN_ENVELOPES.c.direction == direction.value,
                )
                .order_by(CHAIN_ENVELOPES.c.at)
            ).first()
        return None if row is None else _envelope(row._asdict())

    def record_chain_answer(
        self, direction: ChainDirection, referentienummer: str, answer: bytes, code: str | None
    ) -> None:
        """Keep the latest answer to a recorded envelope (a Fo03, later a Bv03 to its repeat)."""
        with driver_errors("recording a chain answer"), self._db.write() as conn:
            conn.execute(
                update(CHAIN_ENVELOPES)
                .where(
                    CHAIN_ENVELOPES.c.direction == direction.value,
                    CHAIN_ENVELOPES.c.referentienummer == referentienummer,
                )
                .values(answer=answer, answer_code=code)
            )

    def record_chain_envelope(self, envelope: ChainEnvelope) -> ChainEnvelope:
        """Record an envelope unless one with its direction and reference is recorded already;
        return the one recorded (the earlier one, when two race)."""
        values = {column.name: getattr(envelope, column.name) for column in _COLUMNS}
        values["direction"] = envelope.direction.value
        insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        with driver_errors("recording a chain envelope"), self._db.write() as conn:
            conn.execute(insert(CHAIN_ENVELOPES).values(**values).on_conflict_do_nothing())
        recorded = self.chain_envelope(envelope.direction, envelope.referentienummer)
        assert recorded is not None  # just written, or written before
        return recorded


def _envelope(values: dict[str, object]) -> ChainEnvelope:
    values["direction"] = ChainDirection(str(values["direction"]))
    answer = values["answer"]
    values["answer"] = None if answer is None else bytes(answer)  # type: ignore[call-overload]
    return ChainEnvelope(**values)  # type: ignore[arg-type]
