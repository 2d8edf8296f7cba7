"""A rejected original keeps its recipient and links to the retour the gateway built for it:
``gateway messages --to``, ``gateway dossier`` and the store agree; the recipient never gets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gateway.core.model import State
from gateway.store.base import MessageQuery
from tests.integration.conftest import Harness, example


def _gateway(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--config", str(harness.folder / "config.toml")],
        cwd=harness.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_rejected_original_keeps_its_recipient_and_links_its_retour(
    harness: Harness,
) -> None:
    """A JW305 to Amsterdam failing the BSN 11-proof: rejected with the recipient its header
    names, its JW306 linked both ways; Amsterdam neither sees it nor finds it in its mailbox."""
    raw = example("JW305").replace(b">999900006<", b">999900007<")
    data = await harness.submit("provider-b", raw)
    original_id = str(data["id"])
    assert data["state"] == "rejected"
    original = harness.store.get(original_id)
    assert original is not None and original.recipient == "amsterdam"
    (retour,) = harness.store.query(MessageQuery(recipient="provider-b"))
    assert harness.store.linked_message(original_id) == retour.id
    assert harness.store.linked_message(retour.id) == original_id

    to_amsterdam = harness.store.query(MessageQuery(recipient="amsterdam"))
    assert [m.id for m in to_amsterdam] == [original_id]
    assert original_id in [m.id for m in harness.store.query(MessageQuery(party="amsterdam"))]
    # Never delivered, never in a mailbox, never visible to the party it was addressed to.
    assert (await harness.get("amsterdam", f"/v1/messages/{original_id}")).status == 404
    assert (await harness.get("amsterdam", f"/v1/mailbox/{original_id}")).status == 404
    listed = await (await harness.get("amsterdam", "/v1/mailbox")).json()
    assert listed["messages"] == []
    await harness.gateway.delivery.tick()
    after = harness.store.get(original_id)
    assert after is not None and after.state is State.REJECTED
    delivered = harness.store.get(retour.id)
    assert delivered is not None and delivered.state is State.DELIVERED  # to provider-b
    retour = delivered

    messages, dossier, table = (
        _gateway(harness, "messages", "--to", "amsterdam", "--json"),
        _gateway(harness, "dossier", "--client", "999900007", "--json"),
        _gateway(harness, "dossier", "--client", "999900007"),
    )
    for done in (messages, dossier, table):
        assert done.returncode == 0, done.stderr
        assert "999900007" not in done.stdout
    assert [m["id"] for m in json.loads(messages.stdout)["messages"]] == [original_id]
    rows = {m["id"]: m for m in json.loads(dossier.stdout)["messages"]}
    assert rows[original_id]["recipient"] == "amsterdam"
    assert rows[original_id]["retour"] == {
        "id": retour.id,
        "message_type": "JW306",
        "state": retour.state.value,
        "bericht_id": retour.bericht_id,
    }
    line = next(row for row in table.stdout.splitlines() if original_id in row.split()[:3])
    assert "provider-b -> amsterdam" in line
    assert f"JW306 {retour.id} ({retour.state.value})" in line
    assert "waiting" not in table.stdout
