"""`gateway mappings decide --target`: one target, or one SOURCE=TARGET per waiting product."""

from __future__ import annotations

import pytest

from gateway.core.mapping_tables import Product
from gateway.core.translation import Undecided
from gateway.store.sql import SqlStore
from gateway.translator import (
    DecisionError,
    KeyedTarget,
    StoreLedger,
    _decidable,
    parse_targets,
)

PATH = "/Bericht/Client/ToegewezenProducten/ToegewezenProduct"
R14 = Product("45", "45R14")
R15 = Product("45", "45R15")
IJ09 = Product("45", "IJ09I")
IJ10 = Product("45", "IJ10I")


def _waiting(product: Product, number: str) -> Undecided:
    return Undecided(PATH, product, "one-to-many mapping", key=f"0150/toewijzing/{number}")


TWO_WAITING = (_waiting(R14, "1"), _waiting(R15, "2"))
KEY1, KEY2 = "0150/toewijzing/1", "0150/toewijzing/2"


def test_one_target_in_the_short_form() -> None:
    assert parse_targets("45/IJ09I") == (IJ09, {})


def test_source_target_pairs() -> None:
    assert parse_targets(["45/45R14=45/IJ09I", " 45/45R15 = 45/IJ10I"]) == (
        None,
        {R14: IJ09, R15: IJ10},
    )


@pytest.mark.parametrize(
    ("targets", "complaint"),
    [
        (["45/IJ09I", "45/IJ10I"], "SOURCE=TARGET"),
        (["45/45R14=45/IJ09I", "45/45R14=45/IJ10I"], "two targets"),
        (["45/45R14=IJ09I"], "CATEGORIE/CODE"),
        ([], "name a target"),
    ],
)
def test_unclear_targets_are_refused(targets: list[str], complaint: str) -> None:
    with pytest.raises(DecisionError, match=complaint):
        parse_targets(targets)


def test_each_waiting_product_gets_its_own_target(store: SqlStore) -> None:
    chosen = _decidable(TWO_WAITING, StoreLedger(store), None, {R14: IJ09, R15: IJ10})
    assert chosen == {KEY1: IJ09, KEY2: IJ10}


def test_the_short_form_applies_only_when_one_product_waits(store: SqlStore) -> None:
    assert _decidable(TWO_WAITING[:1], StoreLedger(store), IJ10, {}) == {KEY1: IJ10}
    with pytest.raises(DecisionError, match="several products"):
        _decidable(TWO_WAITING, StoreLedger(store), IJ09, {})


def test_a_product_left_without_target_or_not_waiting_is_refused(store: SqlStore) -> None:
    with pytest.raises(DecisionError, match="no target for 45/45R15"):
        _decidable(TWO_WAITING, StoreLedger(store), None, {R14: IJ09})
    with pytest.raises(DecisionError, match="not waiting"):
        _decidable(TWO_WAITING, StoreLedger(store), None, {R14: IJ09, R15: IJ10, IJ09: IJ10})


def test_a_gemeente_decides_per_allocation_and_must_cover_each(store: SqlStore) -> None:
    """Two allocations of one product may get different targets when decided per key."""
    same_product = (_waiting(R14, "1"), _waiting(R14, "2"))
    by_key = {
        KEY1: KeyedTarget(IJ09, "toegang", "GP-1"),
        KEY2: KeyedTarget(IJ10, "toegang", "GP-2"),
    }
    assert _decidable(same_product, StoreLedger(store), None, {}, by_key) == {
        KEY1: IJ09,
        KEY2: IJ10,
    }
    with pytest.raises(DecisionError, match=f"no target for {KEY2}"):
        _decidable(same_product, StoreLedger(store), None, {}, {KEY1: by_key[KEY1]})
