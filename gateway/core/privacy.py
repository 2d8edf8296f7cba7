"""The one place that decides what is personal, and how it is kept out of what we print or log.

Messages carry BSNs and health data. Findings, logs and CLI output may name elements, paths and
code values, but never a BSN and never the content of a personal element: the element path and
the rule say what is wrong. Every output reads findings made safe here (validation scrubs them
where they are made, so what the store keeps is already safe) and ``show --xml`` masks with
:func:`masked_copy`; only an audited ``--reveal`` shows the content.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection

from lxml import etree

from gateway.core.report import Finding

# Elements whose content identifies or reaches a person (iJw 3.2 XSDs: Client, Relatie,
# Contact, CDT_VolledigeNaam/VerkorteNaam/Achternaam, CDT_Geboortedatum, CDT_Adres/Huis,
# CDT_Telefoon, CDT_Verwijzer). Code values (Geslacht, NaamGebruik, DatumGebruik, LandCode,
# AanduidingWoonadres, Soort, categories, retourcodes) are not personal and stay readable:
# they say what is wrong. ``Datum`` occurs only in CDT_Geboortedatum; ``Nummer`` only as the
# Relatie's LDT_Persoonsid; ``Naam`` is a person's name wherever it is a leaf (Verwijzer).
PERSONAL_ELEMENTS: frozenset[str] = frozenset(
    {
        "Bsn",
        "Geboortedatum",
        "Datum",
        "Naam",
        "Geslachtsnaam",
        "Partnernaam",
        "Achternaam",
        "Voorvoegsel",
        "Voornamen",
        "Voorletters",
        "Huisnummer",
        "Huisletter",
        "HuisnummerToevoeging",
        "Postcode",
        "Straatnaam",
        "Plaatsnaam",
        "Telefoonnummer",
        "Emailadres",
        "Organisatie",
        "Nummer",
        "Commentaar",
    }
)

WITHHELD = "(withheld)"
_MASK = "***"

_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")
_NAMESPACE = re.compile(r"\{[^}]*\}")
_STEP_DECORATION = re.compile(r"^[^:\[]*:|\[[^\]]*\]$")
# libxml2's schema messages quote the offending value in a few fixed forms; the text after the
# value names the facet and its (non-personal) parameters. Non-greedy, anchored on that text,
# so a value with a quote in it (O'Brien) is still taken whole.
_FACET_VALUE = re.compile(
    r"The value '.*?' (?=is not accepted by the pattern|has a length of|is not an element of"
    r"|is less than|is greater than|has more digits|has more fractional digits"
    r"|is not facet-valid|is not a valid value)",
    re.DOTALL,
)
_ATOMIC_VALUE = re.compile(r"(Element '[^']*': )'.*?' (?=is not a valid value)", re.DOTALL)


def mask_bsn(bsn: str) -> str:
    """``999900006`` → ``******006``: enough for an operator to tell two clients apart."""
    digits = bsn.strip()
    if len(digits) <= 3:
        return "*" * len(digits)
    return "*" * (len(digits) - 3) + digits[-3:]


CLIENT_KEY_LENGTH = 64
"""Hex characters in a client key: the full HMAC-SHA256."""

MIN_PSEUDONYM_KEY_BYTES = 16

# Not a BSN, so the fingerprint is never anyone's client key.
_FINGERPRINT_LABEL = b"ijw-gateway pseudonym key fingerprint"


class Pseudonymizer:
    """Client keys: the stable handle of a client in the store, for search and the register.

    A key is HMAC-SHA256 of the BSN under the gateway's secret, in full. Without the secret a
    key cannot be recomputed from a BSN, so the 9 x 10^7 valid BSNs cannot be tried against
    the database; with it, the gateway and its operators find a client by BSN.
    """

    __slots__ = ("_secret", "source")

    def __init__(self, secret: bytes, source: str = "the pseudonym key") -> None:
        """``source`` says where the secret came from, for errors (never the secret)."""
        if len(secret) < MIN_PSEUDONYM_KEY_BYTES:
            raise ValueError(f"a pseudonym key has at least {MIN_PSEUDONYM_KEY_BYTES} bytes")
        self._secret = secret
        self.source = source

    def client_key(self, bsn: str) -> str:
        """The client key of ``bsn`` (64 hex characters)."""
        return hmac.new(self._secret, bsn.strip().encode(), hashlib.sha256).hexdigest()

    def fingerprint(self) -> str:
        """HMAC-SHA256 of a fixed label under the secret (64 hex characters): equal for equal
        secrets, different otherwise, and no help in recovering the secret or a client key."""
        return hmac.new(self._secret, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Pseudonymizer(<secret>)"


def is_personal(name_or_path: str | None) -> bool:
    """True when the element (a local name, ``{ns}Name``, ``ns:Name``, or a path ending in
    one, with or without ``[n]``) is personal."""
    if not name_or_path:
        return False
    last = _NAMESPACE.sub("", name_or_path).rstrip("/").rpartition("/")[2]
    return _STEP_DECORATION.sub("", last) in PERSONAL_ELEMENTS


# lxml matches these in C, in any namespace or none.
_PERSONAL_TAGS = tuple(f"{{*}}{name}" for name in sorted(PERSONAL_ELEMENTS))


def personal_values(root: etree._Element) -> frozenset[str]:
    """The text of every personal element in a message, as written and whitespace-collapsed."""
    values: set[str] = set()
    for element in root.iter(*_PERSONAL_TAGS):
        if not element.text:
            continue
        text = element.text.strip()
        if text:
            values.add(text)
            values.add(" ".join(text.split()))
    return frozenset(values)


def scrub_text(text: str, values: Collection[str]) -> str:
    """``text`` without any of ``values`` where it stands as a word of its own: each becomes
    ``(withheld)``.

    Values of one or two characters, and numbers of three digits, are left alone: a Voorletter,
    a Relatie's Nummer or a house number like that matches codes, lengths and dates all over
    a message and identifies no one. A finding about such an element loses its value at the
    source (:func:`withhold_quoted_value`).
    """
    for value in sorted(values, key=len, reverse=True):
        if len(value) < 3 or (len(value) == 3 and value.isdigit()) or value not in text:
            continue
        pattern = rf"(?<![^\W_]){re.escape(value)}(?![^\W_])"
        text = re.sub(pattern, lambda _m: WITHHELD, text)
    return text


def withhold_quoted_value(message: str) -> str:
    """A schema message about a personal element with the value it quotes taken out."""
    message = _FACET_VALUE.sub(f"The value {WITHHELD} ", message)
    return _ATOMIC_VALUE.sub(lambda m: f"{m.group(1)}the value {WITHHELD} ", message)


def scrub_findings(findings: tuple[Finding, ...], root: etree._Element) -> tuple[Finding, ...]:
    """Findings that quote no personal value of the message ``root`` belongs to.

    At the source, a finding about a personal element loses the value its message quotes; as a
    safety net, any personal value of the message is taken out of every message.
    """
    if not findings:
        return findings
    values = personal_values(root)
    scrubbed: list[Finding] = []
    for finding in findings:
        message = scrub_message(finding.message, finding.path, values)
        scrubbed.append(finding if message == finding.message else _with_message(finding, message))
    return tuple(scrubbed)


def scrub_message(message: str, path: str | None, values: Collection[str]) -> str:
    """One finding's message made safe: the value it quotes withheld when ``path`` is a
    personal element, and no personal value of the message (``values``) anywhere."""
    if is_personal(path):
        message = withhold_quoted_value(message)
    return scrub_text(message, values)


def _with_message(finding: Finding, message: str) -> Finding:
    return Finding(
        rule=finding.rule,
        message=message,
        retourcode=finding.retourcode,
        path=finding.path,
        line=finding.line,
        column=finding.column,
        level=finding.level,
    )


def mask_free_text(text: str) -> str:
    """Mask anything that looks like a BSN (nine digits) in free text."""
    return _NINE_DIGITS.sub(lambda m: mask_bsn(m.group(0)), text)


def masked_copy(tree: etree._ElementTree) -> etree._ElementTree:
    """A copy of a message with every personal element masked, for ``show --xml``.

    A BSN keeps its last three digits (:func:`mask_bsn`), so an operator can tell clients apart;
    every other personal text becomes ``***``, and so does any text between the children of a
    personal element and any comment (a hostile sender may hide data there). A personal value
    that also stands in another element is withheld there too (:func:`scrub_text`).
    """
    copy = etree.ElementTree(etree.fromstring(etree.tostring(tree)))
    values = personal_values(copy.getroot())
    for node in copy.getroot().iter():
        if not isinstance(node.tag, str):
            node.text = _MASK
            continue
        if node.tag.rpartition("}")[2] not in PERSONAL_ELEMENTS:
            if node.text and len(node) == 0:
                node.text = scrub_text(node.text, values)
            continue
        if node.text and node.text.strip():
            node.text = mask_bsn(node.text) if node.tag.endswith("Bsn") else _MASK
        for child in node:
            if child.tail and child.tail.strip():
                child.tail = _MASK
    return copy
