"""The translation ledger: code pairs recorded first-wins, per-message translations and rewrites."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    Row,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from gateway.core.ledger import ClaimAmounts, ClaimLine, LedgerEntry, LedgerKey, Omvang, Origin
from gateway.core.ledger import KeyKind as LedgerKind
from gateway.core.mapping_tables import Conversion, Product
from gateway.core.model import State
from gateway.core.translation import NEEDS_MAPPING_DECISION, Rewrite, Undecided
from gateway.store.base import (
    CoverageRow,
    StoredTranslation,
    TranslationRecord,
)
from gateway.store.database import Database, Repository, driver_errors
from gateway.store.dialect import insert_rows, time_parameter
from gateway.store.rows import (
    CLAIM_LINE_COLUMNS,
    LEDGER_COLUMNS,
    REWRITE_COLUMNS,
    TRANSLATION_COLUMNS,
    utc,
)
from gateway.store.tables import (
    CLAIM_LINES,
    LEDGER,
    MESSAGES,
    PAYLOADS,
    REWRITES,
    TRANSLATIONS,
)

LEDGER_CACHE_SIZE = 100_000
"""Most ledger pairs a store remembers after reading them (a few MB at most)."""


def ledger_row(entry: LedgerEntry, message_id: str | None, recorded_at: Any) -> tuple[Any, ...]:
    """A ledger pair's row in :data:`LEDGER_COLUMNS` order (``recorded_at`` already converted)."""
    factor = entry.volume_factor
    return (
        entry.key.gemeente,
        entry.key.kind.value,
        entry.key.number,
        entry.original.categorie,
        entry.original.code,
        entry.translated.categorie,
        entry.translated.code,
        entry.original_generation,
        entry.translated_generation,
        entry.origin.value,
        entry.basis,
        entry.unit_original,
        entry.unit_translated,
        None if factor is None else str(factor),
        entry.recorded_on.isoformat() if entry.recorded_on else None,
        entry.decided_by,
        entry.reference,
        message_id,
        recorded_at,
        conversion_text(entry),
    )


def conversion_text(entry: LedgerEntry) -> str | None:
    """The pair's declared conversion and source-side Omvang as stored (JSON), or None."""
    if entry.conversion is None:
        return None
    omvang = entry.source_omvang
    return json.dumps(
        {
            "conversion": entry.conversion.as_dict(),
            "source_omvang": None
            if omvang is None
            else [omvang.volume, omvang.eenheid, omvang.frequentie],
        },
        sort_keys=True,
    )


def _conversion_of(value: str | None) -> tuple[Conversion | None, Omvang | None]:
    if not value:
        return None, None
    data = json.loads(value)
    omvang = data.get("source_omvang")
    return Conversion.from_dict(data["conversion"]), (
        None if omvang is None else Omvang(int(omvang[0]), omvang[1], omvang[2])
    )


def _amounts_text(amounts: ClaimAmounts) -> str:
    figures: list[object] = [
        str(amounts.product),
        amounts.volume,
        amounts.eenheid,
        amounts.tarief,
        amounts.bedrag,
    ]
    if amounts.factuur_bedrag is not None:  # a 2.3 line: its VAT and invoice amount too
        figures += [amounts.btw_bedrag, amounts.factuur_bedrag]
    return json.dumps(figures)


def _amounts_of(value: str) -> ClaimAmounts:
    product, volume, eenheid, tarief, bedrag, *vat = json.loads(value)
    found = product_of(product)
    assert found is not None  # written by _amounts_text
    btw, factuur = vat or (None, None)
    return ClaimAmounts(found, int(volume), eenheid, int(tarief), int(bedrag), btw, factuur)


def claim_line_row(line: ClaimLine, message_id: str | None, recorded_at: Any) -> tuple[Any, ...]:
    """A converted declaration line in :data:`CLAIM_LINE_COLUMNS` order."""
    return (
        line.gemeente,
        line.aanbieder,
        line.declaratie,
        line.referentie,
        line.toewijzing,
        line.debet_credit,
        _amounts_text(line.sent),
        _amounts_text(line.delivered),
        message_id,
        recorded_at,
    )


def claim_line_of(row: Row[Any]) -> ClaimLine:
    """A stored converted declaration line."""
    return ClaimLine(
        gemeente=row.gemeente,
        aanbieder=row.aanbieder,
        declaratie=row.declaratie,
        referentie=row.referentie,
        toewijzing=row.toewijzing,
        debet_credit=row.debet_credit,
        sent=_amounts_of(row.sent),
        delivered=_amounts_of(row.delivered),
    )


