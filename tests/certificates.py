"""Test certificates for mutual TLS (gateway.chain_certificates makes them), and the client
context that presents one."""

from __future__ import annotations

import ssl

from gateway.chain_certificates import Issued, issue, make_ca

__all__ = ["Issued", "client_context", "issue", "make_ca"]


def client_context(ca: Issued, client: Issued | None) -> ssl.SSLContext:
    """A client context that trusts ``ca`` and presents ``client`` (None: no certificate)."""
    context = ssl.create_default_context(cafile=str(ca.certificate))
    if client is not None:
        context.load_cert_chain(client.certificate, client.key)
    return context
