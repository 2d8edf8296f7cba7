"""Intake asks the store's translation ledger each question once per message.

Translating one product reads its ledger pair up to three times (the lookup, whether the pair
is new, and the basis of the rewrite); each read from the store is a query, in the worker
thread that holds the message's client locks. The service answers repeats from memory for
the rest of that message's check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from gateway.core.ledger import LedgerKey
from gateway.core.model import State
from tests.integration.test_translation_daemon import (  # the mixed region and its builders
    BEGIN,
    DIEMEN,
    _allocation,
    _claim,
    _mixed,
    _stored,
    make_mixed,
)
from tests.unit.translation.builders import follow_up

__all__ = ["make_mixed"]  # the fixture, imported for the tests below


def _count_ledger_reads(store: Any, monkeypatch: pytest.MonkeyPatch) -> Counter[LedgerKey]:
    asked: Counter[LedgerKey] = Counter()
    read = store.ledger_entry

    def counted(key: LedgerKey) -> object:
        asked[key] += 1
        return read(key)

    monkeypatch.setattr(store, "ledger_entry", counted)
    return asked


async def test_each_ledger_pair_is_read_once_per_message(
    make_mixed: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = await _mixed(make_mixed)
    state, *_ = await _stored(
        harness, await harness.submit("diemen", _allocation("10072", "45", "45N03", 1))
    )
    assert state is State.QUEUED
    key = LedgerKey.allocation(DIEMEN, "10072")
    assert harness.store.ledger_entry(key) is not None

    asked = _count_ledger_reads(harness.store, monkeypatch)
    start = follow_up("JW305", DIEMEN, "10072", "45", "45A03", BEGIN)
    state, _, _, delivered = await _stored(harness, await harness.submit("provider-b", start))
    assert state is State.QUEUED
    assert b"45N03" in delivered  # translated with the pair the JW301 recorded
    assert asked[key] == 1, asked

    asked.clear()
    state, _, _, delivered = await _stored(
        harness, await harness.submit("provider-b", _claim("10072", "45", "45A03"))
    )
    assert state is State.QUEUED
    assert b"45N03" in delivered
    assert asked[key] == 1, asked
