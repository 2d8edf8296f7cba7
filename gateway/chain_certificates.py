"""Certificates for the chain simulator's demo and the mutual-TLS tests: a CA of our own,
certificates for loopback, and certificates that carry an OIN in their subject serialNumber
(as PKIoverheid's do).

Never for production: PKIoverheid issues the real ones. Needs the ``cryptography`` package
(the extra ``chain-sim``; ``gateway chain-sim certs`` says so when it is missing).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30
GATEWAY_OIN = "00000001009999999000"
"""The demo gateway's OIN (the GGk simulator does not check it)."""
GGK_OIN = "00000001003214345000"
"""The demo GGk's OIN: a party whose envelopes arrive through the GGk lists it in chain_oins."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, written as PEM files."""

    certificate: Path
    key: Path
    x509: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def oin(self) -> str | None:
        """The OIN in the subject's serialNumber, if any."""
        found = self.x509.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        return str(found[0].value) if found else None


def _name(common_name: str, oin: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if oin is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    return x509.Name(attributes)


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)  # private before the key is in it
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path, cert, key)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(
        now + dt.timedelta(days=VALID_DAYS)
    )


def make_ca(folder: Path, stem: str = "ca") -> Issued:
    """A self-signed CA certificate, ``<stem>.crt`` and ``<stem>.key`` in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"Test CA {stem}", None)
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return _write(folder, stem, cert, key)


def issue(
    ca: Issued,
    folder: Path,
    stem: str,
    *,
    oin: str | None = None,
    server: bool = False,
    client: bool | None = None,
) -> Issued:
    """A certificate signed by ``ca``: for a server on loopback (127.0.0.1, localhost), for a
    client (the default unless ``server``), or both; ``oin`` goes in the subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    if client if client is not None else not server:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(stem, oin))
        .issuer_name(ca.x509.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return _write(folder, stem, builder.sign(ca.private_key, hashes.SHA256()), key)


def demo_certificates(folder: Path) -> tuple[Issued, Issued, Issued]:
    """The chain demo's CA (``ca``), the gateway's certificate (``gateway``) and the GGk's
    (``ggk``, with :data:`GGK_OIN`): each for 127.0.0.1, as server and as client."""
    ca = make_ca(folder)
    gateway = issue(ca, folder, "gateway", oin=GATEWAY_OIN, server=True, client=True)
    ggk = issue(ca, folder, "ggk", oin=GGK_OIN, server=True, client=True)
    return ca, gateway, ggk
