"""``Store.received_bytes``: what a party's stored messages add up to in a quota window."""

from __future__ import annotations

import dataclasses
import datetime as dt

from gateway.core.model import Direction
from gateway.store.sql import SqlStore
from tests.contract.test_store_contract import T0, new_message


def test_received_bytes_sums_the_party_own_inbound_messages_since_the_start(
    store: SqlStore,
) -> None:
    """Only the sender's inbound, non-replay messages at or after ``since`` count; a
    re-submission stored nothing new and adds nothing."""
    since = T0 + dt.timedelta(hours=1)
    counted = [
        new_message(1, raw=b"a" * 100, at=since),
        new_message(2, raw=b"b" * 250, at=since + dt.timedelta(minutes=5)),
    ]
    first = store.save_received(counted[0]).message
    store.save_received(counted[1])
    store.save_received(counted[0])  # the same message again: not stored twice
    store.save_received(new_message(3, raw=b"c" * 1000, at=since - dt.timedelta(seconds=1)))
    store.save_received(new_message(4, raw=b"d" * 2000, at=since, sender="aanbieder-b"))
    generated = new_message(5, raw=b"e" * 4000, at=since)
    store.save_received(dataclasses.replace(generated, direction=Direction.GENERATED.value))
    replay = new_message(6, raw=b"f" * 8000, at=since)
    store.save_received(dataclasses.replace(replay, replay_of=first.id))

    assert store.received_bytes("aanbieder-a", since) == 350
    assert store.received_bytes("aanbieder-a", T0) == 1350
    assert store.received_bytes("aanbieder-b", since) == 2000
    assert store.received_bytes("nobody", T0) == 0
