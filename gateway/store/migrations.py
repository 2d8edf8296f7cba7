"""How the schema is built and upgraded: ordered, append-only migration steps."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy import (
    and_,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from gateway.core.catalogue import ORIGINAL_TYPES
from gateway.core.errors import StoreError
from gateway.core.model import Direction, State
from gateway.core.translation import NEEDS_MAPPING_DECISION
from gateway.store.search import (
    extract_keys,
    key_rows,
    rule_keys,
)
from gateway.store.tables import (
    CORRELATIONS,
    DEADLINE_NOTICES,
    FINDINGS,
    IDEMPOTENCY_INDEX,
    IDENTIFICATIE_INDEX,
    LEDGER,
    MESSAGE_KEYS,
    MESSAGES,
    METADATA,
    PAYLOADS,
    REGISTER,
    REWRITES,
    SCHEMA_VERSION,
    SEARCH_INDEXES,
    TRANSLATIONS,
)

# Any fixed 64-bit number works; it only has to be the same for every gateway process.
MIGRATION_LOCK_KEY = 0x1A_3232_6A77


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Version 1 builds the current tables; later steps upgrade old files."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    METADATA.create_all(conn)


def _operator_search(conn: Connection) -> None:
    """Version 2: replay links, the key index and the search indexes; backfill the keys."""
    conn.execute(text("ALTER TABLE messages ADD COLUMN replay_of VARCHAR(26)"))
    MESSAGE_KEYS.create(conn)
    conn.execute(text("DROP INDEX ux_messages_idempotency"))
    IDEMPOTENCY_INDEX.create(conn)
    for index in SEARCH_INDEXES:
        if index.table is MESSAGES:  # the key table's own index came with the table
            index.create(conn)
    backfill_keys(conn)


def backfill_keys(conn: Connection, batch: int = 1000) -> int:
    """Index the keys of every stored message that has none yet (payloads and findings).

    Used by the migration that introduced the key index; safe to run again. Returns how many
    messages got keys.
    """
    done = 0
    after = ""
    while True:
        rows = conn.execute(
            select(PAYLOADS.c.message_id, PAYLOADS.c.raw, FINDINGS.c.findings_json)
            .outerjoin(FINDINGS, FINDINGS.c.message_id == PAYLOADS.c.message_id)
            .where(
                PAYLOADS.c.message_id > after,
                ~exists().where(MESSAGE_KEYS.c.message_id == PAYLOADS.c.message_id),
            )
            .order_by(PAYLOADS.c.message_id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        values: list[dict[str, str]] = []
        for message_id, raw, findings_json in rows:
            keys = extract_keys(bytes(raw))
            if findings_json:
                keys += rule_keys(json.loads(findings_json))
            values += key_rows(message_id, keys)
            done += 1 if keys else 0
        if values:
            conn.execute(insert(MESSAGE_KEYS), values)
        after = rows[-1][0]


def _correlations(conn: Connection) -> None:
    """Version 3: the heen/retour correlation table and its indexes.

    Messages stored before it are not correlated (they never show as waiting for a retour).
    """
    CORRELATIONS.create(conn, checkfirst=True)


def _register(conn: Connection) -> None:
    """Version 4: the dossier register the cross-message rules read (with its indexes).

    Messages stored before it are not in the register: the rules see only later traffic.
    """
    REGISTER.create(conn, checkfirst=True)


def _translation(conn: Connection) -> None:
    """Version 5: the translation ledger, per-message translations and their rewrites."""
    for table in (LEDGER, TRANSLATIONS, REWRITES):
        table.create(conn, checkfirst=True)


def _deadline_notices(conn: Connection) -> None:
    """Version 6: the once-only overdue notices of the request clocks."""
    DEADLINE_NOTICES.create(conn, checkfirst=True)


def _identificatie_claims(conn: Connection) -> None:
    """Version 7: one message per sender, type and BerichtIdentificatie holds it.

    Of the stored inbound originals that went on (not rejected, not held for a mapping
    decision, not replays; see ``claims_identificatie``) the first per key
    holds it; any later one that reused the key stays as it is, so an existing database that
    already holds reused ids upgrades all the same.
    """
    conn.execute(text("ALTER TABLE messages ADD COLUMN identificatie_claim INTEGER"))
    first_per_key = (
        select(func.min(MESSAGES.c.id))
        .where(
            MESSAGES.c.direction == Direction.INBOUND.value,
            MESSAGES.c.replay_of.is_(None),
            MESSAGES.c.bericht_id.is_not(None),
            MESSAGES.c.message_type.in_(ORIGINAL_TYPES),
            MESSAGES.c.state != State.REJECTED.value,
            ~and_(
                MESSAGES.c.state == State.HELD.value,
                MESSAGES.c.reason.startswith(NEEDS_MAPPING_DECISION),
            ),
        )
        .group_by(MESSAGES.c.sender, MESSAGES.c.message_type, MESSAGES.c.bericht_id)
    )
    conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(first_per_key.scalar_subquery()))
        .values(identificatie_claim=1)
    )
    IDENTIFICATIE_INDEX.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "messages, payloads, events, findings, audit, party holds", _create_tables),
    Migration(2, "operator search: replay links, message keys, search indexes", _operator_search),
    Migration(3, "heen/retour correlations and retour deadlines", _correlations),
    Migration(4, "dossier register for the cross-message rules", _register),
    Migration(5, "product-code translation: ledger, translations, rewrites", _translation),
    Migration(6, "overdue notices of the request clocks", _deadline_notices),
    Migration(
        7, "one holder per sender, message type and BerichtIdentificatie", _identificatie_claims
    ),
)
"""Ordered schema steps. Append only: a change to the tables above needs a new step that
brings older databases to the same shape (a fresh database gets the current tables at once)."""


def migrate(conn: Connection) -> None:
    """Create or upgrade the schema in the write transaction ``conn``.

    On PostgreSQL a transaction-scoped advisory lock serialises two processes migrating at once
    (SQLite's write lock does that there). A fresh database gets the current tables from the
    first step and every later step only recorded.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    SCHEMA_VERSION.create(conn, checkfirst=True)
    applied = set(conn.execute(select(SCHEMA_VERSION.c.version)).scalars())
    known = {m.version for m in MIGRATIONS}
    if applied - known:
        raise StoreError(f"database schema version {max(applied)} is newer than this gateway knows")
    now = dt.datetime.now(dt.UTC)
    fresh = not applied
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        if not fresh or migration.version == MIGRATIONS[0].version:
            migration.apply(conn)
        conn.execute(
            insert(SCHEMA_VERSION).values(
                version=migration.version,
                description=migration.description,
                applied_at=now,
            )
        )


def schema_version(conn: Connection) -> int:
    """The highest applied migration (0 for an empty database)."""
    if not conn.dialect.has_table(conn, SCHEMA_VERSION.name):
        return 0
    return int(conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar() or 0)
