"""The operator-search part of the store contract, on every backend (sqlite, postgres)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import text

from gateway.core.lifecycle import advance
from gateway.core.model import Direction, Message, State
from gateway.store.base import AuditQuery, KeyKind, NewMessage, SearchQuery
from gateway.store.migrations import MIGRATIONS
from gateway.store.search import extract_keys
from gateway.store.sql import SqlStore
from gateway.store.tables import MESSAGES, SEARCH_INDEXES
from tests.contract.conftest import undo_identificatie_claims
from tests.pseudonyms import TEST_PSEUDONYMS

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def _raw(n: int, bsn: str, toewijzing: str, declaratie: str | None = None) -> bytes:
    extra = f"<x:DeclaratieNummer>{declaratie}</x:DeclaratieNummer>" if declaratie else ""
    return (
        f"<x:Bericht n='{n}'><x:Bsn>{bsn}</x:Bsn>{extra}"
        f"<x:ToewijzingNummer> {toewijzing} </x:ToewijzingNummer></x:Bericht>"
    ).encode()


def _save(
    store: SqlStore,
    n: int,
    *,
    sender: str = "provider-a",
    recipient: str = "gemeente-a",
    state: State = State.QUEUED,
    raw: bytes | None = None,
    message_type: str = "JW315",
    replay_of: str | None = None,
    bericht_id: str | None = None,
) -> Message:
    body = raw if raw is not None else _raw(n, f"99990{n:04d}", f"{n}")
    at = T0 + dt.timedelta(hours=n)
    msg = store.save_received(
        NewMessage(
            sender=sender,
            raw=body,
            content_hash=hashlib.sha256(body).hexdigest(),
            bericht_id=bericht_id or f"B{n}",
            message_type=message_type,
            received_at=at,
            actor="test",
            replay_of=replay_of,
        )
    ).message
    path = {
        State.RECEIVED: [],
        State.REJECTED: [State.REJECTED],
        State.QUEUED: [State.QUEUED],
        State.HELD: [State.HELD],
        State.DEAD: [State.QUEUED, State.DEAD],
        State.DELIVERED: [State.QUEUED, State.SENDING, State.DELIVERED],
    }[state]
    for to in path:
        changes: dict[str, object] = {}
        if to in (State.QUEUED, State.HELD):
            changes["recipient"] = recipient
        if to is State.SENDING:
            changes["lease_until"] = at + dt.timedelta(minutes=5)
        moved, event = advance(msg, to, f"to {to}", "test", at, **changes)
        store.apply_transition(moved, event, msg.state)
        msg = moved
    return msg


def _ids(store: SqlStore, **filters: object) -> list[str]:
    return [m.id for m in store.search(SearchQuery(newest_first=False, **filters)).messages]  # type: ignore[arg-type]


def test_extract_keys_hashes_bsns_and_reads_numbers() -> None:
    """BSNs become client keys (never the BSN); numbers are read with any prefix."""
    keys = extract_keys(_raw(1, "999900006", "10072", "DN001"), TEST_PSEUDONYMS)
    assert (KeyKind.CLIENT, TEST_PSEUDONYMS.client_key("999900006")) in keys
    assert (KeyKind.TOEWIJZING, "10072") in keys and (KeyKind.DECLARATIE, "DN001") in keys
    assert all("999900006" not in value for _, value in keys)
    assert extract_keys(b"<Bsn>12345</Bsn><Bsn>99990000</Bsn>", TEST_PSEUDONYMS) == []


def test_each_filter_and_combinations(store: SqlStore) -> None:
    """Party means sender or recipient; filters combine with AND; the period bounds arrival."""
    a = _save(store, 1, raw=_raw(1, "999900006", "111", "DN1"))
    b = _save(store, 2, sender="gemeente-a", recipient="provider-a", message_type="JW301")
    c = _save(store, 3, state=State.HELD, recipient="provider-b")
    d = _save(store, 4, state=State.DEAD, raw=_raw(4, "999900006", "444"))
    e = _save(store, 5, state=State.REJECTED, sender="provider-b")
    store.record_findings(e.id, [{"rule": "TR301"}, {"rule": "XSD"}, {"rule": "TR301"}])

    assert _ids(store, party="provider-a") == [a.id, b.id, c.id, d.id]
    assert _ids(store, party="provider-b") == [c.id, e.id]
    assert _ids(store, sender="gemeente-a") == [b.id]
    assert _ids(store, recipient="provider-b") == [c.id]
    assert _ids(store, message_type="JW301") == [b.id]
    assert _ids(store, states=(State.HELD, State.DEAD)) == [c.id, d.id]
    assert _ids(store, bericht_id="B3") == [c.id]
    assert _ids(store, client_key=TEST_PSEUDONYMS.client_key("999900006")) == [a.id, d.id]
    assert _ids(
        store, client_key=TEST_PSEUDONYMS.client_key("999900006"), states=(State.DEAD,)
    ) == [d.id]
    assert _ids(store, toewijzing="111") == [a.id]
    assert _ids(store, declaratie="DN1", client_key=TEST_PSEUDONYMS.client_key("999900006")) == [
        a.id
    ]
    assert _ids(store, rule="TR301") == [e.id]
    assert _ids(store, rule="XSD", party="provider-b") == [e.id]
    window = {"since": T0 + dt.timedelta(hours=2), "until": T0 + dt.timedelta(hours=4)}
    assert _ids(store, **window) == [b.id, c.id]
    assert _ids(store, party="provider-a", **window) == [b.id, c.id]
    assert _ids(store, direction=Direction.GENERATED.value) == []
    assert store.count(SearchQuery(party="provider-a")) == 4
    assert store.count(SearchQuery(client_key=TEST_PSEUDONYMS.client_key("999900006"))) == 2
    assert store.keys_of(e.id)[KeyKind.RULE] == ["TR301", "XSD"]


@pytest.mark.parametrize("newest_first", [True, False])
def test_keyset_pages_cover_everything_once(store: SqlStore, newest_first: bool) -> None:
    """Walking the cursor yields every match once, in order, on plain and party queries."""
    saved = [
        _save(
            store,
            n,
            sender="provider-a" if n % 2 else "gemeente-a",
            recipient="provider-a" if n % 2 == 0 else "gemeente-a",
        )
        for n in range(1, 12)
    ]
    expected = [m.id for m in (reversed(saved) if newest_first else saved)]
    for filters in ({}, {"party": "provider-a"}):
        seen: list[str] = []
        cursor = None
        while True:
            page = store.search(
                SearchQuery(cursor=cursor, newest_first=newest_first, limit=4, **filters)  # type: ignore[arg-type]
            )
            seen += [m.id for m in page.messages]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, filters


def test_replays_are_linked_and_outside_the_idempotency_key(store: SqlStore) -> None:
    """A replay with the same bytes is a new message; related/delivered_copies find the family."""
    raw = _raw(1, "999900006", "1")
    original = _save(store, 1, raw=raw, state=State.DELIVERED)
    replay = _save(store, 2, raw=raw, replay_of=original.id, bericht_id="B1")
    assert replay.id != original.id and replay.content_hash == original.content_hash
    again = store.save_received(
        NewMessage(
            sender="provider-a",
            raw=raw,
            content_hash=original.content_hash,
            bericht_id="B1",
            message_type="JW315",
            received_at=T0,
            actor="test",
        )
    )
    assert not again.created and again.message.id == original.id  # intake stays idempotent
    assert store.replay_of(replay.id) == original.id and store.replay_of(original.id) is None
    assert [(r.relation, r.message.id) for r in store.related(original.id)] == [
        ("replayed as", replay.id)
    ]
    assert [r.relation for r in store.related(replay.id)] == ["replay of"]
    assert [m.id for m in store.delivered_copies(replay)] == [original.id]


def test_purge_only_old_finished_payloads_in_batches(store: SqlStore) -> None:
    """Delivered/rejected before the cutoff lose their bytes; everything else stays."""
    old = [
        _save(store, n, state=s)
        for n, s in (
            (1, State.DELIVERED),
            (2, State.DELIVERED),
            (3, State.DELIVERED),
            (4, State.REJECTED),
        )
    ]
    waiting = [
        _save(store, n, state=s)
        for n, s in ((5, State.QUEUED), (6, State.HELD), (7, State.DEAD), (8, State.RECEIVED))
    ]
    late = _save(store, 30, state=State.DELIVERED)
    cutoff = T0 + dt.timedelta(hours=20)
    cutoffs = {State.DELIVERED: cutoff, State.REJECTED: cutoff}
    assert store.purge(cutoffs, batch_size=2, dry_run=True).payloads == {
        "delivered": 3,
        "rejected": 1,
    }
    assert store.purge(cutoffs, batch_size=2, dry_run=False).payloads == {
        "delivered": 3,
        "rejected": 1,
    }
    assert [store.payload(m.id) for m in old] == [None] * 4
    assert all(store.payload(m.id) is not None for m in [*waiting, late])
    assert all(store.get(m.id) == m for m in old)
    assert store.keys_of(old[0].id)  # still searchable
    with pytest.raises(ValueError, match="delivered or rejected"):
        store.purge({State.DEAD: cutoff}, batch_size=2, dry_run=False)
    assert store.reclaim_space() >= 0


def test_audit_entries_filter_and_page(store: SqlStore) -> None:
    """Audit entries come newest first, filtered by target/actor/action, paged by id."""
    for n in range(5):
        store.record_audit(
            T0 + dt.timedelta(minutes=n), f"operator:{n % 2}", "retry", f"M{n}", f"r{n}"
        )
    entries = store.audit_entries(AuditQuery())
    assert [e.target for e in entries] == ["M4", "M3", "M2", "M1", "M0"]
    assert [e.target for e in store.audit_entries(AuditQuery(actor="operator:1"))] == ["M3", "M1"]
    assert [
        e.target for e in store.audit_entries(AuditQuery(before_id=entries[1].id, limit=2))
    ] == ["M2", "M1"]
    assert store.audit_entries(AuditQuery(target="M2"))[0].reason == "r2"


def test_migration_2_upgrades_a_version_1_database_and_backfills_keys(
    make_store: Callable[[], SqlStore],
) -> None:
    """A database left at version 1 gains the key index, replay links and indexes; keys of
    stored messages are backfilled from their payloads and findings."""
    store = make_store()
    store.migrate()
    msg = _save(store, 1, raw=_raw(1, "999900006", "777", "DN7"))
    store.record_findings(msg.id, [{"rule": "TR301"}])
    # Take the schema back to version 1's shape.
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE message_keys"))
        for index in SEARCH_INDEXES:
            if index.table is MESSAGES:
                conn.execute(text(f"DROP INDEX {index.name}"))
        undo_identificatie_claims(conn)
        conn.execute(text("DROP INDEX ux_messages_idempotency"))
        conn.execute(text("ALTER TABLE messages DROP COLUMN replay_of"))
        conn.execute(
            text(
                "CREATE UNIQUE INDEX ux_messages_idempotency ON messages "
                "(sender, coalesce(bericht_id, ''), content_hash)"
            )
        )
        conn.execute(text("DELETE FROM schema_version WHERE version > 1"))
    upgraded = make_store()
    upgraded.migrate()
    assert upgraded.schema_version() == len(MIGRATIONS)
    assert _ids(upgraded, client_key=TEST_PSEUDONYMS.client_key("999900006")) == [msg.id]
    assert _ids(upgraded, declaratie="DN7", rule="TR301") == [msg.id]
    assert upgraded.replay_of(msg.id) is None
