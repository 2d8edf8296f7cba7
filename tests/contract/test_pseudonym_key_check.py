"""The store keeps the fingerprint of the pseudonym key its client keys are made with and
refuses another key, on every backend: a second node or a restored node with a key of its own
would otherwise see no dossier history, find no client by BSN and take client locks the other
nodes never meet."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from gateway.core.errors import PseudonymKeyMismatch
from gateway.core.model import Message
from gateway.core.privacy import Pseudonymizer
from gateway.store import migrations
from gateway.store.base import SearchQuery
from gateway.store.sql import SqlStore
from gateway.store.tables import KEY_FINGERPRINTS, SCHEMA_VERSION
from tests.contract.test_store_contract import queued
from tests.pseudonyms import TEST_PSEUDONYMS

OTHER_SECRET = b"another node's own pseudonym key"
OTHER_SOURCE = "the key file /srv/node2/data/pseudonym.key ([privacy] pseudonym_key_file)"
OTHER = Pseudonymizer(OTHER_SECRET, OTHER_SOURCE)
BSN = "999900006"


def _recorded(store: SqlStore) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(KEY_FINGERPRINTS.c.purpose, KEY_FINGERPRINTS.c.fingerprint))
        return [(purpose, fingerprint) for purpose, fingerprint in rows]


def _store_message(store: SqlStore) -> Message:
    return queued(store, 1, raw=f"<x:Bericht><x:Bsn>{BSN}</x:Bsn></x:Bericht>".encode())


def _found_by_bsn(store: SqlStore) -> list[str]:
    page = store.search(SearchQuery(client_key=store.pseudonyms.client_key(BSN)))
    return [message.id for message in page.messages]


def test_a_new_store_records_its_keys_fingerprint_not_the_key(store: SqlStore) -> None:
    recorded = _recorded(store)
    assert recorded == [("pseudonym", TEST_PSEUDONYMS.fingerprint())]
    fingerprint = recorded[0][1]
    assert len(fingerprint) == 64 and fingerprint != OTHER.fingerprint()
    secret = b"test-only pseudonym key, public!"
    assert secret.hex() not in fingerprint and secret.decode() not in fingerprint


def test_the_same_key_opens_the_store_again(
    store: SqlStore, make_store: Callable[[], SqlStore]
) -> None:
    stored = _store_message(store)
    again = make_store()
    again.migrate()
    assert _found_by_bsn(again) == [stored.id]
    assert _recorded(again) == [("pseudonym", TEST_PSEUDONYMS.fingerprint())]


def test_another_key_is_refused_naming_its_source_and_nothing_changes(
    store: SqlStore, store_url: str
) -> None:
    _store_message(store)
    other = SqlStore(store_url, pseudonyms=OTHER)
    try:
        with pytest.raises(PseudonymKeyMismatch) as refused:
            other.migrate()
    finally:
        other.close()
    message = str(refused.value)
    assert OTHER_SOURCE in message
    assert OTHER.fingerprint()[:12] in message and TEST_PSEUDONYMS.fingerprint()[:12] in message
    assert OTHER_SECRET.hex() not in message and OTHER_SECRET.decode() not in message
    assert _recorded(store) == [("pseudonym", TEST_PSEUDONYMS.fingerprint())]


def test_a_store_from_before_the_fingerprint_takes_the_upgrading_key(
    store: SqlStore, make_store: Callable[[], SqlStore], store_url: str
) -> None:
    stored = _store_message(store)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE key_fingerprints"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 14"))
    assert migrations.MIGRATIONS[-1].version == 14  # the step under test is the newest

    upgraded = make_store()
    upgraded.migrate()
    with upgraded.engine.connect() as conn:
        versions = set(conn.execute(select(SCHEMA_VERSION.c.version)).scalars())
    assert versions == {m.version for m in migrations.MIGRATIONS}
    assert _recorded(upgraded) == [("pseudonym", TEST_PSEUDONYMS.fingerprint())]
    assert _found_by_bsn(upgraded) == [stored.id]

    other = SqlStore(store_url, pseudonyms=OTHER)
    try:
        with pytest.raises(PseudonymKeyMismatch):
            other.migrate()
    finally:
        other.close()


def test_two_first_starts_with_different_keys_let_one_key_in(store_url: str) -> None:
    """Two nodes starting at once on an empty store: the first records its key, the other is
    refused (the migration runs under the store's write lock or advisory lock)."""
    stores = [SqlStore(store_url, pseudonyms=p) for p in (TEST_PSEUDONYMS, OTHER)]
    start = threading.Barrier(len(stores))
    outcomes: dict[int, str] = {}

    def first_start(number: int) -> None:
        start.wait()
        try:
            stores[number].migrate()
            outcomes[number] = "started"
        except PseudonymKeyMismatch:
            outcomes[number] = "refused"

    threads = [threading.Thread(target=first_start, args=(n,)) for n in range(len(stores))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes.values()) == ["refused", "started"], outcomes
        winner = stores[next(n for n, outcome in outcomes.items() if outcome == "started")]
        assert _recorded(winner) == [("pseudonym", winner.pseudonyms.fingerprint())]
    finally:
        for made in stores:
            made.close()
