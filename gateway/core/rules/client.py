"""In-message rules on the client data of a JW301: names, contacts, addresses, communication.

Semantics follow the official iJw 3.2 XSLT. Rules it matches on basisschema elements by name
(NaamGebruik, Postcode/LandCode, Communicatie) also run on the JW302 retour, which carries the
same classes; rules it ties to the JW301 namespace (Contact, Client) run on JW301 only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.core.catalogue import RELEASE_2_3
from gateway.core.document import MessageDocument
from gateway.core.rules.common import is_filled, raw
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

#: Messages carrying CDT_VolledigeNaam, CDT_Adres and CDT_Communicatie.
CLIENT_DATA_MESSAGES = ("JW301", "JW302")
_DUTCH_POSTCODE = re.compile(r"[1-9][0-9]{3}[A-Za-z]{2}")
_ADDRESS_SOORTEN_NEEDING_POSTCODE = ("01", "03")
_RESIDENTIAL_SOORTEN = ("01", "02", "03")


@REGISTRY.rule(
    "CS050",
    types=CLIENT_DATA_MESSAGES,
    other_releases={RELEASE_2_3: CLIENT_DATA_MESSAGES},
    summary="NaamGebruik is 1-4 when a Partnernaam is present, else 1 or 6.",
)
def check_name_usage(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS050: the name usage must fit whether a partner name is given."""
    for usage in doc.all_local("NaamGebruik"):
        name = usage.getparent()
        has_partner = name is not None and doc.find(name, "Partnernaam") is not None
        code = (raw(usage) or "").strip()
        if has_partner and code not in ("1", "2", "3", "4"):
            yield Violation(
                usage, f"NaamGebruik {code} is not allowed with a Partnernaam (use 1, 2, 3 or 4)."
            )
        elif not has_partner and code not in ("1", "6"):
            yield Violation(
                usage, f"NaamGebruik {code} is not allowed without a Partnernaam (use 1 or 6)."
            )


