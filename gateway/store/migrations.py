"""How the schema is built and upgraded: ordered, append-only migration steps."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator

from sqlalchemy import (
    and_,
    bindparam,
    exists,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from gateway.core.catalogue import ORIGINAL_TYPES
from gateway.core.errors import PseudonymKeyMismatch, StoreError
from gateway.core.model import Direction, State
from gateway.core.privacy import Pseudonymizer
from gateway.core.translation import NEEDS_MAPPING_DECISION
from gateway.store.base import KeyKind
from gateway.store.register import SUBMITTED
from gateway.store.search import (
    bsns_in,
    extract_keys,
    key_rows,
    rule_keys,
)
from gateway.store.tables import (
    CHAIN_ENVELOPES,
    CLAIM_LINES,
    CORRELATIONS,
    DEADLINE_NOTICES,
    FINDINGS,
    IDEMPOTENCY_INDEX,
    IDENTIFICATIE_INDEX,
    JOB_LEASES,
    KEY_FINGERPRINTS,
    LEDGER,
    MESSAGE_KEYS,
    MESSAGES,
    METADATA,
    PAYLOADS,
    REGISTER,
    REWRITES,
    SCHEMA_VERSION,
    SEARCH_INDEXES,
    SETTLEMENTS,
    TRANSLATIONS,
)

# Any fixed 64-bit number works; it only has to be the same for every gateway process.
MIGRATION_LOCK_KEY = 0x1A_3232_6A77


def eleven_proof_bsns() -> Iterator[str]:
    """Every nine-digit number that passes the BSN 11-proof (about 9.1 x 10^7), in order."""
    # The last two digits complete the weighted sum of the first seven; per remainder of
    # that sum, the endings that make it a multiple of 11 (weights 2 and -1) are fixed.
    endings = [
        [f"{d8}{(r + 2 * d8) % 11}" for d8 in range(10) if (r + 2 * d8) % 11 < 10]
        for r in range(11)
    ]
    for head in range(10_000_000):
        rest, weighted = head, 0
        for weight in (3, 4, 5, 6, 7, 8, 9):
            rest, digit = divmod(rest, 10)
            weighted += weight * digit
        start = f"{head:07d}"
        for ending in endings[weighted % 11]:
            yield start + ending


@dataclasses.dataclass(frozen=True, slots=True)
class Upgrade:
    """What the steps need besides the connection: the store's client keys, and the BSNs a
    legacy client key is looked for among when no stored payload names its client."""

    pseudonyms: Pseudonymizer
    bsn_space: Callable[[], Iterable[str]] = eleven_proof_bsns


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Version 1 builds the current tables; later steps upgrade old files."""

    version: int
    description: str
    apply: Callable[[Connection, Upgrade], None]


def _create_tables(conn: Connection, _upgrade: Upgrade) -> None:
    METADATA.create_all(conn)


def _operator_search(conn: Connection, upgrade: Upgrade) -> None:
    """Version 2: replay links, the key index and the search indexes; backfill the keys."""
    conn.execute(text("ALTER TABLE messages ADD COLUMN replay_of VARCHAR(26)"))
    MESSAGE_KEYS.create(conn)
    conn.execute(text("DROP INDEX ux_messages_idempotency"))
    IDEMPOTENCY_INDEX.create(conn)
    for index in SEARCH_INDEXES:
        if index.table is MESSAGES:  # the key table's own index came with the table
            index.create(conn)
    backfill_keys(conn, upgrade.pseudonyms)


def backfill_keys(conn: Connection, pseudonyms: Pseudonymizer, batch: int = 1000) -> int:
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
            keys = extract_keys(bytes(raw), pseudonyms)
            if findings_json:
                keys += rule_keys(json.loads(findings_json))
            values += key_rows(message_id, keys)
            done += 1 if keys else 0
        if values:
            conn.execute(insert(MESSAGE_KEYS), values)
        after = rows[-1][0]


