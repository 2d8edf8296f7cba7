"""Three `gateway run` nodes on one PostgreSQL act as one: one client's dossier checks are
serialised across the nodes, and a node killed mid-burst loses and duplicates nothing while
the others take over its folders and leases (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from pathlib import Path

import aiohttp
from lxml import etree

from gateway.core.model import State
from gateway.daemon.cluster import FOLDERS
from gateway.store.base import MessageQuery
from gateway.store.sql import SqlStore
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.reliability.daemon import (
    Acks,
    Daemon,
    drain_mailbox,
    free_port,
    shared_pseudonym_key,
    submissions,
    submit_all,
    token,
    write_config,
)
from tests.unit.dossier.scenario import Line, declaratie, toewijzing, vot

MONTHS = (
    (("2026-04-01", "2026-04-30"), "2026-05-05"),
    (("2026-05-01", "2026-05-31"), "2026-06-05"),
    (("2026-06-01", "2026-06-30"), "2026-07-03"),
)
PAIRS = len(MONTHS)
BURST = 240
LEASE_SECONDS = 3
DOSSIER = ("[rules]", "dossier = true", 'product_codes = ""')


def _nodes(tmp_path: Path, url: str, count: int, tag: str) -> list[Daemon]:
    """``count`` nodes on ``url`` sharing one inbox and one outbox, diemen answered by the BVO."""
    shared = tmp_path / tag
    # One pseudonym key for all: a BSN must give the same client key on every node.
    privacy = shared_pseudonym_key(shared)
    nodes = []
    for number in range(count):
        folder = shared / f"node{number}"
        folder.mkdir(parents=True)
        port = free_port()
        config = write_config(
            folder,
            port,
            store_url=url,
            inbox=shared / "inbox",
            outbox=shared / "outbox",
            inbox_poll_seconds=0.3,
            lease_seconds=LEASE_SECONDS,
            batch_size=20,
            answered=("diemen",),
            extra=DOSSIER + privacy,
        )
        nodes.append(Daemon(config, port, folder / "gateway.log"))
    return nodes


async def _post(session: aiohttp.ClientSession, node: Daemon, party: str, raw: bytes) -> str:
    headers = {"Authorization": f"Bearer {token(party)}"}
    async with session.post(f"{node.base}/v1/messages", data=raw, headers=headers) as response:
        assert response.status == 202, await response.text()
        return str((await response.json())["id"])


async def _dossier_traffic(nodes: list[Daemon]) -> list[list[str]]:
    """A request and an allocation for one client, then pairs of claims with one
    DeclaratieNummer sent at the same moment, each pair to two nodes (one node: both to it).
    Returns the message ids of each pair."""
    async with aiohttp.ClientSession() as session:
        await _post(session, nodes[0], "provider-a", vot().to_bytes())
        await _post(session, nodes[-1], "diemen", toewijzing().to_bytes())
        pairs = []
        for number in range(PAIRS):
            # Each pair its own month of the allocation, so pairs never collide with each other.
            month, sent = MONTHS[number]
            claims = [
                declaratie(f"D{number}", month, sent, Line(f"R{number}", *month)) for _ in range(2)
            ]
            targets = [nodes[number % len(nodes)], nodes[(number + 1) % len(nodes)]]
            pairs.append(
                list(
                    await asyncio.gather(
                        *(
                            _post(session, node, "provider-a", raw)
                            for node, raw in zip(targets, claims, strict=True)
                        )
                    )
                )
            )
    return pairs


def _verdicts(store: SqlStore, pairs: list[list[str]]) -> list[list[tuple[str, tuple[str, ...]]]]:
    """Per pair, sorted: each claim's state and the codes of the retour the gateway sent."""
    retours = {
        m.in_reply_to: m.id for m in store.query(MessageQuery(limit=10_000)) if m.in_reply_to
    }
    found = []
    for pair in pairs:
        verdicts = []
        for message_id in pair:
            message = store.get(message_id)
            assert message is not None
            payload = store.payload(retours[message_id])
            assert payload is not None
            codes = [
                code.text or ""
                for code in etree.fromstring(payload).iter("{*}RetourCode")
                if code.text not in ("0200", "8001")
            ]
            verdict = "rejected" if message.state is State.REJECTED else "accepted"
            verdicts.append((verdict, tuple(sorted(codes))))
        found.append(sorted(verdicts))
    return found