@REGISTRY.rule(
    "CS318",
    types=("JW301",),
    summary="The client's NaamGebruik is not 6 (niet-natuurlijk persoon).",
)
def check_client_not_legal_person(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS318: only relations may be a non-natural person, never the client."""
    for client in doc.all_local("Client"):
        usage = doc.find(client, "Naam/NaamGebruik")
        if usage is not None and (raw(usage) or "").strip() == "6":
            yield Violation(usage, "The client's NaamGebruik may not be 6 (non-natural person).")


@REGISTRY.rule(
    "TR061",
    types=("JW301",),
    summary="The client's Contactgegevens hold at least one Contact with Soort 01, 02 or 03.",
)
def check_residential_contact(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR061: a client needs a BRP, correspondence or residence address."""
    for client in doc.all_local("Client"):
        contacts = doc.find(client, "Contactgegevens")
        if contacts is None:
            continue
        soorten = [raw(soort) for c in contacts if (soort := doc.find(c, "Soort")) is not None]
        if not any(s in _RESIDENTIAL_SOORTEN for s in soorten):
            found = ", ".join(s or "?" for s in soorten)
            yield Violation(contacts, f"No client Contact has Soort 01, 02 or 03 (found: {found}).")


@REGISTRY.rule(
    "TR006",
    types=("JW301",),
    summary="Every Contact has a Telefoon, or an Adres with both Huis and Postcode.",
)
def check_contact_reachable(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR006: a contact without telephone needs a house and postcode."""
    for contact in doc.all_local("Contact"):
        if doc.find(contact, "Telefoon") is not None:
            continue
        missing = [
            part
            for part, path in (("Huis", "Adres/Huis"), ("Postcode", "Adres/Postcode"))
            if doc.find(contact, path) is None
        ]
        if missing:
            yield Violation(
                contact,
                f"Contact (Soort {raw(doc.find(contact, 'Soort'))}) has no Telefoon and its Adres "
                f"lacks {' and '.join(missing)}.",
            )


@REGISTRY.rule(
    "CD005",
    types=CLIENT_DATA_MESSAGES,
    other_releases={RELEASE_2_3: CLIENT_DATA_MESSAGES},
    summary="An Adres has a LandCode if and only if it has a Postcode.",
)
def check_landcode_with_postcode(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD005: Postcode and LandCode come together (reported on the one present)."""
    for address in doc.all_local("Adres"):
        postcode, landcode = doc.find(address, "Postcode"), doc.find(address, "LandCode")
        if postcode is not None and is_filled(postcode) and not is_filled(landcode):
            yield Violation(postcode, "The Adres has a Postcode but no LandCode.")
        if landcode is not None and is_filled(landcode) and not is_filled(postcode):
            yield Violation(landcode, f"The Adres has LandCode {raw(landcode)} but no Postcode.")


@REGISTRY.rule(
    "CD025",
    types=CLIENT_DATA_MESSAGES,
    other_releases={RELEASE_2_3: CLIENT_DATA_MESSAGES},
    summary="An Adres with LandCode NL has a Huis/Huisnummer.",
)
def check_dutch_house_number(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD025: Dutch addresses need a house number."""
    for landcode in doc.all_local("LandCode"):
        address = landcode.getparent()
        if address is None or raw(landcode) != "NL":
            continue
        if not is_filled(doc.find(address, "Huis/Huisnummer")):
            yield Violation(landcode, "The Adres has LandCode NL but no Huis/Huisnummer.")


@REGISTRY.rule(
    "CD034",
    types=("JW301",),
    summary="A Contact with Soort 01 (BRP) or 03 (verblijf) has an Adres/Postcode.",
)
def check_postcode_for_main_address(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD034: BRP and residence addresses need a postcode."""
    for contact in doc.all_local("Contact"):
        soort = raw(doc.find(contact, "Soort"))
        if soort in _ADDRESS_SOORTEN_NEEDING_POSTCODE and not is_filled(
            doc.find(contact, "Adres/Postcode")
        ):
            yield Violation(contact, f"A Contact with Soort {soort} needs an Adres/Postcode.")


@REGISTRY.rule(
    "CS089",
    types=CLIENT_DATA_MESSAGES,
    other_releases={RELEASE_2_3: CLIENT_DATA_MESSAGES},
    summary="With LandCode NL the Postcode has the Dutch format 9999XX (first digit not 0).",
)
def check_dutch_postcode(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CS089: a Dutch postcode is four digits (not starting with 0) and two letters."""
    for landcode in doc.all_local("LandCode"):
        address = landcode.getparent()
        if address is None or raw(landcode) != "NL":
            continue
        postcode = doc.find(address, "Postcode")
        if postcode is None or not _DUTCH_POSTCODE.fullmatch(raw(postcode) or ""):
            # The postcode itself is never quoted: the path and the rule say what is wrong.
            shown = "missing" if postcode is None else "not in that format"
            yield Violation(
                postcode if postcode is not None else landcode,
                "LandCode NL requires a Dutch postcode of four digits (the first not 0) and "
                f"two capital letters; the Postcode is {shown}.",
            )


@REGISTRY.rule(
    "CD009",
    types=("JW301",),
    summary="A Contact has a Periode only when its Soort is 04 (tijdelijk adres).",
)
def check_period_only_temporary(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD009: only a temporary address has a validity period."""
    for contact in doc.all_local("Contact"):
        period = doc.find(contact, "Periode")
        soort = raw(doc.find(contact, "Soort"))
        if period is not None and soort != "04":
            yield Violation(
                period, f"A Contact with Soort {soort} may not have a Periode (only 04)."
            )


@REGISTRY.rule(
    "CD007",
    types=CLIENT_DATA_MESSAGES,
    other_releases={RELEASE_2_3: CLIENT_DATA_MESSAGES},
    summary="Communicatie/Taal is filled if and only if Communicatie/Vorm is 1 (tolk taal).",
)
def check_language_with_interpreter(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD007: a language belongs to a spoken-language interpreter, and only to that."""
    for communication in doc.all_local("Communicatie"):
        vorm = doc.find(communication, "Vorm")
        taal = doc.find(communication, "Taal")
        needs_language = vorm is not None and raw(vorm) == "1"
        if needs_language != is_filled(taal):
            at_fault = taal if taal is not None else vorm if vorm is not None else communication
            yield Violation(
                at_fault,
                f"Communicatie Vorm {raw(vorm)} "
                + ("requires a Taal." if needs_language else "may not have a Taal (only Vorm 1)."),
            )
