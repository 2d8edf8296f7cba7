"""A release per party: a provider on iJw 2.3 and gemeenten on 3.2 through one gateway.

A message is accepted only in the release its sender speaks on its Dagtekening; it reaches its
recipient in the recipient's release (converted field by field, valid against the reference
schema) or waits, held with the reason, and counts in ``gateway report held``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from lxml import etree

from gateway.core.document import text
from gateway.core.model import Direction, State
from gateway.schemas import load_schema_set
from gateway.service.errors import OperatorRefusedError
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example
from tests.integration.test_privacy_outputs import gateway_in_process
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23, OUR_XSD_DIR_23

REFERENCE = load_schema_set([OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23])
# provider-b (65656055) still speaks 2.3; the gemeenten speak 3.2; provider-a names no release.
RELEASES = {
    "provider-b": {"release": "2.3"},
    "amsterdam": {"release": "3.2"},
    "diemen": {"release": "3.2"},
}


def example_2_3(name: str) -> bytes:
    return (EXAMPLES_DIR_23 / f"{name}.xml").read_bytes()


def without_beschikkingnummer(raw: bytes) -> bytes:
    """A 2.3 start or stop message that names no BeschikkingNummer (3.2 has no field for it)."""
    element = rb"\s*<(jw30\d):BeschikkingNummer>[^<]*</\1:BeschikkingNummer>"
    changed, count = re.subn(element, b"", raw)
    assert count > 0
    return changed


async def two_releases(make_harness: Callable[..., object]) -> Harness:
    built = await make_harness(  # type: ignore[misc]
        overrides=RELEASES, schemas=(OFFICIAL_XSD_DIR, OUR_XSD_DIR_23)
    )
    assert isinstance(built, Harness)
    return built


def reference_valid(release: str, message_type: str, raw: bytes) -> etree._Element:
    schema = REFERENCE.get(release, message_type)
    assert schema is not None
    root = etree.fromstring(raw)
    schema.xsd.assertValid(etree.ElementTree(root))
    return root


async def test_a_2_3_start_reaches_a_3_2_gemeente_converted_and_its_retour_comes_back_in_2_3(
    make_harness: Callable[..., object],
) -> None:
    harness = await two_releases(make_harness)
    sent = without_beschikkingnummer(example_2_3("JW305"))
    data = await harness.submit("provider-b", sent)
    assert data["state"] == "queued", data

    # Amsterdam fetches a 3.2 JW305 with the same content.
    response = await harness.get("amsterdam", f"/v1/mailbox/{data['id']}")
    assert response.status == 200
    delivered = await response.read()
    root = reference_valid("3.2", "JW305", delivered)
    assert text(root, "Header/BerichtVersie") == "3"
    original = etree.fromstring(sent)
    for path in ("Client/Bsn", "Header/BerichtIdentificatie/Identificatie"):
        assert text(root, path) == text(original, path)
    assert text(root, "Client/StartProducten/StartProduct/Product/Code") == text(
        original, "Client/StartProducten/StartProduct/Product/Code"
    )
    assert harness.store.payload(str(data["id"])) == sent  # the raw bytes stay as sent

    # The BVO answers for Amsterdam in the release the provider speaks.
    [retour] = harness.store.query(MessageQuery(recipient="provider-b"))
    assert retour.direction is Direction.GENERATED and retour.message_type == "JW306"
    raw_retour = harness.store.payload(retour.id)
    assert raw_retour is not None
    reference_valid("2.3", "JW306", raw_retour)


async def test_a_message_in_a_release_its_sender_does_not_speak_is_refused_naming_it(
    make_harness: Callable[..., object],
) -> None:
    harness = await two_releases(make_harness)
    data = await harness.submit("provider-b", example("JW305"))  # 3.2, Dagtekening 2023
    assert data["state"] == "rejected"
    reason = str(data["reason"])
    assert "iJw 3.2" in reason and "speaks iJw 2.3" in reason and "2023-07-25" in reason
    listed = await (await harness.get("amsterdam", "/v1/mailbox")).json()
    assert listed["messages"] == []


async def test_what_conversion_would_lose_is_held_with_its_reason_and_reported(
    make_harness: Callable[..., object],
) -> None:
    harness = await two_releases(make_harness)
    with_beschikking = await harness.submit("provider-b", example_2_3("JW305"))
    # From a provider that names no release (any is accepted) to Diemen, on 3.2.
    declaration = await harness.submit("provider-a", example_2_3("JW303"))
    for data in (with_beschikking, declaration):
        assert data["state"] == "held", data
    [held_start] = harness.store.query(MessageQuery(recipient="amsterdam"))
    assert held_start.state is State.HELD
    assert "BeschikkingNummer" in (held_start.reason or "")
    assert "never converted" in str(declaration["reason"])

    # A party's readiness does not release it: it stays held until an operator acts.
    amsterdam = harness.service.registry.get("amsterdam")
    assert await harness.service.steering.rebalance(amsterdam) == 0
    assert harness.store.get(held_start.id).state is State.HELD  # type: ignore[union-attr]
    # Nor does an operator's retry: sent now, it would go unconverted.
    with pytest.raises(OperatorRefusedError, match="unconverted"):
        await harness.service.steering.retry(held_start.id, "operator:test")

    config = str(harness.folder / "config.toml")
    code, printed = gateway_in_process(
        "report", "held", "--party", "diemen", "--format", "json", "--config", config
    )
    assert code == 0, printed
    listed = json.loads(printed[printed.index("{") :])["messages"]
    assert [(m["id"], m["state"]) for m in listed] == [(declaration["id"], "held")]
    assert listed[0]["reason"].startswith("release:")
