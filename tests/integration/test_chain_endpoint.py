"""The StUF-GGk endpoint over real HTTPS with mutual TLS on loopback.

The test makes its own CA, a server certificate for 127.0.0.1 and client certificates carrying
OINs; Diemen (0384) allows one OIN, provider A (42420001) another. Envelopes are built with
gateway.core.envelope and posted as the GGk would: SOAP 1.1 with a SOAPAction.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.clock import FakeClock
from gateway.config import load_config
from gateway.core import envelope as env
from gateway.core.errors import ConfigError
from gateway.core.model import State
from gateway.daemon.app import Gateway, build_app, start_chain
from gateway.daemon.chain_server import PATH, tls_context
from gateway.schemas import load_envelope_schema
from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA
from gateway.store.chain import ChainDirection
from tests.certificates import Issued, client_context, issue, make_ca
from tests.integration.conftest import (
    START,
    example,
    read_response,
    trickle_body,
    variant,
    write_config,
)

DIEMEN_OIN = "00000001003214345000"
PROVIDER_OIN = "00000004123456780000"
STRANGER_OIN = "00000009999999990000"
REF = "0b9e6a55-2d1c-4f7e-9a41-52c5c2d7a001"
SCHEMA = load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA)


@dataclass
class Chain:
    """A running gateway with its chain endpoint, and the certificates to call it with."""

    gateway: Gateway
    url: str
    ca: Issued
    clients: dict[str, Issued]

    async def post(
        self, body: bytes, client: str | None = "diemen", action: str | None = None
    ) -> tuple[int, bytes]:
        context = client_context(self.ca, self.clients[client] if client else None)
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if action is not None:
            headers["SOAPAction"] = action
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body, headers=headers, ssl=context) as response,
        ):
            return response.status, await response.read()


MakeChain = Callable[..., Coroutine[Any, Any, Chain]]


@pytest.fixture
async def make_chain(tmp_path: Path) -> AsyncIterator[MakeChain]:
    started: list[tuple[Gateway, Any]] = []

    async def factory(limits: str = "", server: str = "") -> Chain:
        tls = tmp_path / "tls"
        ca = make_ca(tls)
        presented = issue(ca, tls, "gateway", server=True)
        clients = {
            "diemen": issue(ca, tls, "ggk-diemen", oin=DIEMEN_OIN),
            "provider": issue(ca, tls, "ggk-provider", oin=PROVIDER_OIN),
            "stranger": issue(ca, tls, "stranger", oin=STRANGER_OIN),
            "other-ca": issue(make_ca(tmp_path / "other", "other"), tls, "forged", oin=DIEMEN_OIN),
        }
        extra = (
            f'[chain]\nenabled = true\nport = 0\norganisatie = "BVO"\n'
            f'certificate = "{presented.certificate}"\nprivate_key = "{presented.key}"\n'
            f'client_ca = "{ca.certificate}"\n{limits}'
        )
        overrides = {
            "diemen": {"chain_oins": [DIEMEN_OIN]},
            "provider-a": {"chain_oins": [PROVIDER_OIN]},
        }
        settings = load_config(write_config(tmp_path, overrides, extra, server=server), {})
        gateway = build_app(settings, clock=FakeClock(START), rng=random.Random(7))
        gateway.store.migrate()
        listening = await start_chain(gateway)
        started.append((gateway, listening))
        assert listening.server is not None
        port = listening.server.sockets[0].getsockname()[1]
        return Chain(gateway, f"https://127.0.0.1:{port}{PATH}", ca, clients)

    yield factory
    for gateway, listening in started:
        listening.close()
        await listening.finish()
        await gateway.delivery.close()
        gateway.store.close()


def di01(
    payload: bytes,
    *,
    functie: str = "JW301",
    zender: str = "0384",
    ontvanger: str = "42420001",
    reference: str = REF,
    code: env.Berichtcode = env.Berichtcode.DI01,
    cross: str | None = None,
    bestandsnaam: str | None = None,
) -> bytes:
    stuurgegevens = env.Stuurgegevens(
        code,
        env.Systeem(zender, "Jeugd Applicatie"),
        env.Systeem(ontvanger, env.GGK_APPLICATION),
        reference,
        "20260501110000000",
        cross,
        functie,
    )
    message = env.Envelope(stuurgegevens, payload, bestandsnaam=bestandsnaam)
    return env.soap_message(env.build_envelope(message))


def fault_code(status: int, body: bytes) -> str:
    assert status == 500, body
    fault = env.read_answer(body, env.MAX_ENVELOPE_OVERHEAD, SCHEMA)
    assert isinstance(fault, env.Fault)
    assert fault.stuurgegevens.berichtcode is env.Berichtcode.FO03
    return fault.code


def stored_count(chain: Chain) -> int:
    return sum(chain.gateway.store.counts_by_party().values())


async def test_a_di01_is_stored_then_acknowledged_with_a_bv03_naming_its_reference(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    payload = example("JW301")
    status, body = await chain.post(di01(payload), action=env.SOAP_ACTIONS[env.Berichtcode.DI01])
    assert status == 200, body
    bv03 = env.read_answer(body, env.MAX_ENVELOPE_OVERHEAD, SCHEMA)
    assert isinstance(bv03, env.Acknowledgement)
    assert bv03.stuurgegevens.cross_refnummer == REF
    assert bv03.stuurgegevens.ontvanger.organisatie == "0384"
    assert bv03.stuurgegevens.zender.organisatie == "BVO"
    assert env.UUID_V4.fullmatch(bv03.stuurgegevens.referentienummer)
    recorded = chain.gateway.store.chain_envelope(ChainDirection.IN, REF)
    assert recorded is not None
    assert recorded.message_id is not None
    assert chain.gateway.store.payload(recorded.message_id) == payload
    message = chain.gateway.store.get(recorded.message_id)
    assert message is not None
    assert (message.sender, message.recipient) == ("diemen", "provider-a")
    assert message.state is State.QUEUED


async def test_a_repeated_di01_gets_the_same_bv03_and_is_stored_once(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    request = di01(example("JW301"))
    first = await chain.post(request)
    second = await chain.post(request)
    assert first == second
    assert first[0] == 200
    assert stored_count(chain) == 1
    other_payload = di01(variant(example("JW301"), 2))
    assert fault_code(*await chain.post(other_payload)) == "CC08"
    assert stored_count(chain) == 1


async def test_a_payload_sent_as_a_text_file_goes_through_the_same_intake(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    status, body = await chain.post(di01(example("JW301"), bestandsnaam="JW301_0384.xml"))
    assert status == 200, body
    recorded = chain.gateway.store.chain_envelope(ChainDirection.IN, REF)
    assert recorded is not None and recorded.message_id is not None
    assert chain.gateway.store.payload(recorded.message_id) == example("JW301")


async def test_a_retour_travels_as_du01(make_chain: MakeChain) -> None:
    chain = await make_chain()
    request = di01(
        example("JW302"), functie="JW302", zender="42420001", ontvanger="0384",
        code=env.Berichtcode.DU01, cross=REF, reference="1c7a3d2e-8f4b-4a6c-b1d2-3e4f5a6b7c8d",
    )  # fmt: skip
    status, body = await chain.post(request, client="provider")
    assert status == 200, body
    assert isinstance(env.read_answer(body, env.MAX_ENVELOPE_OVERHEAD, SCHEMA), env.Acknowledgement)


async def test_a_payload_failing_its_schema_is_stored_rejected_and_answered_stuf055(
    make_chain: MakeChain,
) -> None:
    chain = await make_chain()
    payload = example("JW301").replace(b"<jw301:Geslacht>", b"<jw301:Geslacht>9", 1)
    status, body = await chain.post(di01(payload))
    assert fault_code(status, body) == "StUF055"
    recorded = chain.gateway.store.chain_envelope(ChainDirection.IN, REF)
    assert recorded is not None and recorded.message_id is not None
    message = chain.gateway.store.get(recorded.message_id)
    assert message is not None and message.state is State.REJECTED
    assert await chain.post(di01(payload)) == (status, body)  # the same answer again


@pytest.mark.parametrize(
    ("request_kwargs", "client", "code"),
    [
        ({"functie": "JW305"}, "diemen", "IB234"),
        ({"code": env.Berichtcode.DU01, "cross": REF}, "diemen", "IB240"),
        ({"ontvanger": "65656055"}, "diemen", "IB002"),
        ({"zender": "0363"}, "diemen", "IB002"),
        ({"zender": "0599"}, "diemen", "IB213"),
        ({"ontvanger": "11112222"}, "diemen", "IB210"),
        ({}, "stranger", "IB002"),
        ({}, "provider", "IB002"),
        ({"reference": "9c0f7b90-5c69-11e5-a837-0800200c9a66"}, "diemen", "IB009"),
        ({"functie": "F" * 31}, "diemen", "RIN001"),
    ],
    ids=[
        "functie",
        "du01-for-original",
        "ontvanger-not-header",
        "zender-not-header",
        "unknown-zender",
        "unknown-ontvanger",
        "oin-of-nobody",
        "oin-of-another-party",
        "reference-not-v4",
        "envelope-invalid",
    ],
)
async def test_refusals_answer_fo03_with_the_chain_code_and_store_nothing(
    make_chain: MakeChain, request_kwargs: dict[str, Any], client: str, code: str
) -> None:
    chain = await make_chain()
    status, body = await chain.post(di01(example("JW301"), **request_kwargs), client=client)
    assert fault_code(status, body) == code
    assert stored_count(chain) == 0
    assert chain.gateway.store.chain_envelope(ChainDirection.IN, REF) is None


async def test_a_wrong_soap_action_or_no_soap_is_rin001(make_chain: MakeChain) -> None:
    chain = await make_chain()
    wrong = env.SOAP_ACTIONS[env.Berichtcode.DU01]
    assert fault_code(*await chain.post(di01(example("JW301")), action=wrong)) == "RIN001"
    assert fault_code(*await chain.post(example("JW301"))) == "RIN001"
    assert fault_code(*await chain.post(b"<<<")) == "RIN001"
    assert stored_count(chain) == 0


async def test_a_fo01_about_a_sent_envelope_is_acknowledged(make_chain: MakeChain) -> None:
    chain = await make_chain()
    fo01 = env.Fault(
        env.Stuurgegevens(
            env.Berichtcode.FO01, env.Systeem("0384", "GGK"), env.Systeem("BVO", "ijw-gateway"),
            REF, "20260501110000000", cross_refnummer="2d7a3d2e-8f4b-4a6c-b1d2-3e4f5a6b7c8d",
        ),
        "IB210", "client", "Ontvangende organisatie onbekend",
    )  # fmt: skip
    request = env.soap_message(env.build_fault(fo01))
    status, body = await chain.post(request, action=env.SOAP_ACTIONS[env.Berichtcode.FO01])
    assert status == 200, body
    assert isinstance(env.read_answer(body, env.MAX_ENVELOPE_OVERHEAD, SCHEMA), env.Acknowledgement)
    recorded = chain.gateway.store.chain_envelope(ChainDirection.IN, REF)
    assert recorded is not None and recorded.berichtcode == "Fo01"
    assert await chain.post(request) == (status, body)


async def test_a_body_over_the_limit_is_ib007(make_chain: MakeChain) -> None:
    chain = await make_chain(limits="[limits]\nmax_message_bytes = 20000\n")
    big = example("JW301").replace(b"</jw301:Header>", b"<!--" + b"x" * 40_000 + b"-->"
                                   b"</jw301:Header>", 1)  # fmt: skip
    assert fault_code(*await chain.post(di01(big))) == "IB007"  # whole body over the limit
    payload_over = example("JW301") + b" " * (20_001 - len(example("JW301")))
    assert fault_code(*await chain.post(di01(payload_over))) == "IB007"  # payload over it
    assert stored_count(chain) == 0


async def test_a_body_below_the_minimum_rate_is_cut_off_with_a_fault(
    make_chain: MakeChain,
) -> None:
    """The REST API's time bounds hold here too: a body trickling at 400 B/s against 1000 B/s."""
    chain = await make_chain(
        server="body_min_bytes_per_second = 1000\nbody_grace_seconds = 0.2\n"
        "idle_timeout_seconds = 5\nheader_timeout_seconds = 5"
    )
    port = int(chain.url.split(":")[2].split("/")[0])
    context = client_context(chain.ca, chain.clients["diemen"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode())

    sending = trickle_body(writer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(8):
            status, body = await read_response(reader)
    finally:
        sending.cancel()
        writer.close()
    assert fault_code(status, body) == "GW503"
    assert loop.time() - started < 5
    assert stored_count(chain) == 0


@pytest.mark.parametrize("client", [None, "other-ca"], ids=["no-certificate", "other-ca"])
async def test_a_client_without_a_trusted_certificate_does_not_get_through_tls(
    make_chain: MakeChain, client: str | None
) -> None:
    chain = await make_chain()
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await chain.post(di01(example("JW301")), client=client)
    assert stored_count(chain) == 0


def test_the_endpoint_is_off_by_default_and_needs_its_tls_files(tmp_path: Path) -> None:
    settings = load_config(write_config(tmp_path), {})
    assert not settings.chain.enabled
    gateway = build_app(settings, clock=FakeClock(START))
    try:
        assert gateway.chain_app is None
    finally:
        gateway.store.close()
    with pytest.raises(ConfigError, match="certificate, private_key and client_ca"):
        load_config(write_config(tmp_path, extra="[chain]\nenabled = true\n"), {})
    with pytest.raises(ConfigError, match="20-digit OIN"):
        load_config(write_config(tmp_path, {"diemen": {"chain_oins": ["123"]}}), {})


def test_the_tls_context_trusts_only_the_configured_ca_and_demands_a_certificate(
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path)
    presented = issue(ca, tmp_path, "gateway", server=True)
    context = tls_context(presented.certificate, presented.key, ca.certificate)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Test CA ca"),),)]
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    with pytest.raises(ConfigError, match=r"\[chain\] TLS files"):
        tls_context(presented.certificate, presented.key, tmp_path / "missing.pem")