def ledger_entry_of(row: Row[Any]) -> LedgerEntry:
    conversion, source_omvang = _conversion_of(row.conversion)
    return LedgerEntry(
        key=LedgerKey(row.gemeente, LedgerKind(row.kind), row.number),
        original=Product(row.original_categorie, row.original_code),
        translated=Product(row.translated_categorie, row.translated_code),
        original_generation=row.original_generation,
        translated_generation=row.translated_generation,
        origin=Origin(row.origin),
        basis=row.basis,
        unit_original=row.unit_original,
        unit_translated=row.unit_translated,
        volume_factor=Fraction(row.volume_factor) if row.volume_factor else None,
        recorded_on=dt.date.fromisoformat(row.recorded_on) if row.recorded_on else None,
        decided_by=row.decided_by,
        reference=row.reference,
        conversion=conversion,
        source_omvang=source_omvang,
    )


def product_of(value: str | None) -> Product | None:
    if not value:
        return None
    categorie, _, code = value.partition("/")
    return Product(categorie, code)


def undecided_problem(item: Undecided) -> str:
    """A short name for why a product waits for a decision (grouped by ``mappings coverage``)."""
    if item.reason.startswith("no mapping"):
        return "no mapping"
    if item.reason.startswith("one-to-many"):
        return "one-to-many"
    if "Eenheid" in item.reason:
        return "unit change"
    return "other"


DECIDED = "decided "
"""Prefix of a rewrite row's kind once an operator decided it (kept for coverage)."""


def rewrite_rows(
    message_id: str, record: TranslationRecord, first: int = 0
) -> list[tuple[Any, ...]]:
    """A translation's rewrites, then its undecided products, in :data:`REWRITE_COLUMNS` order."""
    rows: list[tuple[Any, ...]] = [
        (
            message_id,
            first + position,
            "rewrite",
            rewrite.path,
            rewrite.old[:50],
            rewrite.new[:50],
            rewrite.basis,
            rewrite.key,
            None,
        )
        for position, rewrite in enumerate(record.rewrites)
    ]
    first += len(record.rewrites)
    rows += [
        (
            message_id,
            first + position,
            undecided_problem(item),
            item.path,
            str(item.product) if item.product is not None else None,
            None,
            item.reason,
            item.key,
            ",".join(map(str, item.candidates)) or None,
        )
        for position, item in enumerate(record.undecided)
    ]
    return rows


def insert_ledger(
    conn: Connection,
    dialect: str,
    pairs: Sequence[tuple[LedgerEntry, str | None]],
    now: dt.datetime,
) -> None:
    """Record ledger pairs (each with the message that starts it) first-wins."""
    recorded_at = time_parameter(dialect)(now)
    rows = [ledger_row(entry, message_id, recorded_at) for entry, message_id in pairs]
    # First translation wins: a key that has a pair keeps it (also against another process, and
    # between two pairs of one call: rows go in this order).
    insert_rows(conn, dialect, LEDGER, LEDGER_COLUMNS, rows, on_conflict="DO NOTHING")


def insert_translations(
    conn: Connection,
    dialect: str,
    translations: Sequence[tuple[str, TranslationRecord, dt.datetime]],
    first_position: int = 0,
) -> None:
    """Insert translations (message id, record, when its ledger pairs are recorded) whose
    messages have none stored: one executemany each for translations, rewrites and ledger."""
    if not translations:
        return
    heads = [
        (message_id, r.gemeente, r.from_generation, r.to_generation, r.translated)
        for message_id, r, _ in translations
    ]
    insert_rows(conn, dialect, TRANSLATIONS, TRANSLATION_COLUMNS, heads)
    rewrites = [
        row
        for message_id, record, _ in translations
        for row in rewrite_rows(message_id, record, first_position)
    ]
    insert_rows(conn, dialect, REWRITES, REWRITE_COLUMNS, rewrites)
    time = time_parameter(dialect)
    ledger = [
        ledger_row(entry, message_id, time(at))
        for message_id, record, at in translations
        for entry in record.entries
    ]
    insert_rows(conn, dialect, LEDGER, LEDGER_COLUMNS, ledger, on_conflict="DO NOTHING")
    claims = [
        claim_line_row(line, message_id, time(at))
        for message_id, record, at in translations
        for line in record.claim_lines
    ]
    # First record wins, as for ledger pairs: a re-sent declaration keeps what was delivered.
    insert_rows(conn, dialect, CLAIM_LINES, CLAIM_LINE_COLUMNS, claims, on_conflict="DO NOTHING")


