"""The iJw message types: their BerichtCode, direction and which retour answers which original."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: The iJw releases the gateway carries: the current one, and 2.3 beside it (schemas/README.md).
CURRENT_RELEASE = "3.2"
RELEASE_2_3 = "2.3"


class Role(StrEnum):
    """Who sends a message type, as the header's Afzender identifies it."""

    GEMEENTE = "gemeente"
    AANBIEDER = "aanbieder"


@dataclass(frozen=True, slots=True)
class MessageKind:
    """One iJw message type, e.g. JW301 (BerichtCode 436) answered by JW302."""

    name: str
    berichtcode: str
    sender: Role
    answered_by: str | None
    answers: str | None
    other_codes: tuple[str, ...] = ()
    """More BerichtCodes of the type: a 2.3 JW303 is 432 (declaratie) or 450 (factuur)."""
    releases: tuple[str, ...] = (CURRENT_RELEASE, RELEASE_2_3)
    """The iJw releases that have this message type."""

    @property
    def berichtcodes(self) -> tuple[str, ...]:
        """Every BerichtCode of the type, the first one first."""
        return (self.berichtcode, *self.other_codes)

    @property
    def is_retour(self) -> bool:
        """True for a technical/functional retour (302, 306, ..., 325)."""
        return self.answers is not None


def _kind(
    name: str,
    code: str,
    sender: Role,
    answered_by: str | None = None,
    answers: str | None = None,
    *,
    other_codes: tuple[str, ...] = (),
    releases: tuple[str, ...] = (CURRENT_RELEASE, RELEASE_2_3),
) -> MessageKind:
    return MessageKind(name, code, sender, answered_by, answers, other_codes, releases)


G, A = Role.GEMEENTE, Role.AANBIEDER
ONLY_3_2, ONLY_2_3 = (CURRENT_RELEASE,), (RELEASE_2_3,)

# The header Afzender of a retour is copied from its original (IV028), so "sender" here is the
# party named in Afzender, not the party that transmits the retour.
MESSAGE_KINDS: dict[str, MessageKind] = {
    kind.name: kind
    for kind in (
        _kind("JW301", "436", G, answered_by="JW302"),
        _kind("JW302", "437", G, answers="JW301"),
        _kind("JW305", "438", A, answered_by="JW306"),
        _kind("JW306", "439", A, answers="JW305"),
        _kind("JW307", "440", A, answered_by="JW308"),
        _kind("JW308", "441", A, answers="JW307"),
        _kind("JW315", "446", A, answered_by="JW316"),
        _kind("JW316", "447", A, answers="JW315"),
        _kind("JW317", "486", A, answered_by="JW318", releases=ONLY_3_2),
        _kind("JW318", "487", A, answers="JW317", releases=ONLY_3_2),
        _kind("JW319", "488", G, answered_by="JW320", releases=ONLY_3_2),
        _kind("JW320", "489", G, answers="JW319", releases=ONLY_3_2),
        _kind("JW323", "490", A, answered_by="JW325", releases=ONLY_3_2),
        _kind("JW325", "491", G, answers="JW323", releases=ONLY_3_2),
        # iJw 2.3 only: the declaration or invoice (with VAT) and its answer, which names the
        # gemeente and the aanbieder in Header/Gemeente and Header/Aanbieder.
        _kind("JW303", "432", A, answered_by="JW304", other_codes=("450",), releases=ONLY_2_3),
        _kind("JW304", "433", G, answers="JW303", other_codes=("451",), releases=ONLY_2_3),
    )
}

ORIGINALS: frozenset[str] = frozenset(k.name for k in MESSAGE_KINDS.values() if not k.is_retour)
RETOURS: frozenset[str] = frozenset(k.name for k in MESSAGE_KINDS.values() if k.is_retour)
ALL_TYPES: frozenset[str] = frozenset(MESSAGE_KINDS)


def kinds_in(release: str) -> tuple[MessageKind, ...]:
    """The message types of an iJw release, in catalogue order."""
    return tuple(kind for kind in MESSAGE_KINDS.values() if release in kind.releases)


ORIGINAL_TYPES = ("JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323", "JW325")
"""Types whose BerichtIdentificatie is the sender's own, unique per sender and type (TR056):
the originals and the JW325; the other retours repeat their original's."""
