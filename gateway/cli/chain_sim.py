"""``gateway chain-sim``: play the GGk's side of the national chain (docs/chain.md).

``certs`` writes a demo CA and certificates for both sides (never for production);
``serve`` is the GGk's OntvangAsynchroon for what the gateway sends (``[chain] ggk_url``);
``send`` delivers a folder of iJw originals to the gateway's endpoint as Di01 envelopes. Both
speak HTTPS with mutual TLS; lines name envelopes by reference and message type only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.common import Subparsers, add_group

CERTS_EXAMPLES = """\
examples:
  gateway chain-sim certs tls/     # tls/ca.crt, tls/gateway.crt|key, tls/ggk.crt|key
"""
SERVE_EXAMPLES = """\
examples:
  gateway chain-sim serve --certificate tls/ggk.crt --private-key tls/ggk.key \\
      --client-ca tls/ca.crt --port 9443 --received ggk-received/
  gateway chain-sim serve ... --fail-first 2     # refuse the first two envelopes with a Fo03
"""
SEND_EXAMPLES = """\
examples:
  gateway chain-sim send docs/examples/ --url https://127.0.0.1:8443/ggk0210/OntvangAsynchroon \\
      --certificate tls/ggk.crt --private-key tls/ggk.key --ca tls/ca.crt
"""


def add_chain_sim_commands(subparsers: Subparsers) -> None:
    """Register ``chain-sim certs``, ``chain-sim serve`` and ``chain-sim send``."""
    commands = add_group(
        subparsers,
        "chain-sim",
        "play the GGk's side of the national chain (StUF-GGk over mutual TLS)",
        "".join(
            examples.removeprefix("examples:\n")
            for examples in (CERTS_EXAMPLES, SERVE_EXAMPLES, SEND_EXAMPLES)
        ),
        dest="chain_sim_command",
        metavar="COMMAND",
    )

    certs = commands.add_parser(
        "certs",
        help="write a demo CA and certificates for the gateway and the simulated GGk",
        description="Write into FOLDER a demo CA (ca.crt, ca.key) and, signed by it, "
        "gateway.crt/.key and ggk.crt/.key: each for 127.0.0.1 and localhost, as server and "
        "as client, with an OIN as subject serialNumber (printed). For the demo and tests "
        "only, valid 30 days. Needs the cryptography package (pip install "
        "'ijw-gateway[chain-sim]').",
        epilog=CERTS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    certs.add_argument("folder", type=Path)
    certs.set_defaults(func=cmd_certs)

    serve = commands.add_parser(
        "serve",
        help="take in the envelopes the gateway sends and answer Bv03 or Fo03",
        description="Serve the GGk's OntvangAsynchroon (POST /ggk0210/OntvangAsynchroon) until "
        "interrupted. Each Di01/Du01 is checked against ggk0210 and answered with a Bv03, or "
        "with a Fo03 for the first --fail-first envelopes. One line per envelope.",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9443)
    serve.add_argument("--certificate", type=Path, required=True, help="server certificate (PEM)")
    serve.add_argument("--private-key", type=Path, required=True, help="its key (PEM)")
    serve.add_argument(
        "--client-ca", type=Path, required=True, help="CAs the gateway's client certificate needs"
    )
    serve.add_argument("--received", type=Path, help="write acknowledged payloads here")
    serve.add_argument("--fail-first", type=int, default=0, metavar="N")
    serve.add_argument("--fault-code", default="GW503", help="the Fo03's code (default GW503)")
    serve.set_defaults(func=cmd_serve)

    send = commands.add_parser(
        "send",
        help="send a folder of iJw originals to the gateway as Di01 envelopes",
        description="Send every *.xml original in FOLDER (by name) to the gateway's endpoint as "
        "a Di01 and print the answer (Bv03 or the Fo03's code). Retours are skipped. Exit 1 "
        "when any envelope was refused.",
        epilog=SEND_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("folder", type=Path)
    send.add_argument("--url", required=True, help="the gateway's OntvangAsynchroon (https)")
    send.add_argument("--certificate", type=Path, required=True, help="client certificate (PEM)")
    send.add_argument("--private-key", type=Path, required=True, help="its key (PEM)")
    send.add_argument("--ca", type=Path, required=True, help="CAs the gateway's certificate needs")
    send.set_defaults(func=cmd_send)


def cmd_certs(args: argparse.Namespace) -> int:
    """Write the demo CA and certificates."""
    try:
        from gateway.chain_certificates import demo_certificates
    except ImportError:
        print("gateway chain-sim certs needs the cryptography package: "
              "pip install 'ijw-gateway[chain-sim]'", file=sys.stderr)  # fmt: skip
        return 2
    for issued in demo_certificates(args.folder):
        oin = f", OIN {issued.oin}" if issued.oin else ""
        print(f"{issued.certificate}{oin} (key {issued.key})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the simulated GGk endpoint until interrupted."""
    import asyncio
    import contextlib
    import logging

    from gateway.chain_sim import GgkSimulator, Received
    from gateway.daemon.chain_server import tls_context
    from gateway.logs import configure_logging
    from gateway.schemas import load_envelope_schema
    from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA

    def show(received: Received) -> None:
        sg = received.envelope.stuurgegevens
        cross = f" crossRefnummer {sg.cross_refnummer}" if sg.cross_refnummer else ""
        print(
            f"{sg.berichtcode.value} {sg.functie} {sg.zender.organisatie} -> "
            f"{sg.ontvanger.organisatie} {sg.referentienummer}{cross}: {received.answer}",
            flush=True,
        )

    configure_logging(level=logging.WARNING)  # stdout is the one line per envelope
    simulator = GgkSimulator(
        load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA),
        fail_first=args.fail_first,
        fault_code=args.fault_code,
        folder=args.received,
        notify=show,
    )
    tls = tls_context(args.certificate, args.private_key, args.client_ca)

    async def serve() -> None:
        url = await simulator.start(args.host, args.port, tls)
        print(f"GGk simulator listening on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Send a folder's originals as Di01 envelopes."""
    import asyncio

    import aiohttp

    from gateway.chain_sim import send_folder
    from gateway.daemon.chain_client import client_tls_context
    from gateway.schemas import load_envelope_schema
    from gateway.shipped import SHIPPED_ENVELOPE_SCHEMA

    tls = client_tls_context(args.certificate, args.private_key, args.ca)
    schema = load_envelope_schema(SHIPPED_ENVELOPE_SCHEMA)
    try:
        results = asyncio.run(send_folder(args.folder, args.url, tls, schema=schema))
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"{args.url}: {exc or type(exc).__name__}")
        return 1
    refused = 0
    for sent in results:
        print(f"{sent.file}: {sent.referentienummer or '-'} {sent.answer}")
        refused += sent.referentienummer is not None and sent.answer != "Bv03"
    return 1 if refused else 0
