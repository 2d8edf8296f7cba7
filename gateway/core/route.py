"""The party registry and routing: who a message comes from, who it goes to, and whether now.

A party is a municipality (gemeente), a care provider (aanbieder) or the BVO that runs the
gateway. Messages name parties by their identity in the header (CBS gemeentecode or AGB code);
the registry maps those to configured parties with a delivery channel and a readiness.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from gateway.core.catalogue import MESSAGE_KINDS, Role


class PartyRole(StrEnum):
    """What kind of organisation a party is."""

    GEMEENTE = "gemeente"
    AANBIEDER = "aanbieder"
    BVO = "bvo"


class Channel(StrEnum):
    """How a party receives its messages."""

    MAILBOX = "mailbox"  # the party pulls over HTTP and acknowledges
    HTTP = "http"  # the gateway pushes to the party's URL
    FOLDER = "folder"  # the gateway writes files into outbox/<party>/
    GGK = "ggk"  # the gateway sends StUF-GGk envelopes to the GGk ([chain] ggk_url)


@dataclass(frozen=True, slots=True)
class GenerationStep:
    """From ``since`` (None: from the start) the party speaks product-code ``generation``."""

    generation: str
    since: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ReleaseStep:
    """From ``since`` (None: from the start) the party's software speaks iJw ``release``."""

    release: str
    since: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """One configured party. ``token_sha256`` is the hex SHA-256 of its API token, if any."""

    id: str
    role: PartyRole
    identity: str | None
    channel: Channel
    url: str | None = None
    token_sha256: str | None = None
    paused: bool = False
    not_ready_until: dt.date | None = None
    answered_by: str | None = None
    name: str | None = None
    generations: tuple[GenerationStep, ...] = ()
    chain_oins: tuple[str, ...] = ()
    """OINs whose client certificates may deliver StUF-GGk envelopes in this party's name."""
    releases: tuple[ReleaseStep, ...] = ()

    def generation_on(self, day: dt.date) -> str | None:
        """The product-code generation the party's software speaks on ``day``, if configured.

        None means the party takes part in no translation: its messages pass as they are.
        """
        return _step_on(((s.since, s.generation) for s in self.generations), day)

    def release_on(self, day: dt.date) -> str | None:
        """The iJw release the party's software speaks on ``day``, if configured.

        None means the party's messages are taken and delivered in the release they are in.
        """
        return _step_on(((s.since, s.release) for s in self.releases), day)

    def hold_reason(self, today: dt.date) -> str | None:
        """Why messages for this party must wait today, or None when it is ready."""
        if self.paused:
            return "party paused in configuration"
        if self.not_ready_until is not None and today < self.not_ready_until:
            return f"party not ready until {self.not_ready_until.isoformat()}"
        return None


def _step_on(steps: Iterable[tuple[dt.date | None, str]], day: dt.date) -> str | None:
    """The value of the last step, in date order, that has begun on ``day``."""
    current: str | None = None
    for since, value in steps:
        if since is None or since <= day:
            current = value
    return current


def token_digest(token: str) -> str:
    """The hex SHA-256 under which a token is stored in the configuration."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PartyRegistry:
    """Lookups over the configured parties: by id, by header identity and by API token."""

    def __init__(self, parties: Iterable[Party]) -> None:
        self._by_id: dict[str, Party] = {}
        self._by_identity: dict[str, Party] = {}
        for party in parties:
            self._by_id[party.id] = party
            if party.identity is not None:
                self._by_identity[party.identity] = party

    def __iter__(self) -> Iterator[Party]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, party_id: str) -> Party | None:
        """The party with this id, or None."""
        return self._by_id.get(party_id)

    def by_identity(self, identity: str | None) -> Party | None:
        """The party whose header identity (CBS or AGB code) this is, or None."""
        if identity is None:
            return None
        return self._by_identity.get(identity.strip())

    def authenticate(self, token: str) -> Party | None:
        """The party holding this API token, compared in constant time, or None."""
        digest = token_digest(token)
        found: Party | None = None
        for party in self._by_id.values():
            if party.token_sha256 is not None and hmac.compare_digest(party.token_sha256, digest):
                found = party
        return found


@dataclass(frozen=True, slots=True)
class Addressing:
    """Who transmits a message and who should get it, by header identity.

    For an original the transmitter is the header Afzender and the destination the Ontvanger.
    Most retours copy Afzender and Ontvanger from their original (IV028), so a JW302 travels
    from the header Ontvanger back to the header Afzender. JW325 is a message of its own: the
    municipality sends it as Afzender. The catalogue's ``sender`` role (the role the header
    Afzender has) tells the two cases apart.
    """

    transmitter: str | None
    destination: str | None


def addressing(message_type: str | None, afzender: str | None, ontvanger: str | None) -> Addressing:
    """Read transmitter and destination identities from a header, per message type."""
    kind = MESSAGE_KINDS.get(message_type or "")
    if kind is not None and kind.answers is not None:
        original = MESSAGE_KINDS[kind.answers]
        # The answer comes from the original's receiver, i.e. the role that did not send it.
        answering_role = Role.AANBIEDER if original.sender is Role.GEMEENTE else Role.GEMEENTE
        if kind.sender is not answering_role:
            return Addressing(transmitter=ontvanger, destination=afzender)
    return Addressing(transmitter=afzender, destination=ontvanger)


def may_transmit_as(party: Party, identity: str | None, registry: PartyRegistry) -> bool:
    """True when ``party`` may send messages carrying ``identity`` as transmitter.

    A party sends as itself; a BVO may also send on behalf of a party it answers for.
    """
    if identity is None:
        return False
    if party.identity == identity:
        return True
    represented = registry.by_identity(identity)
    return represented is not None and represented.answered_by == party.id


def outbox_name(message_id: str) -> str:
    """The file name a message gets in a folder outbox (stable, so a retry rewrites it)."""
    return f"{message_id}.xml"
