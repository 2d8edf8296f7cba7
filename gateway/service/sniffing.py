"""What intake reads from a message's first bytes without parsing it: type, identification,
recipient and the BSNs whose client locks it takes."""

from __future__ import annotations

import re

from gateway.core.catalogue import MESSAGE_KINDS, Role

_BERICHTCODE = re.compile(rb"<(?:[\w.-]+:)?BerichtCode>\s*(\d{3})\s*<")
_IDENTIFICATIE = re.compile(
    rb"<(?:[\w.-]+:)?BerichtIdentificatie>\s*<(?:[\w.-]+:)?Identificatie>\s*([^<\s]{1,40})\s*<"
)
_BSN = re.compile(rb"<(?:[\w.-]+:)?Bsn>\s*(\d{9})\s*<")
_ONTVANGER = re.compile(rb"<(?:[\w.-]+:)?Ontvanger>\s*([^<\s]{1,20})\s*<")
_AFZENDER = re.compile(rb"<(?:[\w.-]+:)?Afzender>\s*([^<\s]{1,20})\s*<")
_GEMEENTE = re.compile(rb"<(?:[\w.-]+:)?Gemeente>\s*([^<\s]{1,20})\s*<")
_AANBIEDER = re.compile(rb"<(?:[\w.-]+:)?Aanbieder>\s*([^<\s]{1,20})\s*<")
_TYPE_BY_CODE = {code: kind.name for kind in MESSAGE_KINDS.values() for code in kind.berichtcodes}
_SNIFF_BYTES = 4096


def sniff_header(raw: bytes) -> tuple[str | None, str | None]:
    """Message type and BerichtIdentificatie from the first bytes, without parsing.

    Only for the intake record (listings, idempotency); validation reads the real header.
    """
    head = raw[:_SNIFF_BYTES]
    code = _BERICHTCODE.search(head)
    ident = _IDENTIFICATIE.search(head)
    message_type = _TYPE_BY_CODE.get(code.group(1).decode()) if code else None
    bericht_id = ident.group(1).decode("utf-8", "replace") if ident else None
    return message_type, bericht_id


def sniff_bsns(raw: bytes) -> list[str]:
    """The distinct BSNs a message names, sorted; read without parsing (a JW323 may name
    many clients)."""
    return sorted({match.group(1).decode() for match in _BSN.finditer(raw)})


def client_keys(raw: bytes) -> list[str]:
    """The keys a message's client locks are held under, sorted (the order locks are taken
    in): its BSNs, held in memory only."""
    return sniff_bsns(raw)


def recipient_identity(raw: bytes) -> str | None:
    """The Ontvanger of the header, when it is in the first bytes (see :func:`sender_identity`)."""
    return _header_identity(_ONTVANGER, raw) or _party_by_role(raw, sender=False)


def sender_identity(raw: bytes) -> str | None:
    """The Afzender of the header, when it is in the first bytes. A 2.3 JW303/JW304 header
    names Gemeente and Aanbieder instead: the one of the type's sending role is the Afzender,
    as :meth:`gateway.core.document.MessageDocument.afzender` reads it."""
    return _header_identity(_AFZENDER, raw) or _party_by_role(raw, sender=True)


def _party_by_role(raw: bytes, *, sender: bool) -> str | None:
    kind = MESSAGE_KINDS.get(sniff_header(raw)[0] or "")
    if kind is None:
        return None
    gemeente_wanted = sender == (kind.sender is Role.GEMEENTE)
    return _header_identity(_GEMEENTE if gemeente_wanted else _AANBIEDER, raw)


def _header_identity(pattern: re.Pattern[bytes], raw: bytes) -> str | None:
    found = pattern.search(raw, 0, _SNIFF_BYTES)
    return found.group(1).decode("utf-8", "replace") if found is not None else None
