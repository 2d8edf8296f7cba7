"""In-message rules of JW305 (start) and JW307 (stop): CS058 and TR018."""

from __future__ import annotations

import pytest

from tests.unit.rules.mutate import assert_only, load_example

START = "Client/StartProducten/StartProduct[1]"
STOP = "Client/StopProducten/StopProduct[1]"


@pytest.mark.parametrize(("message_type", "product"), [("JW305", START), ("JW307", STOP)])
@pytest.mark.parametrize("status", ["2", "9"])
def test_cs058_status_other_than_1_or_3(message_type: str, product: str, status: str) -> None:
    """CS058: StatusAanlevering 2 (forbidden in iJw) or 9 is rejected in start and stop."""
    xml = load_example(message_type).set(f"{product}/StatusAanlevering", status).to_bytes()
    assert_only(xml, "CS058")


@pytest.mark.parametrize(("message_type", "product"), [("JW305", START), ("JW307", STOP)])
def test_cs058_delete_status_is_fine(message_type: str, product: str) -> None:
    """CS058 positive: StatusAanlevering 3 (delete) is allowed."""
    assert_only(load_example(message_type).set(f"{product}/StatusAanlevering", "3").to_bytes())


def test_tr018_stop_before_start() -> None:
    """TR018: a stop whose Einddatum lies before its Begindatum is rejected."""
    example = load_example("JW307")
    assert example.text(f"{STOP}/Begindatum") == "2023-04-03"
    assert_only(example.set(f"{STOP}/Einddatum", "2023-04-02").to_bytes(), "TR018")


def test_tr018_stop_on_the_start_day_is_fine() -> None:
    """TR018 boundary: Einddatum equal to Begindatum is allowed."""
    assert_only(load_example("JW307").set(f"{STOP}/Einddatum", "2023-04-03").to_bytes())
