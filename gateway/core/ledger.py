"""The translation ledger: the pair of codes each translated allocation travels under.

Once the gateway has translated an allocation (gemeente, ToewijzingNummer), every later message
about it (changes, start, stop, declaration lines, retours) must use exactly the same pair, in
whichever direction it travels, so a round trip always restores the original code and the
receiving side never answers S329, 9339 or 9340 because of us (anchors.md finding 4).

Requests (JW315 products, JW317 new products) have no ToewijzingNummer yet; they are keyed by
the provider's ReferentieAanbieder so that their retours (JW316/JW318) and the JW301 that
honours them can be translated back.

A pair that changes the Eenheid under a declared :class:`~gateway.core.mapping_tables.Conversion`
carries that conversion and the source side's Omvang, so every later message about the
allocation converts the same way. A JW323 line converted under it is recorded as a
:class:`ClaimLine` (what the sender declared, what the receiver got), so the JW325 answer goes
back with the amounts as the sender declared them.

:func:`gateway.core.translation.translate` only reads the ledger; it returns the entries a
message would add, and the caller records them once the message is accepted for delivery
(a held message records nothing). The SQL-backed ledger implements the same Protocol.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Protocol

from gateway.core.errors import GatewayError
from gateway.core.mapping_tables import Conversion, Product


class KeyKind(StrEnum):
    """What a ledger key's number is."""

    TOEWIJZING = "toewijzing"
    VERZOEK = "verzoek"


@dataclass(frozen=True, slots=True, order=True)
class LedgerKey:
    """(gemeente, ToewijzingNummer) or (gemeente, ReferentieAanbieder[#position])."""

    gemeente: str
    kind: KeyKind
    number: str

    @classmethod
    def allocation(cls, gemeente: str, toewijzing_nummer: str) -> LedgerKey:
        """The key of an allocation."""
        return cls(gemeente, KeyKind.TOEWIJZING, toewijzing_nummer)

    @classmethod
    def request(cls, gemeente: str, referentie: str, position: int | None = None) -> LedgerKey:
        """The key of a requested product; ``position`` numbers the new products of a JW317."""
        number = referentie if position is None else f"{referentie}#{position}"
        return cls(gemeente, KeyKind.VERZOEK, number)

    @property
    def referentie(self) -> str | None:
        """The ReferentieAanbieder of a request key."""
        if self.kind is not KeyKind.VERZOEK:
            return None
        return self.number.partition("#")[0]

    def __str__(self) -> str:
        return f"{self.gemeente}/{self.kind.value}/{self.number}"


class Origin(StrEnum):
    """Who chose the pair."""

    TABLE = "table"
    OPERATOR = "operator"
    GEMEENTE = "gemeente"
    """Decided by the gemeente's toegang (a decision file read by ``gateway mappings decide``)."""
    REQUEST = "request"


@dataclass(frozen=True, slots=True)
class Omvang:
    """An allocation's or request's Omvang: Volume of Eenheid per Frequentie."""

    volume: int
    eenheid: str
    frequentie: str | None = None

    def __str__(self) -> str:
        per = f", Frequentie {self.frequentie}" if self.frequentie else ""
        return f"Volume {self.volume}, Eenheid {self.eenheid}{per}"


