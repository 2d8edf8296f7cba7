"""MessageLedger: the store's ledger as one message's translation reads it."""

from __future__ import annotations

from collections import Counter

from gateway.core.ledger import InMemoryLedger, LedgerEntry, LedgerKey
from gateway.core.mapping_tables import Product
from gateway.service.preparation import MessageLedger

GEMEENTE = "0384"


class CountingLedger(InMemoryLedger):
    """An in-memory ledger that counts the questions it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: Counter[str] = Counter()

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        self.asked[f"get {key}"] += 1
        return super().get(key)

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        self.asked[f"requests {gemeente} {referentie}"] += 1
        return super().requests(gemeente, referentie)


def _pair(key: LedgerKey, code: str) -> LedgerEntry:
    return LedgerEntry(key, Product("45", code), Product("45", "45A03"), "new", "old")


def test_a_repeated_question_is_answered_from_memory() -> None:
    store = CountingLedger()
    known, unknown = LedgerKey.allocation(GEMEENTE, "1"), LedgerKey.allocation(GEMEENTE, "2")
    request = LedgerKey.request(GEMEENTE, "REF-1", 1)
    store.record(_pair(known, "45N03"))
    store.record(_pair(request, "45N04"))
    ledger = MessageLedger(store)

    answers = [ledger.get(known) for _ in range(3)] + [ledger.get(unknown) for _ in range(3)]
    requested = [ledger.requests(GEMEENTE, "REF-1") for _ in range(3)]

    assert answers == [store.get(known)] * 3 + [None] * 3
    assert requested == [(store.get(request),)] * 3
    store.asked.clear()
    ledger.get(known), ledger.get(unknown), ledger.requests(GEMEENTE, "REF-1")
    assert store.asked == Counter()


def test_a_pair_recorded_through_it_is_read_again() -> None:
    store = CountingLedger()
    key = LedgerKey.allocation(GEMEENTE, "1")
    ledger = MessageLedger(store)
    assert ledger.get(key) is None
    assert ledger.requests(GEMEENTE, "REF-1") == ()

    pair = _pair(key, "45N03")
    ledger.record(pair)

    assert store.get(key) == pair
    assert ledger.get(key) == pair
    assert store.asked[f"get {key}"] == 3  # the first read, the test's own, the re-read
