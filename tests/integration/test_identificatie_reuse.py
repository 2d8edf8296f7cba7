"""A sender that reuses a BerichtIdentificatie (same type, other bytes) is refused at intake
where the BVO does not answer for the recipient: HTTP 409 naming the earlier message, or the
inbox file moved to ``rejected/``; also after a restart. The same bytes stay a 202 duplicate."""

from __future__ import annotations

import json
from collections.abc import Callable

from gateway.core.model import State
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example, variant


def _other_bytes(raw: bytes) -> bytes:
    """The same message, Identificatie included, with other bytes (one more line end)."""
    return raw + b"\n"


async def test_a_reused_identificatie_is_refused_with_409_naming_the_earlier_message(
    make_harness: Callable[..., object],
) -> None:
    harness = await make_harness()  # type: ignore[misc]
    assert isinstance(harness, Harness)
    raw = variant(example("JW301"), 1)
    first = await harness.submit("diemen", raw)
    assert first["state"] == "queued"

    reused = await harness.post("diemen", _other_bytes(raw))
    assert reused.status == 409
    body = await reused.json()
    assert body["earlier"] == first["id"]
    assert str(first["id"]) in body["error"] and "V00001" in body["error"]
    same = await harness.post("diemen", raw)
    assert same.status == 202 and (await same.json())["duplicate"] is True
    assert [m.id for m in harness.store.query(MessageQuery(sender="diemen"))] == [first["id"]]
    mailbox = await (await harness.get("provider-a", "/v1/mailbox")).json()
    assert [m["id"] for m in mailbox["messages"]] == [first["id"]]
    # Another Identificatie is a message of its own.
    assert (await harness.submit("diemen", variant(example("JW301"), 2)))["state"] == "queued"

    # A restarted daemon on the same database refuses it all the same.
    restarted = await make_harness()  # type: ignore[misc]
    assert isinstance(restarted, Harness)
    again = await restarted.post("diemen", _other_bytes(_other_bytes(raw)))
    assert again.status == 409 and (await again.json())["earlier"] == first["id"]
    assert len(restarted.store.query(MessageQuery(sender="diemen"))) == 2


async def test_a_reused_identificatie_from_the_inbox_goes_to_rejected_with_its_reason(
    harness: Harness,
) -> None:
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()  # creates the folders
    raw = variant(example("JW301"), 3)
    (inbox / "first.xml").write_bytes(raw)
    await watcher.scan()  # a file is taken once it was stable over one scan
    assert (await watcher.scan()).processed == ["first.xml"]
    (first,) = harness.store.query(MessageQuery(sender="diemen"))

    (inbox / "again.xml").write_bytes(_other_bytes(raw))
    await watcher.scan()
    report = await watcher.scan()
    assert report.rejected == ["again.xml"]
    moved = [p.name for p in (inbox / "rejected").iterdir()]
    assert sorted(moved) == ["again.xml", "again.xml.why.json"]
    why = json.loads((inbox / "rejected" / "again.xml.why.json").read_text(encoding="utf-8"))
    assert why["state"] == "refused" and why["earlier"] == first.id
    assert first.id in why["reason"]
    assert harness.store.query(MessageQuery(sender="diemen")) == [first]
    assert first.state is State.QUEUED
