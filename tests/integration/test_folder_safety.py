"""A party cannot act as another or read the gateway's files through links in its folders.

The attacks of issue 12: ``rejected/`` replaced by a link into another party's inbox or
outbox, a file that links to a file outside, the party folder itself a link; a file far above
the size limit; a folder delivery that crashed half-way.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.core.model import State
from gateway.core.route import Party
from gateway.daemon.inbox_watcher import InboxWatcher
from gateway.daemon.nofollow import read_bounded
from gateway.service.intake import Receipt
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example

GiB = 1 << 30


def _messages(harness: Harness) -> list[object]:
    return [
        *harness.store.query(MessageQuery(sender="provider-a")),
        *harness.store.query(MessageQuery(sender="diemen")),
    ]


async def _scans(watcher: InboxWatcher, count: int = 3) -> None:
    for _ in range(count):
        await watcher.scan()


def _files(folder: Path) -> list[str]:
    """Every entry below ``folder``, without following links."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("target", ["inbox/diemen", "outbox/diemen"])
async def test_rejected_folder_linked_to_another_party_is_refused(
    harness: Harness, target: str
) -> None:
    """Provider A swaps its rejected/ for a link to Diemen's inbox (or outbox) and drops a
    message that claims to come from Diemen: nothing is taken, nothing moves through the link."""
    root = harness.folder
    inbox = root / "inbox" / "provider-a"
    watcher = harness.gateway.watcher
    await watcher.scan()  # creates the folders
    (root / target).mkdir(parents=True, exist_ok=True)
    (inbox / "rejected").mkdir(exist_ok=True)
    (inbox / "rejected").rename(inbox / "rejected.old")
    (inbox / "rejected").symlink_to(root / target)
    (inbox / "forged.xml").write_bytes(example("JW301"))  # Afzender 0384: Diemen

    with capture_logs() as logs:
        await _scans(watcher)

    untouched = ["processed", "rejected"] if target.startswith("inbox") else []
    assert _files(root / target) == untouched
    assert (inbox / "forged.xml").read_bytes() == example("JW301")
    assert (inbox / "rejected").is_symlink()
    assert _messages(harness) == []  # not ingested, neither as provider A nor as Diemen
    refusals = [e for e in logs if e["event"] == "inbox_folder_refused"]
    assert len(refusals) == 1  # once, not on every scan
    assert refusals[0]["party"] == "provider-a" and refusals[0]["folder"] == "rejected"
    assert "symbolic link" in refusals[0]["reason"]
    # Delivery to Diemen writes nothing the attacker planted.
    assert (await harness.gateway.delivery.tick()).delivered == 0


async def test_rejected_folder_swapped_during_intake_moves_nothing_through_the_link(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap happens after the folders were checked, while the message is being taken:
    the move goes to the folder that was checked (now ``rejected.old``), not through the link."""
    root = harness.folder
    inbox = root / "inbox" / "provider-a"
    diemen = root / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    (inbox / "rejected").mkdir(exist_ok=True)
    (inbox / "forged.xml").write_bytes(example("JW301"))
    await watcher.scan()
    submit = harness.service.intake.submit

    async def submit_then_swap(party: Party, raw: bytes, actor: str) -> Receipt:
        (inbox / "rejected").rename(inbox / "rejected.old")
        (inbox / "rejected").symlink_to(diemen)
        return await submit(party, raw, actor)

    monkeypatch.setattr(harness.service.intake, "submit", submit_then_swap)
    report = await watcher.scan()

    assert report.rejected == ["forged.xml"]  # sender identity mismatch, as provider A
    assert (inbox / "rejected.old" / "forged.xml").exists()
    assert (inbox / "rejected.old" / "forged.xml.why.json").exists()
    assert (inbox / "rejected").is_symlink()
    assert _files(diemen) == ["processed", "rejected"]
    monkeypatch.undo()
    await _scans(watcher)
    assert harness.store.query(MessageQuery(sender="diemen")) == []


async def test_file_linked_outside_is_refused_and_left_in_place(
    harness: Harness, tmp_path: Path
) -> None:
    """``ln -s /some/secret inbox/diemen/passwd.xml``: never read, never stored; the link
    stays, and rejected/passwd.xml.why.json says why (once)."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    secret = tmp_path / "outside" / "secret.xml"
    secret.parent.mkdir()
    secret.write_bytes(example("JW301"))  # a valid message: it would be ingested if read
    (inbox / "passwd.xml").symlink_to(secret)

    first = await watcher.scan()
    later = [await watcher.scan() for _ in range(2)]

    assert first.refused == ["passwd.xml"]
    assert all(report.refused == [] and report.processed == [] for report in later)
    assert (inbox / "passwd.xml").is_symlink()
    assert secret.read_bytes() == example("JW301")
    assert _messages(harness) == []
    why = json.loads((inbox / "rejected" / "passwd.xml.why.json").read_text(encoding="utf-8"))
    assert why["state"] == "refused"
    assert "symbolic link" in why["reason"] and "left where it is" in why["reason"]
    assert not (inbox / "rejected" / "passwd.xml").exists()


async def test_hard_link_and_fifo_are_refused(harness: Harness, tmp_path: Path) -> None:
    """A hard link to a file outside, and a FIFO (which must not hang the scan)."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    outside = tmp_path / "outside.xml"
    outside.write_bytes(example("JW301"))
    os.link(outside, inbox / "hard.xml")
    os.mkfifo(inbox / "pipe.xml")

    reports = [await watcher.scan() for _ in range(5)]

    # Each is reported once, however many scans still find it.
    assert sorted(name for r in reports for name in r.refused) == ["hard.xml", "pipe.xml"]
    assert _messages(harness) == []
    assert (inbox / "hard.xml").exists() and (inbox / "pipe.xml").exists()
    hard = json.loads((inbox / "rejected" / "hard.xml.why.json").read_text(encoding="utf-8"))
    assert "hard links" in hard["reason"]
    pipe = json.loads((inbox / "rejected" / "pipe.xml.why.json").read_text(encoding="utf-8"))
    assert "not a regular file" in pipe["reason"]


async def test_party_folder_that_is_a_link_is_refused(harness: Harness, tmp_path: Path) -> None:
    """inbox/diemen -> elsewhere: nothing there is taken, nothing is created there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "jw301.xml").write_bytes(example("JW301"))
    (harness.folder / "inbox").mkdir()
    (harness.folder / "inbox" / "diemen").symlink_to(elsewhere)

    with capture_logs() as logs:
        await _scans(harness.gateway.watcher)

    assert _files(elsewhere) == ["jw301.xml"]
    assert _messages(harness) == []
    assert (harness.folder / "inbox" / "diemen").is_symlink()
    [refusal] = [e for e in logs if e["event"] == "inbox_folder_refused"]
    assert refusal["party"] == "diemen" and "symbolic link" in refusal["reason"]
    # Other parties' inboxes are served as usual.
    assert (harness.folder / "inbox" / "provider-a" / "processed").is_dir()