async def test_three_nodes_give_one_nodes_verdicts_and_survive_a_kill(
    tmp_path: Path, pg_database: str, reference_database: str
) -> None:
    """Same-client claims spread over three nodes get the retours one node gives them; then a
    burst over all three, the folder owner killed with SIGKILL half-way: every acknowledged
    message is stored once, delivered once, and a survivor owns the folders."""
    cluster = _nodes(tmp_path, pg_database, 3, "cluster")
    single = _nodes(tmp_path, reference_database, 1, "single")
    store = SqlStore(pg_database, pseudonyms=TEST_PSEUDONYMS)
    reference = SqlStore(reference_database, pseudonyms=TEST_PSEUDONYMS)
    try:
        for node in (*cluster, *single):
            node.start()
        for node in (*cluster, *single):
            await node.wait_ready()

        spread = await _dossier_traffic(cluster)
        alone = await _dossier_traffic(single)
        one_node = _verdicts(reference, alone)
        assert _verdicts(store, spread) == one_node
        # Each pair: exactly one claim passes and the other is refused for its number.
        assert all(pair[0] == ("accepted", ()) and "9333" in pair[1][1] for pair in one_node), (
            one_node
        )

        # The burst: four clients per node; the folder owner dies after a third of it.
        owner = await asyncio.to_thread(store.lease_holder, FOLDERS, store_now())
        assert owner is not None
        victim = next(node for node in cluster if owner.endswith(f":{node.port}"))
        todo = submissions(BURST, prefix="K")
        acks = Acks()
        sending = asyncio.gather(
            *(
                submit_all(node.base, todo[index :: len(cluster)], 4, acks, timeout=20)
                for index, node in enumerate(cluster)
            )
        )
        while len(acks.ids) < BURST // 3:
            await asyncio.sleep(0.02)  # waiting for the other processes' progress
        victim.kill()
        await sending
        survivors = [node for node in cluster if node is not victim]
        retry = Acks()
        await submit_all(survivors[0].base, acks.unanswered, 4, retry)
        assert not retry.unanswered, retry.statuses
        acknowledged = {**acks.ids, **retry.ids}
        assert set(acknowledged) == {s.bericht_id for s in todo}
        # A message the victim acknowledged is found again, not stored twice.
        assert all(acks.ids[b] == retry.ids[b] for b in set(acks.ids) & set(retry.ids))

        # A file dropped into the shared inbox now is taken in by the new folder owner.
        dropped = submissions(1, prefix="Z")[0]
        inbox = tmp_path / "cluster" / "inbox" / dropped.sender
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / "dropped.xml").write_bytes(dropped.raw)

        ids = set(acknowledged.values())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = [
                m
                for m in await asyncio.to_thread(store.query, MessageQuery(limit=100_000))
                if m.id in ids
                and m.state in (State.QUEUED, State.SENDING, State.RECEIVED)
                and m.recipient in ("diemen", "provider-b")
            ]
            if not waiting:
                break
            await asyncio.sleep(0.1)  # the survivors deliver; the victim's leases run out
        else:
            raise AssertionError(f"{len(waiting)} folder deliveries did not finish")

        stored = Counter(
            m.bericht_id
            for m in store.query(MessageQuery(limit=100_000))
            if m.bericht_id in acknowledged and m.in_reply_to is None
        )
        assert set(stored.values()) == {1} and len(stored) == BURST
        for message_id in ids:
            delivered = [e for e in store.history(message_id) if e.to_state is State.DELIVERED]
            assert len(delivered) <= 1, message_id
        while not (inbox / "processed" / "dropped.xml").exists():
            assert time.monotonic() < deadline, "the dropped file was not taken in"
            await asyncio.sleep(0.1)  # the survivors take the folders over after a lease
        taken = [m for m in store.query(MessageQuery(limit=100_000)) if m.bericht_id == "Z0000000"]
        assert len(taken) == 1
        new_owner = await asyncio.to_thread(store.lease_holder, FOLDERS, store_now())
        assert (
            new_owner is not None
            and victim.process is not None
            and f":{victim.process.pid}:" not in new_owner
        )

        async with aiohttp.ClientSession() as session:
            seen = [
                *await drain_mailbox(session, survivors[0].base, "amsterdam"),
                *await drain_mailbox(session, survivors[1].base, "provider-a"),
            ]
        assert len(seen) == len(set(seen))
    finally:
        codes = [node.stop() for node in (*cluster, *single) if node.process is not None]
        store.close()
        reference.close()
    assert codes.count(0) >= 3, [node.log() for node in cluster]


def store_now() -> dt.datetime:
    """Now, as the nodes' lease rows count it."""
    return dt.datetime.now(dt.UTC)
