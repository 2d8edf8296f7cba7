"""Masking of personal data (BSN and other client details) in anything we print or log.

Messages carry BSNs and health data. Findings, logs and CLI output may name elements and code
values, but never a BSN and never the content of a personal-data element.
"""

from __future__ import annotations

import hashlib
import re

from lxml import etree

# Elements whose content identifies or describes a person. Code values (categories, units,
# retourcodes) are not personal and stay readable in findings.
PERSONAL_ELEMENTS: frozenset[str] = frozenset(
    {
        "Bsn",
        "Geboortedatum",
        "Datum",
        "Achternaam",
        "Voorvoegsel",
        "Partnernaam",
        "Voornamen",
        "Voorletters",
        "Straatnaam",
        "Huisnummer",
        "Huisletter",
        "HuisnummerToevoeging",
        "Postcode",
        "Plaatsnaam",
        "Telefoonnummer",
        "Emailadres",
        "Commentaar",
        "Nummer",
        "Naam",
        "Taal",
    }
)

_QUOTED_VALUE = re.compile(r"(The value )'([^']*)'")
_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


def mask_bsn(bsn: str) -> str:
    """``999900006`` → ``******006``: enough for an operator to tell two clients apart."""
    digits = bsn.strip()
    if len(digits) <= 3:
        return "*" * len(digits)
    return "*" * (len(digits) - 3) + digits[-3:]


def client_key(bsn: str, salt: str = "ijw-gateway") -> str:
    """A stable, non-reversible handle for a client, for search and cross-referencing."""
    return hashlib.sha256(f"{salt}:{bsn.strip()}".encode()).hexdigest()[:16]


def mask_schema_message(message: str, element_name: str | None) -> str:
    """Hide the offending value in a schema error when it belongs to a personal element."""
    if element_name not in PERSONAL_ELEMENTS:
        return message
    return _QUOTED_VALUE.sub(
        lambda m: f"{m.group(1)}(masked, {len(m.group(2))} characters)", message
    )


def mask_free_text(text: str) -> str:
    """Mask anything that looks like a BSN (nine digits) in free text."""
    return _NINE_DIGITS.sub(lambda m: mask_bsn(m.group(0)), text)


def masked_copy(tree: etree._ElementTree) -> etree._ElementTree:
    """A copy of a message with every BSN masked, for ``show --xml`` without ``--reveal``."""
    copy = etree.ElementTree(etree.fromstring(etree.tostring(tree)))
    for element in copy.getroot().iter("{*}Bsn"):
        if element.text:
            element.text = mask_bsn(element.text)
    return copy
