"""A gateway that carries iJw 3.2 and 2.3 takes 2.3 messages over HTTP and inbox/ and, where the
BVO answers for the gemeente, answers each with its 2.3 retour (a JW304 for a JW303)."""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from gateway.core.document import findall, text
from gateway.core.model import Direction, State
from gateway.schemas import load_schema_set
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23, OUR_XSD_DIR_23

REFERENCE_2_3 = load_schema_set([OFFICIAL_XSD_DIR_23])
# Diemen (0384), the gemeente of the 2.3 JW303 example, is answered by the BVO here.
ANSWERED_DIEMEN = {"diemen": {"answered_by": "bvo"}}


def example_2_3(name: str) -> bytes:
    return (EXAMPLES_DIR_23 / f"{name}.xml").read_bytes()


async def both_releases(make_harness: Callable[..., object]) -> Harness:
    built = await make_harness(  # type: ignore[misc]
        overrides=ANSWERED_DIEMEN, schemas=(OFFICIAL_XSD_DIR, OUR_XSD_DIR_23)
    )
    assert isinstance(built, Harness)
    return built


def the_retour(harness: Harness, recipient: str, answers: str) -> tuple[str, bytes]:
    """The one generated retour to ``recipient`` that answers message ``answers``."""
    [retour] = harness.store.query(MessageQuery(recipient=recipient))
    assert retour.direction is Direction.GENERATED and retour.in_reply_to == answers
    raw = harness.store.payload(retour.id)
    assert raw is not None
    return retour.message_type or "", raw


def valid_2_3(message_type: str, raw: bytes) -> etree._Element:
    """The retour is valid against the 2.3 reference schema of its type."""
    schema = REFERENCE_2_3.get("2.3", message_type)
    assert schema is not None
    tree = etree.ElementTree(etree.fromstring(raw))
    schema.xsd.assertValid(tree)
    return tree.getroot()


async def test_a_2_3_declaration_over_http_is_answered_with_its_jw304(
    make_harness: Callable[..., object],
) -> None:
    harness = await both_releases(make_harness)
    data = await harness.submit("provider-a", example_2_3("JW303"))
    assert data["state"] == "queued"
    [forwarded] = harness.store.query(MessageQuery(recipient="diemen"))
    assert (forwarded.id, forwarded.sender) == (data["id"], "provider-a")
    assert forwarded.message_type == "JW303"

    message_type, raw = the_retour(harness, "provider-a", str(data["id"]))
    assert message_type == "JW304"
    root = valid_2_3("JW304", raw)
    header = root.find("{*}Header")
    assert text(header, "BerichtCode") == "433"
    assert [c.text for c in findall(header, "RetourCodes/RetourCode")] == ["0200"]
    assert text(header, "RetourBedragen/ToegekendTotaalBedrag/TotaalBedrag") == "3590000"
    lines = findall(root, "Clienten/Client/Prestaties/Prestatie")
    assert [text(p, "RetourCodes/RetourCode") for p in lines] == ["8001"] * 4

    # The provider fetches its JW304 from its mailbox over HTTP.
    [retour] = harness.store.query(MessageQuery(recipient="provider-a"))
    listed = await (await harness.get("provider-a", "/v1/mailbox")).json()
    assert [m["id"] for m in listed["messages"]] == [retour.id]
    response = await harness.get("provider-a", f"/v1/mailbox/{retour.id}")
    assert response.status == 200 and await response.read() == raw


async def test_a_2_3_declaration_whose_totals_do_not_add_up_gets_a_0001_jw304(
    make_harness: Callable[..., object],
) -> None:
    harness = await both_releases(make_harness)
    raw = re.sub(
        rb"<ijw:TotaalBedrag>3590000<", b"<ijw:TotaalBedrag>3590001<", example_2_3("JW303")
    )
    data = await harness.submit("provider-a", raw)
    assert data["state"] == "rejected" and "BVO002" in str(data["reason"])
    message_type, retour = the_retour(harness, "provider-a", str(data["id"]))
    root = valid_2_3(message_type, retour)
    assert message_type == "JW304" and text(root, "Header/RetourCodes/RetourCode") == "0001"
    assert text(root, "Header/RetourBedragen/ToegekendTotaalBedrag/TotaalBedrag") == "0"
    # Diemen, answered for by the BVO, never sees the rejected declaration.
    assert (await harness.get("diemen", f"/v1/messages/{data['id']}")).status == 404


async def test_a_2_3_start_from_the_inbox_is_answered_with_a_2_3_jw306(
    make_harness: Callable[..., object],
) -> None:
    harness = await both_releases(make_harness)
    inbox = harness.folder / "inbox" / "provider-b"
    watcher = harness.gateway.watcher
    await watcher.scan()  # creates the party folders
    (inbox / "jw305-2.3.xml").write_bytes(example_2_3("JW305"))
    await watcher.scan()
    assert (await watcher.scan()).processed == ["jw305-2.3.xml"]
    [start] = harness.store.query(MessageQuery(sender="provider-b"))
    assert (start.message_type, start.recipient, start.state) == (
        "JW305",
        "amsterdam",
        State.QUEUED,
    )

    message_type, raw = the_retour(harness, "provider-b", start.id)
    assert message_type == "JW306"
    root = valid_2_3("JW306", raw)
    assert etree.QName(root).namespace == "http://www.istandaarden.nl/ijw/2_3/jw306/schema"
    await harness.gateway.delivery.tick()
    assert (harness.folder / "outbox" / "provider-b").is_dir()
    [delivered] = (harness.folder / "outbox" / "provider-b").iterdir()
    assert delivered.read_bytes() == raw


async def test_a_3_2_gateway_without_the_2_3_schemas_refuses_a_2_3_message(
    make_harness: Callable[..., object],
) -> None:
    built = await make_harness(overrides=ANSWERED_DIEMEN)  # type: ignore[misc]
    assert isinstance(built, Harness)
    data = await built.submit("provider-a", example_2_3("JW303"))
    assert data["state"] == "rejected" and "XSD-UNKNOWN" in str(data["reason"])


async def test_2_3_messages_pass_a_gateway_with_dossier_rules_on(
    make_harness: Callable[..., object],
) -> None:
    """With the dossier rules on, 2.3 messages (whose register reading is 3.2's) still pass:
    two declarations of one provider, an allocation and a start each get their retour."""
    built = await make_harness(  # type: ignore[misc]
        overrides={**ANSWERED_DIEMEN, "provider-a": {"answered_by": "bvo"}},
        schemas=(OFFICIAL_XSD_DIR, OUR_XSD_DIR_23),
        rules="dossier = true",
    )
    assert isinstance(built, Harness)
    second = example_2_3("JW303").replace(b">123456789012<", b">123456789013<")
    for party, raw in (
        ("provider-a", example_2_3("JW303")),
        ("provider-a", second),
        ("diemen", example_2_3("JW301")),
        ("provider-b", example_2_3("JW305")),
    ):
        data = await built.submit(party, raw)
        assert data["state"] == "queued", data
    generated = [
        m.message_type
        for party in ("provider-a", "diemen", "provider-b")
        for m in built.store.query(MessageQuery(recipient=party))
        if m.direction is Direction.GENERATED
    ]
    assert sorted(generated) == ["JW302", "JW304", "JW304", "JW306"]