async def test_outbox_folder_that_is_a_link_is_refused(harness: Harness, tmp_path: Path) -> None:
    """outbox/diemen -> elsewhere: the delivery writes nothing there and retries later."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (harness.folder / "outbox").mkdir()
    (harness.folder / "outbox" / "diemen").symlink_to(elsewhere)
    data = await harness.submit("provider-a", example("JW302"))

    report = await harness.gateway.delivery.tick()

    assert report.delivered == 0 and report.retried == 1
    assert list(elsewhere.iterdir()) == []
    assert (harness.folder / "outbox" / "diemen").is_symlink()
    msg = harness.store.get(str(data["id"]))
    assert msg is not None and msg.state is State.QUEUED
    assert "symbolic link" in (msg.reason or "")


async def test_outbox_file_planted_as_link_is_replaced_not_written_through(
    harness: Harness, tmp_path: Path
) -> None:
    """A link planted at the name the delivery will write: the file replaces the link."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    data = await harness.submit("provider-a", example("JW302"))
    folder = harness.folder / "outbox" / "diemen"
    folder.mkdir(parents=True)
    (folder / f"{data['id']}.xml").symlink_to(outside)

    assert (await harness.gateway.delivery.tick()).delivered == 1

    assert outside.read_bytes() == b"keep me"
    written = folder / f"{data['id']}.xml"
    assert not written.is_symlink() and written.read_bytes() == example("JW302")


async def test_file_above_the_limit_is_rejected_from_its_size_unread(harness: Harness) -> None:
    """A 1 GiB sparse file goes to rejected/ with a "too large" why; the scan that takes it
    allocates far less than the file (it is never read)."""
    inbox = harness.folder / "inbox" / "diemen"
    watcher = harness.gateway.watcher
    await watcher.scan()
    big = inbox / "big.xml"
    big.touch()
    os.truncate(big, GiB)
    assert GiB > harness.service.max_message_bytes
    await watcher.scan()

    tracemalloc.start()
    try:
        report = await watcher.scan()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.rejected == ["big.xml"]
    assert peak < 4 << 20  # well below even one limit's worth (25 MB)
    moved = inbox / "rejected" / "big.xml"
    assert moved.stat().st_size == GiB
    why = json.loads((inbox / "rejected" / "big.xml.why.json").read_text(encoding="utf-8"))
    assert why["state"] == "rejected"
    assert why["reason"].startswith("too large")
    assert str(GiB) in why["reason"]
    assert _messages(harness) == []


def test_read_bounded_stops_one_byte_past_the_limit(tmp_path: Path) -> None:
    """A file that grew past the limit after its size was checked is read only to limit + 1."""
    path = tmp_path / "grown.xml"
    path.write_bytes(b"x" * 5000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert len(read_bounded(fd, 1000)) == 1001
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_bounded(fd, 5000) == b"x" * 5000
    finally:
        os.close(fd)


async def test_sweep_removes_stale_outbox_temp_files_only(harness: Harness) -> None:
    """A temp file a killed write left behind is removed; real messages, a fresh temp file
    (a write in flight) and a link with a temp-like name stay."""
    folder = harness.folder / "outbox" / "diemen"
    folder.mkdir(parents=True)
    hour_ago = time.time() - 3600
    stale = folder / ".MSG1.xml.0123456789ab.tmp"
    stale.write_bytes(b"<Bericht>half")
    fresh = folder / ".MSG2.xml.ba9876543210.tmp"
    fresh.write_bytes(b"<Bericht>being written")
    message = folder / "MSG0.xml"
    message.write_bytes(example("JW302"))
    linked = folder / ".MSG3.xml.aaaaaaaaaaaa.tmp"
    linked.symlink_to(message)
    for path in (stale, message):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(linked, (hour_ago, hour_ago), follow_symlinks=False)

    sweep: Callable[[], Awaitable[list[str]]] = harness.gateway.delivery.sweep_temp_files
    assert await sweep() == ["diemen/.MSG1.xml.0123456789ab.tmp"]

    assert not stale.exists()
    assert fresh.exists() and linked.is_symlink()
    assert message.read_bytes() == example("JW302")
    assert await sweep() == []
