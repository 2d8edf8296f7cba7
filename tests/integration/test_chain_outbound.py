"""The ggk channel and the chain simulator, over real HTTPS with mutual TLS on loopback.

Diemen (0384) is reached through the GGk: the simulator (gateway.chain_sim) plays the GGk on
both sides, delivering Di01 envelopes to the gateway's endpoint and taking in what the gateway
sends to its own OntvangAsynchroon. Provider A (42420001) uses the REST API and its mailbox.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.chain_sim import GgkSimulator, send_folder
from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core import envelope as env
from gateway.core.errors import ConfigError
from gateway.core.model import State
from gateway.daemon.app import Gateway, Listening, build_app, start_chain
from gateway.daemon.chain_client import client_tls_context
from gateway.daemon.chain_server import PATH, tls_context
from gateway.schemas import load_envelope_schema
from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA
from gateway.store.chain import ChainDirection
from tests.certificates import issue, make_ca
from tests.integration.conftest import START, example, token, write_config

GGK_OIN = "00000001003214345000"
SCHEMA = load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA)


@dataclass
class Chain:
    """A gateway whose Diemen is reached through a running simulated GGk."""

    gateway: Gateway
    ggk: GgkSimulator
    endpoint: str  # the gateway's OntvangAsynchroon
    ggk_client: Any  # the TLS context the GGk calls the gateway with
    rest: TestClient

    async def tick(self) -> None:
        await self.gateway.delivery.tick()


MakeChain = Callable[..., Coroutine[Any, Any, Chain]]


@pytest.fixture
async def make_chain(tmp_path: Path) -> AsyncIterator[MakeChain]:
    running: list[tuple[Gateway, Listening, GgkSimulator, TestClient]] = []

    async def factory(fail_first: int = 0, ggk_running: bool = True) -> Chain:
        tls = tmp_path / "tls"
        ca = make_ca(tls)
        ggk_server = issue(ca, tls, "ggk-server", server=True)
        ggk_client = issue(ca, tls, "ggk-client", oin=GGK_OIN)
        gateway_server = issue(ca, tls, "gateway", server=True)
        gateway_client = issue(ca, tls, "gateway-client", oin="00000001009999999000")
        ggk = GgkSimulator(SCHEMA, fail_first=fail_first, folder=tmp_path / "ggk-received")
        if ggk_running:
            url = await ggk.start(
                "127.0.0.1", 0, tls_context(ggk_server.certificate, ggk_server.key, ca.certificate)
            )
        else:
            url = f"https://127.0.0.1:9{PATH}"  # nothing listens on a privileged port
        extra = (
            f'[chain]\nenabled = true\nport = 0\nggk_url = "{url}"\n'
            f'certificate = "{gateway_server.certificate}"\n'
            f'private_key = "{gateway_server.key}"\nclient_ca = "{ca.certificate}"\n'
            f'client_certificate = "{gateway_client.certificate}"\n'
            f'client_private_key = "{gateway_client.key}"\n'
        )
        overrides = {"diemen": {"channel": "ggk", "chain_oins": [GGK_OIN]}}
        settings = load_config(write_config(tmp_path, overrides, extra), {})
        gateway = build_app(settings, clock=FakeClock(START), rng=random.Random(7))
        gateway.delivery.pass_wait = None
        gateway.store.migrate()
        listening = await start_chain(gateway)
        assert listening.server is not None
        port = listening.server.sockets[0].getsockname()[1]
        rest = TestClient(TestServer(gateway.web_app))
        await rest.start_server()
        running.append((gateway, listening, ggk, rest))
        caller = client_tls_context(ggk_client.certificate, ggk_client.key, ca.certificate)
        return Chain(gateway, ggk, f"https://127.0.0.1:{port}{PATH}", caller, rest)

    yield factory
    for gateway, listening, ggk, rest in running:
        await rest.close()
        listening.close()
        await listening.finish()
        await ggk.close()
        await gateway.delivery.close()
        gateway.store.close()


async def _submit(chain: Chain, party: str, body: bytes) -> str:
    response = await chain.rest.post(
        "/v1/messages", data=body, headers={"Authorization": f"Bearer {token(party)}"}
    )
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def test_round_trip_through_the_ggk_an_original_in_as_di01_and_its_retour_out_as_du01(
    make_chain: MakeChain, tmp_path: Path
) -> None:
    chain = await make_chain(fail_first=1)
    folder = tmp_path / "from-diemen"
    folder.mkdir()
    (folder / "jw301.xml").write_bytes(example("JW301"))
    (folder / "jw302.xml").write_bytes(example("JW302"))  # a retour: the GGk sends no Di01

    sent = await send_folder(folder, chain.endpoint, chain.ggk_client, schema=SCHEMA)

    assert [(s.file, s.answer) for s in sent] == [
        ("jw301.xml", "Bv03"),
        ("jw302.xml", "a retour (JW302): skipped"),
    ]
    di01_reference = sent[0].referentienummer
    assert di01_reference is not None
    inbound = chain.gateway.store.chain_envelope(ChainDirection.IN, di01_reference)
    assert inbound is not None and inbound.message_id is not None
    original = chain.gateway.store.get(inbound.message_id)
    assert original is not None and original.recipient == "provider-a"

    # The provider answers over the REST API; its JW302 goes back to Diemen through the GGk.
    retour_id = await _submit(chain, "provider-a", example("JW302"))
    await chain.tick()  # the simulated GGk refuses the first envelope with a Fo03
    retour = chain.gateway.store.get(retour_id)
    assert retour is not None and retour.state is State.QUEUED and retour.attempts == 1
    assert "Fo03 GW503" in (retour.reason or "")
    assert retour.next_attempt_at is not None
    chain.gateway.service.clock.advance(seconds=(retour.next_attempt_at - START).total_seconds())
    await chain.tick()

    retour = chain.gateway.store.get(retour_id)
    assert retour is not None and retour.state is State.DELIVERED, retour.reason
    first, second = (r.envelope for r in chain.ggk.received)
    assert [r.answer for r in chain.ggk.received] == ["GW503", "Bv03"]
    for du01 in (first, second):
        sg = du01.stuurgegevens
        assert sg.berichtcode is env.Berichtcode.DU01
        assert sg.functie == "JW302"
        assert sg.cross_refnummer == di01_reference
        assert (sg.zender.organisatie, sg.ontvanger.organisatie) == ("42420001", "0384")
        assert du01.payload == example("JW302")
    # The repeat carries the same reference, so the GGk can tell it from a new message.
    assert first.stuurgegevens.referentienummer == second.stuurgegevens.referentienummer
    outbound = chain.gateway.store.chain_envelope(
        ChainDirection.OUT, second.stuurgegevens.referentienummer
    )
    assert outbound is not None and outbound.message_id == retour_id
    assert outbound.answer is not None and outbound.answer_code is None
    received = chain.ggk.folder
    assert received is not None
    assert (received / f"{second.stuurgegevens.referentienummer}.xml").read_bytes() == example(
        "JW302"
    )


async def test_an_original_for_a_party_behind_the_ggk_leaves_as_a_di01(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    message_id = await _submit(chain, "provider-a", example("JW315"))

    await chain.tick()

    stored = chain.gateway.store.get(message_id)
    assert stored is not None and stored.state is State.DELIVERED, stored
    [received] = chain.ggk.received
    sg = received.envelope.stuurgegevens
    assert sg.berichtcode is env.Berichtcode.DI01
    assert sg.cross_refnummer is None
    assert (sg.functie, sg.zender.organisatie, sg.ontvanger.organisatie) == (
        "JW315",
        "42420001",
        "0384",
    )
    assert sg.referentienummer == env.outbound_referentienummer(message_id)


async def test_a_transport_error_retries_and_the_last_attempt_dead_letters(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain(ggk_running=False)
    message_id = await _submit(chain, "provider-a", example("JW315"))
    clock = chain.gateway.service.clock
    for _ in range(5):  # [retry] max_attempts = 5 in the test configuration
        await chain.tick()
        stored = chain.gateway.store.get(message_id)
        assert stored is not None
        if stored.next_attempt_at is not None:
            clock.advance(seconds=(stored.next_attempt_at - clock.now()).total_seconds() + 1)
    stored = chain.gateway.store.get(message_id)
    assert stored is not None and stored.state is State.DEAD
    assert stored.attempts == 5
    history = chain.gateway.store.history(message_id)
    assert any("connection error sending to the GGk" in event.reason for event in history)


async def test_a_retour_whose_original_never_travelled_through_the_ggk_is_dead(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    await _submit(chain, "diemen", example("JW301"))  # over REST, not through the GGk
    retour_id = await _submit(chain, "provider-a", example("JW302"))

    await chain.tick()

    retour = chain.gateway.store.get(retour_id)
    assert retour is not None and retour.state is State.DEAD
    assert "did not travel through the GGk" in (retour.reason or "")
    assert chain.ggk.received == []


def test_a_ggk_party_needs_the_ggk_url(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"diemen": {"channel": "ggk"}})
    with pytest.raises(ConfigError, match=r"channel 'ggk'.*ggk_url"):
        load_config(path, {})
