"""Migration 7 on every backend: legacy 64-bit client keys become keyed HMAC-SHA256 keys,
from the payloads where they still exist and by search over the BSN space where retention
purged them; operators find every message by BSN afterwards and the register answers as
before."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from sqlalchemy import func, select, text, update

from gateway.core.dossier import RegisterUpdate, Request, Verdict
from gateway.core.lifecycle import advance
from gateway.core.model import Message, State
from gateway.store import migrations
from gateway.store.base import IntakeRecord, KeyKind, SearchQuery
from gateway.store.register import SUBMITTED, SqlHistory
from gateway.store.sql import SqlStore
from gateway.store.tables import MESSAGE_KEYS, REGISTER, SCHEMA_VERSION
from tests.pseudonyms import TEST_PSEUDONYMS

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
KEPT, PURGED = "999900006", "999900018"
OUTSIDE = "123456789"  # fails the 11-proof: outside the space the migration searches
GEMEENTE, AANBIEDER = "0384", "65656055"


def _legacy(bsn: str) -> str:
    """A client key as stored before version 7: SHA-256 with a public salt, 16 hex."""
    return hashlib.sha256(f"ijw-gateway:{bsn}".encode()).hexdigest()[:16]


def _message(store: SqlStore, n: int, bsn: str, final: State) -> Message:
    raw = f"<x:Bericht n='{n}'><x:Bsn>{bsn}</x:Bsn></x:Bericht>".encode()
    at = T0 + dt.timedelta(hours=n)
    received = Message(
        id=store.new_message_id(at),
        state=State.RECEIVED,
        sender="provider-a",
        recipient=None,
        message_type="JW315",
        bericht_id=f"B{n}",
        content_hash=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=at,
        updated_at=at,
    )
    queued, event = advance(received, State.QUEUED, "routed", "test", at, recipient="diemen")
    store.write_batch([IntakeRecord(queued, raw, "party:provider-a", (event,))])
    entry = Request("JW315", AANBIEDER, GEMEENTE, bsn, f"REF{n}", at.date())
    store.record_register(queued.id, RegisterUpdate((entry,), Verdict.ACCEPTED))
    if final is State.DELIVERED:
        sending, event = advance(
            queued, State.SENDING, "claimed", "test", at, lease_until=at + dt.timedelta(1)
        )
        store.apply_transition(sending, event, queued.state)
        done, event = advance(sending, State.DELIVERED, "delivered", "test", at)
        store.apply_transition(done, event, sending.state)
        return done
    return queued


def _to_version_6(store: SqlStore, bsns: list[str]) -> None:
    """Write every client key back in its legacy form and forget migration 7."""
    submitted_body = {
        "lines": [{"client_key": _legacy(b), "line": {}, "tarief": 1} for b in bsns],
    }
    with store.engine.begin() as conn:
        for bsn in bsns:
            new, old = TEST_PSEUDONYMS.client_key(bsn), _legacy(bsn)
            conn.execute(
                update(MESSAGE_KEYS)
                .where(MESSAGE_KEYS.c.kind == KeyKind.CLIENT.value, MESSAGE_KEYS.c.value == new)
                .values(value=old)
            )
            conn.execute(
                update(REGISTER).where(REGISTER.c.client_key == new).values(client_key=old)
            )
        any_message = conn.execute(select(REGISTER.c.message_id).limit(1)).scalar_one()
        conn.execute(
            REGISTER.insert().values(
                message_id=any_message,
                kind=SUBMITTED,
                verdict=Verdict.ACCEPTED.value,
                body=json.dumps(submitted_body),
            )
        )
        conn.execute(text("DELETE FROM schema_version WHERE version = 7"))


def test_migration_7_rekeys_legacy_client_keys(make_store: Callable[[], SqlStore]) -> None:
    store = make_store()
    store.migrate()
    kept = _message(store, 1, KEPT, State.QUEUED)
    purged = _message(store, 2, PURGED, State.DELIVERED)
    outside = _message(store, 3, OUTSIDE, State.DELIVERED)
    assert store.purge_payloads(T0 + dt.timedelta(days=1)) == 2
    assert store.payload(purged.id) is None and store.payload(kept.id) is not None
    _to_version_6(store, [KEPT, PURGED, OUTSIDE])

    searched: list[str] = []

    def space() -> list[str]:
        # A stand-in for the 9 x 10^7 BSNs: the purged client's BSN among others.
        searched.append("yes")
        return ["999900031", PURGED, "999900043"]

    upgraded = make_store()
    with upgraded.engine.begin() as conn:
        migrations.migrate(conn, migrations.Upgrade(TEST_PSEUDONYMS, bsn_space=space))
    assert searched == ["yes"]  # the purged key was not in any payload

    with upgraded.engine.connect() as conn:
        assert (
            conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar()
            == migrations.MIGRATIONS[-1].version
        )
        keys = set(conn.execute(select(MESSAGE_KEYS.c.value)).scalars())
        columns = set(conn.execute(select(REGISTER.c.client_key)).scalars()) - {None}
        lines = json.loads(
            conn.execute(select(REGISTER.c.body).where(REGISTER.c.kind == SUBMITTED)).scalar_one()
        )["lines"]
    legacy = {_legacy(b) for b in (KEPT, PURGED, OUTSIDE)}
    assert not legacy & (keys | columns | {line["client_key"] for line in lines})
    assert all(len(k) == 64 for k in columns)

    # Operators find every message by BSN, payload or not.
    for bsn, msg in ((KEPT, kept), (PURGED, purged)):
        query = SearchQuery(client_key=upgraded.pseudonyms.client_key(bsn))
        assert [m.id for m in upgraded.search(query).messages] == [msg.id]
    assert [line["client_key"] for line in lines[:2]] == [
        TEST_PSEUDONYMS.client_key(KEPT),
        TEST_PSEUDONYMS.client_key(PURGED),
    ]
    # The register answers by BSN as before, also for the purged message.
    history = SqlHistory(upgraded, [PURGED])
    assert [r.referentie for r in history.client_requests(AANBIEDER, GEMEENTE, PURGED)] == ["REF2"]
    assert [r.bsn for r in history.client_requests(AANBIEDER, GEMEENTE, PURGED)] == [PURGED]

    # A BSN outside the space keeps a stand-in: keyed, consistent across tables, not its BSN's.
    stand_in = TEST_PSEUDONYMS.client_key(f"legacy:{_legacy(OUTSIDE)}")
    assert stand_in in keys and stand_in in columns and lines[2]["client_key"] == stand_in
    assert upgraded.search(SearchQuery(client_key=stand_in)).messages[0].id == outside.id

    # Run again (a second process starting): nothing is legacy, nothing changes.
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        assert set(conn.execute(select(MESSAGE_KEYS.c.value)).scalars()) == keys