@dataclass(frozen=True, slots=True)
class ClaimAmounts:
    """One side of a converted declaration line: product, volume, unit, tariff and amount
    (eurocent, as written; the line's DebetCredit gives the sign). A 2.3 JW303 line also has
    its BtwBedrag (None when the line has none) and DeclaratieFactuurBedrag; ``bedrag`` is
    then its BerekendBedrag."""

    product: Product
    volume: int
    eenheid: str
    tarief: int
    bedrag: int
    btw_bedrag: int | None = None
    factuur_bedrag: int | None = None

    @property
    def claimed(self) -> int:
        """What the line claims: its DeclaratieFactuurBedrag (VAT included) in 2.3, else
        its amount."""
        return self.bedrag if self.factuur_bedrag is None else self.factuur_bedrag


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """A JW323 line converted under a declared conversion, keyed like the answer names it:
    (gemeente, aanbieder, DeclaratieNummer, ReferentieNummer)."""

    gemeente: str
    aanbieder: str
    declaratie: str
    referentie: str
    toewijzing: str
    debet_credit: str
    sent: ClaimAmounts
    delivered: ClaimAmounts

    def signed(self, amount: int) -> int:
        """``amount`` with the line's sign (credit lines count negative)."""
        return -amount if self.debet_credit == "C" else amount


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The pair one allocation or request travels under, and where it came from.

    ``original`` is what the first translated message carried, in ``original_generation``;
    ``translated`` is what the receiver got, in ``translated_generation``. Units are set only
    when the pair changes the Eenheid; then ``volume_factor`` (original -> translated), when
    known, converts Omvang.
    """

    key: LedgerKey
    original: Product
    translated: Product
    original_generation: str
    translated_generation: str
    origin: Origin = Origin.TABLE
    basis: str = ""
    unit_original: str | None = None
    unit_translated: str | None = None
    volume_factor: Fraction | None = None
    recorded_on: dt.date | None = None
    decided_by: str | None = None
    reference: str | None = None
    """What the decision rests on (the gemeente's reference, e.g. its family plan's number)."""
    conversion: Conversion | None = None
    """The declared conversion the pair was recorded with (it changes the Eenheid)."""
    source_omvang: Omvang | None = None
    """The Omvang the conversion's source side sent when the pair was recorded: the way back
    of a fixed-volume conversion restores it."""

    @property
    def changes_unit(self) -> bool:
        """True when the pair moves the allocation to another Eenheid."""
        return (
            self.unit_original is not None
            and self.unit_translated is not None
            and self.unit_original != self.unit_translated
        )

    def side_for(self, generation: str) -> Product | None:
        """The code of this pair in ``generation``, or None when neither side speaks it."""
        if generation == self.translated_generation:
            return self.translated
        if generation == self.original_generation:
            return self.original
        return None

    def other_side(self, product: Product) -> Product | None:
        """The partner of ``product`` in this pair, or None when it is on neither side."""
        if product == self.original:
            return self.translated
        if product == self.translated:
            return self.original
        return None


class LedgerConflict(GatewayError):
    """The ledger already holds a different pair for this key."""


class TranslationLedger(Protocol):
    """What translation needs from a ledger; the in-memory and SQL ledgers implement it."""

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for ``key``, or None."""
        ...

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request entry of a ReferentieAanbieder (one per requested product)."""
        ...

    def record(self, entry: LedgerEntry) -> None:
        """Store a pair; an identical pair is a no-op, a different one is a LedgerConflict."""
        ...

    def claim_lines(self, gemeente: str, aanbieder: str, declaratie: str) -> tuple[ClaimLine, ...]:
        """The converted lines of one declaration (its JW325 answer is translated with them)."""
        ...


class InMemoryLedger:
    """A dict-backed ledger for tests, the CLI and single-shot translation."""

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self._entries: dict[LedgerKey, LedgerEntry] = {}
        self._claims: dict[tuple[str, str, str, str], ClaimLine] = {}
        for entry in entries:
            self.record(entry)

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for ``key``, or None."""
        return self._entries.get(key)

    def requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request entry of a ReferentieAanbieder, in key order."""
        return tuple(
            entry
            for key, entry in sorted(self._entries.items())
            if key.gemeente == gemeente and key.referentie == referentie
        )

    def record(self, entry: LedgerEntry) -> None:
        """Store a pair; the first pair for a key wins and may never silently change."""
        existing = self._entries.get(entry.key)
        if existing is None:
            self._entries[entry.key] = entry
            return
        if (existing.original, existing.translated) != (entry.original, entry.translated):
            raise LedgerConflict(
                f"ledger {entry.key} already maps {existing.original} <-> {existing.translated}; "
                f"refusing {entry.original} <-> {entry.translated}"
            )

    def claim_lines(self, gemeente: str, aanbieder: str, declaratie: str) -> tuple[ClaimLine, ...]:
        """The converted lines of one declaration, in ReferentieNummer order."""
        return tuple(
            line
            for key, line in sorted(self._claims.items())
            if key[:3] == (gemeente, aanbieder, declaratie)
        )

    def record_claim_lines(self, lines: Iterable[ClaimLine]) -> None:
        """Record converted declaration lines; the first record of a line wins."""
        for line in lines:
            key = (line.gemeente, line.aanbieder, line.declaratie, line.referentie)
            self._claims.setdefault(key, line)

    def record_all(self, entries: Iterable[LedgerEntry]) -> None:
        """Record several pairs (what a delivered translation adds)."""
        for entry in entries:
            self.record(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(list(self._entries.values()))
