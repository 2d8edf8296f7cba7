"""Chain envelopes in the store, on SQLite and PostgreSQL: recorded once per direction and
reference, the first one kept when two race, read back as written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from gateway.store.chain import ChainDirection, ChainEnvelope
from gateway.store.sql import SqlStore

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
REF = "0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a001"

ENVELOPE = ChainEnvelope(
    direction=ChainDirection.IN,
    referentienummer=REF,
    berichtcode="Di01",
    zender="0384",
    ontvanger="42420001",
    functie="JW301",
    cross_refnummer=None,
    payload_sha256="ab" * 32,
    message_id="01JTESTMESSAGE000000000001",
    answer=b"<Bv03/>",
    answer_code=None,
    at=AT,
)


def test_an_envelope_reads_back_as_recorded(store: SqlStore) -> None:
    assert store.chain_envelope(ChainDirection.IN, REF) is None
    assert store.record_chain_envelope(ENVELOPE) == ENVELOPE
    assert store.chain_envelope(ChainDirection.IN, REF) == ENVELOPE
    assert store.chain_envelope(ChainDirection.OUT, REF) is None


def test_the_first_envelope_under_a_reference_stays(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    store.record_chain_envelope(ENVELOPE)
    twin = dataclasses.replace(ENVELOPE, answer=b"<Fo03/>", answer_code="StUF055")
    assert make_store().record_chain_envelope(twin) == ENVELOPE
    sent = dataclasses.replace(ENVELOPE, direction=ChainDirection.OUT, answer=None)
    assert store.record_chain_envelope(sent) == sent  # the other direction is its own key


def test_the_envelope_of_a_message_is_found_by_direction_the_earliest_first(
    store: SqlStore,
) -> None:
    message = ENVELOPE.message_id
    assert message is not None
    assert store.chain_envelope_of_message(message, ChainDirection.IN) is None
    later = dataclasses.replace(
        ENVELOPE, referentienummer="0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a002",
        at=AT + dt.timedelta(minutes=5),
    )  # fmt: skip
    store.record_chain_envelope(later)
    store.record_chain_envelope(ENVELOPE)
    other = dataclasses.replace(
        ENVELOPE, message_id="01JTESTMESSAGE000000000002",
        referentienummer="0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a003",
    )  # fmt: skip
    store.record_chain_envelope(other)

    assert store.chain_envelope_of_message(message, ChainDirection.IN) == ENVELOPE
    assert store.chain_envelope_of_message(message, ChainDirection.OUT) is None
    assert store.chain_envelope_of_message("01JTESTMESSAGE000000000009", ChainDirection.IN) is None


def test_the_latest_answer_replaces_the_one_recorded(store: SqlStore) -> None:
    sent = dataclasses.replace(ENVELOPE, direction=ChainDirection.OUT, answer=None)
    store.record_chain_envelope(sent)
    store.record_chain_envelope(ENVELOPE)  # the inbound one under the same reference

    store.record_chain_answer(ChainDirection.OUT, REF, b"<Fo03/>", "GW503")
    assert store.chain_envelope(ChainDirection.OUT, REF) == dataclasses.replace(
        sent, answer=b"<Fo03/>", answer_code="GW503"
    )
    store.record_chain_answer(ChainDirection.OUT, REF, b"<Bv03/>", None)
    assert store.chain_envelope(ChainDirection.OUT, REF) == dataclasses.replace(
        sent, answer=b"<Bv03/>", answer_code=None
    )
    assert store.chain_envelope(ChainDirection.IN, REF) == ENVELOPE  # the other direction stays
    # An answer to an envelope never recorded changes nothing and records nothing.
    store.record_chain_answer(ChainDirection.OUT, REF.replace("a001", "a009"), b"<Bv03/>", None)
    assert store.chain_envelope(ChainDirection.OUT, REF.replace("a001", "a009")) is None