def write_translation(
    conn: Connection,
    dialect: str,
    message_id: str,
    record: TranslationRecord,
    now: dt.datetime,
) -> None:
    """Store (or replace) a message's translation."""
    # Replaced rewrites go; what waited for a decision stays, marked decided, so coverage
    # still counts the codes the tables could not translate.
    mine = REWRITES.c.message_id == message_id
    conn.execute(delete(REWRITES).where(mine, REWRITES.c.kind == "rewrite"))
    conn.execute(
        update(REWRITES)
        .where(mine, ~REWRITES.c.kind.startswith(DECIDED))
        .values(kind=DECIDED + REWRITES.c.kind)
    )
    first = conn.execute(select(func.max(REWRITES.c.position)).where(mine)).scalar()
    conn.execute(delete(TRANSLATIONS).where(TRANSLATIONS.c.message_id == message_id))
    insert_translations(
        conn, dialect, [(message_id, record, now)], 0 if first is None else int(first) + 1
    )


class TranslationLedger(Repository):
    """Reads and records ledger pairs and message translations."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        # Ledger pairs are never changed once recorded (first translation wins, a decision
        # cannot replace one), so a pair read once may be remembered; misses are not.
        self._ledger_seen: dict[LedgerKey, LedgerEntry] = {}

    def ledger_entry(self, key: LedgerKey) -> LedgerEntry | None:
        """The pair recorded for an allocation or request, or None."""
        known = self._ledger_seen.get(key)
        if known is not None:
            return known
        with driver_errors("reading the translation ledger"), self._db.read() as conn:
            row = conn.execute(
                select(LEDGER).where(
                    LEDGER.c.gemeente == key.gemeente,
                    LEDGER.c.kind == key.kind.value,
                    LEDGER.c.number == key.number,
                )
            ).first()
        if row is None:
            return None
        entry = ledger_entry_of(row)
        if len(self._ledger_seen) >= LEDGER_CACHE_SIZE:
            self._ledger_seen.clear()  # bounded memory; the next reads refill it
        self._ledger_seen[key] = entry
        return entry

    def ledger_requests(self, gemeente: str, referentie: str) -> tuple[LedgerEntry, ...]:
        """Every request pair of a ReferentieAanbieder, in key order."""
        with driver_errors("reading the translation ledger"), self._db.read() as conn:
            rows = conn.execute(
                select(LEDGER)
                .where(
                    LEDGER.c.gemeente == gemeente,
                    LEDGER.c.kind == LedgerKind.VERZOEK.value,
                    or_(LEDGER.c.number == referentie, LEDGER.c.number.like(f"{referentie}#%")),
                )
                .order_by(LEDGER.c.number)
            ).all()
        # LIKE treats '_' and '%' in the reference as wildcards; the exact check drops those.
        entries = (ledger_entry_of(row) for row in rows)
        return tuple(e for e in entries if e.key.referentie == referentie)

    def ledger_claim_lines(
        self, gemeente: str, aanbieder: str, declaratie: str
    ) -> tuple[ClaimLine, ...]:
        """The declaration lines converted for one declaration, in ReferentieNummer order."""
        with driver_errors("reading converted declaration lines"), self._db.read() as conn:
            rows = conn.execute(
                select(CLAIM_LINES)
                .where(
                    CLAIM_LINES.c.gemeente == gemeente,
                    CLAIM_LINES.c.aanbieder == aanbieder,
                    CLAIM_LINES.c.declaratie == declaratie,
                )
                .order_by(CLAIM_LINES.c.referentie)
            ).all()
        return tuple(claim_line_of(row) for row in rows)

    def record_ledger(self, entries: Sequence[LedgerEntry], message_id: str | None) -> None:
        """Record pairs first-wins: a key that has a pair already keeps it."""
        with driver_errors("recording translation pairs"), self._db.write() as conn:
            pairs = [(entry, message_id) for entry in entries]
            insert_ledger(conn, self._db.dialect, pairs, dt.datetime.now(dt.UTC))

    def save_translation(self, message_id: str, record: TranslationRecord) -> None:
        """Store (or replace) a message's translation and record its ledger pairs."""
        with driver_errors("saving a translation"), self._db.write() as conn:
            write_translation(conn, self._db.dialect, message_id, record, dt.datetime.now(dt.UTC))

    def translation_of(self, message_id: str) -> StoredTranslation | None:
        """The stored translation of a message, or None when it was never translated."""
        with driver_errors("reading a translation"), self._db.read() as conn:
            head = conn.execute(
                select(
                    TRANSLATIONS.c.gemeente,
                    TRANSLATIONS.c.from_generation,
                    TRANSLATIONS.c.to_generation,
                    TRANSLATIONS.c.translated.is_not(None),
                ).where(TRANSLATIONS.c.message_id == message_id)
            ).first()
            if head is None:
                return None
            rows = conn.execute(
                select(REWRITES)
                .where(REWRITES.c.message_id == message_id)
                .order_by(REWRITES.c.position)
            ).all()
        rewrites = tuple(
            Rewrite(r.path, r.original or "", r.translated or "", r.basis, r.ledger_key)
            for r in rows
            if r.kind == "rewrite"
        )
        undecided = tuple(
            Undecided(
                r.path,
                product_of(r.original),
                r.basis,
                r.ledger_key,
                tuple(p for p in map(product_of, (r.candidates or "").split(",")) if p),
            )
            for r in rows
            if r.kind != "rewrite" and not r.kind.startswith(DECIDED)
        )
        return StoredTranslation(head[0], head[1], head[2], bool(head[3]), rewrites, undecided)

    def waiting_on(self, ledger_keys: Sequence[str]) -> dict[str, list[str]]:
        """The held messages in which each of these ledger keys waits for a mapping decision:
        key -> message ids, oldest first (keys nothing waits on are left out)."""
        if not ledger_keys:
            return {}
        query = (
            select(REWRITES.c.ledger_key, REWRITES.c.message_id)
            .select_from(REWRITES)
            .join(MESSAGES, MESSAGES.c.id == REWRITES.c.message_id)
            .where(
                REWRITES.c.ledger_key.in_(sorted(set(ledger_keys))),
                REWRITES.c.kind != "rewrite",
                REWRITES.c.kind.not_like(f"{DECIDED}%"),
                MESSAGES.c.state == State.HELD.value,
                MESSAGES.c.reason.like(f"{NEEDS_MAPPING_DECISION}%"),
            )
            .order_by(REWRITES.c.message_id)
        )
        with driver_errors("reading the messages waiting for a decision"), self._db.read() as conn:
            rows = conn.execute(query).all()
        found: dict[str, list[str]] = {}
        for key, message_id in rows:
            ids = found.setdefault(str(key), [])
            if message_id not in ids:
                ids.append(str(message_id))
        return found

    def delivery_payload(self, message_id: str) -> bytes | None:
        """The bytes to deliver: the translation when there is one, else the raw bytes."""
        with driver_errors("reading a payload"), self._db.read() as conn:
            row = conn.execute(
                select(PAYLOADS.c.raw, TRANSLATIONS.c.translated)
                .select_from(PAYLOADS)
                .outerjoin(TRANSLATIONS, TRANSLATIONS.c.message_id == PAYLOADS.c.message_id)
                .where(PAYLOADS.c.message_id == message_id)
            ).first()
        if row is None:
            return None
        chosen = row[1] if row[1] is not None else row[0]
        return bytes(chosen)

    def translation_coverage(self, since: dt.datetime | None = None) -> list[CoverageRow]:
        """Products in messages received since ``since`` that waited for a mapping decision."""
        product = REWRITES.c.original
        problem = func.replace(REWRITES.c.kind, DECIDED, "")
        query = (
            select(
                TRANSLATIONS.c.gemeente,
                TRANSLATIONS.c.from_generation,
                TRANSLATIONS.c.to_generation,
                product,
                problem,
                func.count(func.distinct(REWRITES.c.message_id)),
                func.min(MESSAGES.c.received_at),
                func.max(MESSAGES.c.received_at),
            )
            .select_from(REWRITES)
            .join(TRANSLATIONS, TRANSLATIONS.c.message_id == REWRITES.c.message_id)
            .join(MESSAGES, MESSAGES.c.id == REWRITES.c.message_id)
            .where(REWRITES.c.kind != "rewrite", product.is_not(None))
            .group_by(
                TRANSLATIONS.c.gemeente,
                TRANSLATIONS.c.from_generation,
                TRANSLATIONS.c.to_generation,
                product,
                problem,
            )
        )
        if since is not None:
            query = query.where(MESSAGES.c.received_at >= since)
        with driver_errors("reading translation coverage"), self._db.read() as conn:
            rows = conn.execute(query).all()
        found = [
            CoverageRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), utc(r[6]), utc(r[7])) for r in rows
        ]
        return sorted(found, key=lambda c: (-c.messages, c.gemeente, c.product, c.problem))