def _correlations(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 3: the heen/retour correlation table and its indexes.

    Messages stored before it are not correlated (they never show as waiting for a retour).
    """
    CORRELATIONS.create(conn, checkfirst=True)


def _register(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 4: the dossier register the cross-message rules read (with its indexes).

    Messages stored before it are not in the register: the rules see only later traffic.
    """
    REGISTER.create(conn, checkfirst=True)


def _translation(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 5: the translation ledger, per-message translations and their rewrites."""
    for table in (LEDGER, TRANSLATIONS, REWRITES):
        table.create(conn, checkfirst=True)


def _deadline_notices(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 6: the once-only overdue notices of the request clocks."""
    DEADLINE_NOTICES.create(conn, checkfirst=True)


def _settlements(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 9: periods of allocations settled outside the chain (with their index)."""
    SETTLEMENTS.create(conn, checkfirst=True)


def _chain_envelopes(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 13: envelopes of the national chain (with their indexes)."""
    CHAIN_ENVELOPES.create(conn, checkfirst=True)


LEGACY_KEY_LENGTH = 16
"""Hex characters of a client key before version 7 (SHA-256 with a public salt, cut short)."""


def _legacy_digest(bsn: str) -> bytes:
    # The old, unkeyed client key (as bytes): only here, to find what a legacy key stood for.
    return hashlib.sha256(b"ijw-gateway:" + bsn.encode("ascii")).digest()[: LEGACY_KEY_LENGTH // 2]


def _keyed_clients(conn: Connection, upgrade: Upgrade) -> None:
    """Version 7: client keys become HMAC-SHA256 under the gateway's secret, in full.

    Every legacy key (in the search index, the register's column and the submitted
    declarations' lines) is replaced by the new key of its BSN. The BSN comes from a stored
    payload that names it; a key whose every payload retention purged is found by trying the
    legacy hash over the BSN space (:func:`eleven_proof_bsns`, once, minutes). A key found
    nowhere (a BSN outside the space) gets a keyed stand-in, still equal wherever the old key
    was equal and no longer reversible.
    """
    index_keys = set(
        conn.execute(
            select(MESSAGE_KEYS.c.value)
            .where(
                MESSAGE_KEYS.c.kind == KeyKind.CLIENT.value,
                func.length(MESSAGE_KEYS.c.value) == LEGACY_KEY_LENGTH,
            )
            .distinct()
        ).scalars()
    )
    register_rows = conn.execute(
        select(REGISTER.c.id, REGISTER.c.message_id, REGISTER.c.client_key).where(
            func.length(REGISTER.c.client_key) == LEGACY_KEY_LENGTH
        )
    ).all()
    submitted = conn.execute(
        select(REGISTER.c.id, REGISTER.c.message_id, REGISTER.c.body).where(
            REGISTER.c.kind == SUBMITTED
        )
    ).all()
    line_keys = {
        row.id: [item.get("client_key") for item in json.loads(row.body).get("lines", [])]
        for row in submitted
    }
    legacy = index_keys | {str(row.client_key) for row in register_rows}
    legacy |= {k for keys in line_keys.values() for k in keys if _is_legacy(k)}
    if not legacy:
        return
    new_keys = _resolve_legacy(conn, legacy, upgrade)
    for old, new in sorted(new_keys.items()):
        conn.execute(
            update(MESSAGE_KEYS)
            .where(MESSAGE_KEYS.c.kind == KeyKind.CLIENT.value, MESSAGE_KEYS.c.value == old)
            .values(value=new)
        )
    if register_rows:
        conn.execute(
            update(REGISTER)
            .where(REGISTER.c.id == bindparam("row_id"))
            .values(client_key=bindparam("new_key")),
            [{"row_id": row.id, "new_key": new_keys[row.client_key]} for row in register_rows],
        )
    rewritten = []
    for row in submitted:
        if not any(_is_legacy(k) for k in line_keys[row.id]):
            continue
        body = json.loads(row.body)
        for item in body["lines"]:
            if _is_legacy(item.get("client_key")):
                item["client_key"] = new_keys[item["client_key"]]
        rewritten.append({"row_id": row.id, "new_body": json.dumps(body, sort_keys=True)})
    if rewritten:
        conn.execute(
            update(REGISTER)
            .where(REGISTER.c.id == bindparam("row_id"))
            .values(body=bindparam("new_body")),
            rewritten,
        )


def _is_legacy(key: object) -> bool:
    return isinstance(key, str) and len(key) == LEGACY_KEY_LENGTH


def _resolve_legacy(
    conn: Connection, legacy: Collection[str], upgrade: Upgrade, batch: int = 200
) -> dict[str, str]:
    """The new key for every legacy key in ``legacy``: first from the BSNs the stored
    payloads name, then by search over the BSN space, else a keyed stand-in."""
    wanted = {bytes.fromhex(key): key for key in legacy}
    found: dict[str, str] = {}
    after = ""
    while wanted:
        rows = conn.execute(
            select(PAYLOADS.c.message_id, PAYLOADS.c.raw)
            .where(PAYLOADS.c.message_id > after)
            .order_by(PAYLOADS.c.message_id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for _message_id, raw in rows:
            for bsn in bsns_in(bytes(raw)):
                old = wanted.pop(_legacy_digest(bsn), None)
                if old is not None:
                    found[old] = upgrade.pseudonyms.client_key(bsn)
        after = rows[-1][0]
    if wanted:
        for bsn in upgrade.bsn_space():
            old = wanted.pop(_legacy_digest(bsn), None)
            if old is not None:
                found[old] = upgrade.pseudonyms.client_key(bsn)
                if not wanted:
                    break
    for old in wanted.values():
        found[old] = upgrade.pseudonyms.client_key(f"legacy:{old}")
    return found


def _identificatie_claims(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 8: one message per sender, type and BerichtIdentificatie holds it.

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


def _decision_reference(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 10: the ledger records what a decision rests on (the gemeente's reference)."""
    columns = {column["name"] for column in inspect(conn).get_columns(LEDGER.name)}
    if "reference" not in columns:
        conn.execute(text(f"ALTER TABLE {LEDGER.name} ADD COLUMN reference VARCHAR(200)"))


def _conversions(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 11: declared conversions: the ledger keeps a pair's conversion, and the
    declaration lines converted under one are kept for their answer."""
    columns = {column["name"] for column in inspect(conn).get_columns(LEDGER.name)}
    if "conversion" not in columns:
        conn.execute(text(f"ALTER TABLE {LEDGER.name} ADD COLUMN conversion TEXT"))
    CLAIM_LINES.create(conn, checkfirst=True)


def _job_leases(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 12: the leases that let several nodes share one database's jobs."""
    JOB_LEASES.create(conn, checkfirst=True)


def _key_fingerprints(conn: Connection, _upgrade: Upgrade) -> None:
    """Version 14: the fingerprint of the pseudonym key the client keys are made with.

    A store upgraded to it takes the fingerprint of the key it is upgraded with (that key is
    trusted to be the one its rows were made with, as every start before trusted it).
    """
    KEY_FINGERPRINTS.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "messages, payloads, events, findings, audit, party holds", _create_tables),
    Migration(2, "operator search: replay links, message keys, search indexes", _operator_search),
    Migration(3, "heen/retour correlations and retour deadlines", _correlations),
    Migration(4, "dossier register for the cross-message rules", _register),
    Migration(5, "product-code translation: ledger, translations, rewrites", _translation),
    Migration(6, "overdue notices of the request clocks", _deadline_notices),
    Migration(7, "keyed client pseudonyms: HMAC-SHA256 in full", _keyed_clients),
    Migration(
        8, "one holder per sender, message type and BerichtIdentificatie", _identificatie_claims
    ),
    Migration(9, "allocations settled outside the chain", _settlements),
    Migration(10, "translation ledger: the reference a decision rests on", _decision_reference),
    Migration(11, "declared conversions: ledger conversions, converted claim lines", _conversions),
    Migration(12, "job leases: several nodes on one database", _job_leases),
    Migration(13, "StUF-GGk envelopes by referentienummer, with their answers", _chain_envelopes),
    Migration(
        14, "pseudonym key fingerprint: a process with another key is refused", _key_fingerprints
    ),
)
"""Ordered schema steps. Append only: a change to the tables above needs a new step that
brings older databases to the same shape (a fresh database gets the current tables at once)."""


def migrate(conn: Connection, upgrade: Upgrade) -> None:
    """Create or upgrade the schema in the write transaction ``conn``, then check the
    pseudonym key; ``upgrade`` carries what steps that write client keys need.

    On PostgreSQL a transaction-scoped advisory lock serialises two processes migrating at once
    (SQLite's write lock does that there). A fresh database gets the current tables from the
    first step and every later step only recorded. ``PseudonymKeyMismatch`` when the store's
    client keys were made with another key than ``upgrade.pseudonyms`` (nothing is changed).
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
            migration.apply(conn, upgrade)
        conn.execute(
            insert(SCHEMA_VERSION).values(
                version=migration.version,
                description=migration.description,
                applied_at=now,
            )
        )
    _hold_pseudonym_key(conn, upgrade.pseudonyms, now)


_PSEUDONYM_PURPOSE = "pseudonym"


def _hold_pseudonym_key(conn: Connection, pseudonyms: Pseudonymizer, now: dt.datetime) -> None:
    """Record the key's fingerprint in a store that has none yet (a new store, or one just
    upgraded to version 14); refuse a key whose fingerprint is not the recorded one."""
    configured = pseudonyms.fingerprint()
    recorded = conn.execute(
        select(KEY_FINGERPRINTS.c.fingerprint).where(
            KEY_FINGERPRINTS.c.purpose == _PSEUDONYM_PURPOSE
        )
    ).scalar_one_or_none()
    if recorded is None:
        conn.execute(
            insert(KEY_FINGERPRINTS).values(
                purpose=_PSEUDONYM_PURPOSE, fingerprint=configured, recorded_at=now
            )
        )
    elif recorded != configured:
        raise PseudonymKeyMismatch(pseudonyms.source, recorded, configured)


def schema_version(conn: Connection) -> int:
    """The highest applied migration (0 for an empty database)."""
    if not conn.dialect.has_table(conn, SCHEMA_VERSION.name):
        return 0
    return int(conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar() or 0)
