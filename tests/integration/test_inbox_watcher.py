"""The inbox watcher: stable files are taken once, moved to processed/ or rejected/."""

from __future__ import annotations

import json
import os

from gateway.core.model import State
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example


async def test_stable_file_is_taken_and_moved_to_processed(harness: Harness) -> None:
    """A file is taken on the second scan that sees it unchanged, then moved to processed/."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()  # creates the party folders
    (inbox / "jw301.xml").write_bytes(example("JW301"))

    first = await watcher.scan()
    assert first.waiting == 1 and first.processed == []
    assert (inbox / "jw301.xml").exists()

    second = await watcher.scan()
    assert second.processed == ["jw301.xml"]
    assert not (inbox / "jw301.xml").exists()
    assert (inbox / "processed" / "jw301.xml").read_bytes() == example("JW301")
    [msg] = harness.store.query(MessageQuery(sender="diemen"))
    assert msg.state is State.QUEUED and msg.recipient == "provider-a"
    assert harness.store.history(msg.id)[0].actor == "inbox:diemen"


async def test_growing_file_is_not_taken(harness: Harness) -> None:
    """A file whose size or mtime changed between scans waits for another stable scan."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    raw = example("JW301")
    path = inbox / "big.xml"
    path.write_bytes(raw[:100])
    await watcher.scan()
    path.write_bytes(raw)
    os.utime(path, ns=(1, 1))
    report = await watcher.scan()
    assert report.processed == [] and report.waiting == 1
    assert (await watcher.scan()).processed == ["big.xml"]


async def test_rejected_file_gets_why_json(harness: Harness) -> None:
    """A malformed file goes to rejected/ with <name>.why.json naming the reason."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    (inbox / "broken.xml").write_bytes(b"<Bericht><unclosed></Bericht>")
    (inbox / ".partial.xml").write_bytes(b"still copying")
    await watcher.scan()
    report = await watcher.scan()
    assert report.rejected == ["broken.xml"]
    assert (inbox / "rejected" / "broken.xml").exists()
    why = json.loads((inbox / "rejected" / "broken.xml.why.json").read_text(encoding="utf-8"))
    assert why["state"] == "rejected"
    assert why["reason"].startswith("malformed")
    assert why["findings"]
    assert (inbox / ".partial.xml").exists()  # dot files are never taken


async def test_same_file_dropped_twice_is_one_message(harness: Harness) -> None:
    """Dropping the same message again (e.g. after a crash before the move) is idempotent."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    for _ in range(2):
        (inbox / "jw301.xml").write_bytes(example("JW301"))
        await watcher.scan()
        await watcher.scan()
    assert len(list((inbox / "processed").iterdir())) == 2
    assert len(harness.store.query(MessageQuery(sender="diemen"))) == 1


async def test_identity_mismatch_by_folder_is_rejected(harness: Harness) -> None:
    """A file in provider A's inbox claiming to come from Diemen is rejected with a why."""
    inbox = harness.folder / "inbox" / "provider-a"
    watcher = harness.gateway.watcher
    await watcher.scan()
    (inbox / "x.xml").write_bytes(example("JW301"))
    await watcher.scan()
    await watcher.scan()
    why = json.loads((inbox / "rejected" / "x.xml.why.json").read_text(encoding="utf-8"))
    assert "sender identity mismatch" in why["reason"]
