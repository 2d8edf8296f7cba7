"""What translating one message produces (rewrites, undecided, refused and kept products, the
new ledger pairs and converted claim lines), and the state of one translation run that
:mod:`gateway.core.translation` and :mod:`gateway.core.conversion` share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction

from gateway.core.document import Element, text
from gateway.core.errors import GatewayError
from gateway.core.ledger import ClaimLine, LedgerEntry, LedgerKey, TranslationLedger
from gateway.core.lists import ContractTable
from gateway.core.mapping_tables import MappingTable, Product

NEEDS_MAPPING_DECISION = "needs mapping decision"
DBC_CLOSED_RETOURCODE = "S329"
"""The answer to a product for a DBC that closed before the transition: the receiver's own
TR381 would answer S329 for that product, which is on no list of its generation."""


class TranslationError(GatewayError):
    """The message cannot be translated at all (not XML, not an iJw message, no gemeente)."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One field changed: its path, what it said, what it says now, and on what basis."""

    path: str
    old: str
    new: str
    basis: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.old} -> {self.new} ({self.basis})"


@dataclass(frozen=True, slots=True)
class Undecided:
    """A product the gateway will not translate on its own: an operator must pick the target."""

    path: str
    product: Product | None
    reason: str
    key: str | None = None
    candidates: tuple[Product, ...] = ()
    pairs: tuple[LedgerEntry, ...] = ()
    """The pair each table candidate would record (units and declared conversion included): a
    decision that picks a candidate records that pair, so it converts as the table would."""

    def __str__(self) -> str:
        what = f" {self.product}" if self.product is not None else ""
        options = ", ".join(map(str, self.candidates))
        suffix = f" [candidates: {options}]" if options else ""
        return f"{NEEDS_MAPPING_DECISION}: {self.path}{what}: {self.reason}{suffix}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A product the receiver cannot accept at all, with the retourcode that answers it: a
    jeugd-GGZ DBC that had closed before the transition has no run-off product."""

    path: str
    product: Product
    reason: str
    retourcode: str = DBC_CLOSED_RETOURCODE
    key: str | None = None

    def __str__(self) -> str:
        return f"refused {self.path} {self.product} ({self.retourcode}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Kept:
    """A product deliberately left as it was, and why (shown by ``gateway translate``)."""

    path: str
    product: Product
    reason: str

    def __str__(self) -> str:
        return f"kept {self.path} {self.product}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Translation:
    """The outcome of translating one message.

    When ``needs_decision`` is true the message must be held: ``xml`` then holds only the
    rewrites that were certain, and ``new_entries`` is empty so nothing half-decided is recorded.
    """

    message_type: str
    gemeente: str
    to_generation: str
    xml: bytes
    rewrites: tuple[Rewrite, ...] = ()
    undecided: tuple[Undecided, ...] = ()
    kept: tuple[Kept, ...] = ()
    new_entries: tuple[LedgerEntry, ...] = ()
    refused: tuple[Refusal, ...] = ()
    new_claim_lines: tuple[ClaimLine, ...] = ()
    """JW323 lines converted under a declared conversion, to record with the message."""

    @property
    def needs_decision(self) -> bool:
        """True when the message must be held for an operator's mapping decision."""
        return bool(self.undecided)

    @property
    def changed(self) -> bool:
        """True when any field was rewritten."""
        return bool(self.rewrites)


@dataclass
class Run:
    table: MappingTable
    ledger: TranslationLedger
    to_generation: str
    gemeente: str
    as_of: dt.date
    rewrites: list[Rewrite] = field(default_factory=list)
    undecided: list[Undecided] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    new_entries: dict[LedgerKey, LedgerEntry] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    root: Element | None = None
    contracts: ContractTable | None = None
    claim_lines: list[ClaimLine] = field(default_factory=list)
    claimed_months: set[tuple[LedgerKey, int, int]] = field(default_factory=set)
    recorded_claims: dict[str, ClaimLine] | None = None
    vat_lines: bool = False  # a 2.3 JW303/JW304: declaration lines with VAT
    # A JW304: what its restored lines granted (signed) less what they grant as declared.
    granted_shift: int = 0

    def header(self, name: str) -> str:
        return text(self.root, f"Header/{name}") or ""

    def lookup(self, key: LedgerKey) -> LedgerEntry | None:
        # Entries made earlier in this message count too: one allocation, one pair.
        return self.new_entries.get(key) or self.ledger.get(key)


def whole(value: str | None) -> Fraction | None:
    try:
        return Fraction(int((value or "").strip()))
    except ValueError:
        return None


def key_text(key: LedgerKey | str | None) -> str | None:
    return None if key is None else str(key)
