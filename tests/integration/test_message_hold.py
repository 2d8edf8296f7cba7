"""An operator's hold on one message survives the release of its party."""

from __future__ import annotations

from gateway.core.model import State
from gateway.service.operator import Operator
from tests.integration.conftest import Harness, example


async def test_party_release_leaves_a_single_held_message_held(harness: Harness) -> None:
    """Releasing a party re-queues its held messages, except one an operator held on its own."""
    first = await harness.submit("diemen", example("JW301"))
    operator = Operator(harness.service, "operator:test")
    await operator.hold(str(first["id"]), "waiting for the provider's answer")
    await harness.service.steering.hold_party("provider-a", "operator:test")
    await harness.service.steering.release_party("provider-a", "operator:test")
    await harness.service.steering.rebalance(harness.service.registry.get("provider-a"))

    kept = harness.store.get(str(first["id"]))
    assert kept is not None
    assert kept.state is State.HELD
    released = await operator.release(str(first["id"]), "answer arrived")
    assert released.state is State.QUEUED
