"""A gemeente's mapping decisions, read from the file its toegang provides and applied through
:func:`gateway.translator.decide_mapping` (``gateway mappings decide --file``).

Choosing a profile and intensity is the gemeente's decision, not the BVO's: the file says, per
allocation (ToewijzingNummer) or per held message, which target product applies, who decided
and on what reference (the family plan, the beschikking). The format (docs/translation.md):

    toewijzingnummer,message_id,target,decided_by,reference
    30001,,45/IJ01P,J. Jansen (toegang Diemen),GP-2026-0113
    ,01JQ3V6X9N8W2M4K7P5R1T0ABC,45/IJ09I,J. Jansen (toegang Diemen),GP-2026-0114

The file is read strictly: every problem is named with file:line and nothing is applied while
there is one. Applying it twice changes nothing the second time: a row whose pair the ledger
already holds on the same reference reports "already decided".
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.errors import GatewayError
from gateway.core.ledger import LedgerKey
from gateway.core.lifecycle import waits_for_mapping_decision
from gateway.core.mapping_tables import Product
from gateway.mapping_files import Problem, split_commented_csv
from gateway.translator import (
    DecisionError,
    DecisionProcessing,
    KeyedTarget,
    decide_mapping,
    ledger_key_of,
    parse_product,
)

MAX_FILE_BYTES = 1 << 20
"""Largest decision file read (about 10,000 rows)."""
MAX_ROWS = 10_000
REQUIRED_COLUMNS = ("target", "decided_by", "reference")
KEY_COLUMNS = ("toewijzingnummer", "message_id")
_TOEWIJZING = re.compile(r"[A-Za-z0-9\-]{1,20}")  # iJw LDT_Nummer: an..20
_MESSAGE_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")  # ULID, Crockford base32
_MAX_DECIDED_BY, _MAX_REFERENCE = 100, 200


class DecisionFileError(GatewayError):
    """The decision file cannot be read or has problems; nothing was applied."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision in the file: an allocation's or a held message's target."""

    line: int
    toewijzing_nummer: str | None
    message_id: str | None
    target: Product
    decided_by: str
    reference: str

    @property
    def subject(self) -> str:
        """What the row decides for, as the report names it."""
        if self.toewijzing_nummer is not None:
            return f"ToewijzingNummer {self.toewijzing_nummer}"
        return f"message {self.message_id}"

    @property
    def keyed(self) -> KeyedTarget:
        """The row as the decision applies it to a ledger key."""
        return KeyedTarget(self.target, self.decided_by, self.reference)


def read_decision_file(path: Path) -> list[DecisionRow]:
    """The rows of a decision file; :class:`DecisionFileError` with every problem otherwise.

    The file is opened without following a link and its size checked before it is read.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DecisionFileError([Problem(name, None, f"unreadable: {exc.strerror}")]) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise DecisionFileError([Problem(name, None, "not a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise DecisionFileError(
                [Problem(name, None, f"{info.st_size} bytes, more than {MAX_FILE_BYTES}")]
            )
        data = handle.read(MAX_FILE_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecisionFileError([Problem(name, None, f"not UTF-8: {exc.reason}")]) from None
    return parse_decision_rows(name, text.splitlines())


def parse_decision_rows(name: str, lines: list[str]) -> list[DecisionRow]:
    """The rows of a decision file's ``lines``; :class:`DecisionFileError` with every problem
    (``name:line: message``) otherwise."""
    problems: list[Problem] = []
    _meta, found, records = split_commented_csv(lines)
    if found is None:
        raise DecisionFileError([Problem(name, None, "no header row")])
    header_line, raw_header = found
    header = [column.strip().lower() for column in raw_header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or not any(c in header for c in KEY_COLUMNS):
        wanted = ", ".join(missing + ([] if any(c in header for c in KEY_COLUMNS) else
                                      ["toewijzingnummer or message_id"]))  # fmt: skip
        raise DecisionFileError([Problem(name, header_line, f"header lacks column(s) {wanted}")])
    unknown = sorted(set(header) - set(REQUIRED_COLUMNS) - set(KEY_COLUMNS))
    if unknown or len(set(header)) != len(header):
        what = f"unknown column(s) {', '.join(unknown)}" if unknown else "a column twice"
        raise DecisionFileError([Problem(name, header_line, what)])
    if len(records) > MAX_ROWS:
        raise DecisionFileError([Problem(name, None, f"more than {MAX_ROWS} rows")])
    rows: list[DecisionRow] = []
    seen: dict[str, int] = {}
    for number, cells in records:
        if len(cells) != len(header):
            problems.append(
                Problem(name, number, f"{len(cells)} fields, the header has {len(header)}")
            )
            continue
        cell = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        row = _row(name, number, cell, problems)
        if row is None:
            continue
        subject = row.subject
        if subject in seen:
            problems.append(Problem(name, number, f"{subject} is decided on line {seen[subject]}"))
            continue
        seen[subject] = number
        rows.append(row)
    if problems:
        raise DecisionFileError(problems)
    if not rows:
        raise DecisionFileError([Problem(name, None, "no decisions in the file")])
    return rows


def _row(name: str, line: int, cell: dict[str, str], problems: list[Problem]) -> DecisionRow | None:
    before = len(problems)
    nummer = cell.get("toewijzingnummer") or None
    message_id = (cell.get("message_id") or "").upper() or None
    if (nummer is None) == (message_id is None):
        problems.append(Problem(name, line, "give either a toewijzingnummer or a message_id"))
    elif nummer is not None and not _TOEWIJZING.fullmatch(nummer):
        problems.append(Problem(name, line, "toewijzingnummer: 1 to 20 letters, digits or '-'"))
    elif message_id is not None and not _MESSAGE_ID.fullmatch(message_id):
        problems.append(Problem(name, line, "message_id: not a gateway message id"))
    target: Product | None = None
    try:
        target = parse_product(cell["target"])
    except DecisionError as exc:
        problems.append(Problem(name, line, str(exc)))
    for column, limit in (("decided_by", _MAX_DECIDED_BY), ("reference", _MAX_REFERENCE)):
        value = cell[column]
        if not value:
            problems.append(Problem(name, line, f"{column} is empty"))
        elif len(value) > limit or not value.isprintable():
            problems.append(Problem(name, line, f"{column}: printable text, at most {limit}"))
    if len(problems) > before or target is None:
        return None
    return DecisionRow(line, nummer, message_id, target, cell["decided_by"], cell["reference"])


# -- applying a file ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowResult:
    """What applying one row did (or, on a dry run, would do)."""

    row: DecisionRow
    status: str
    """``decided``, ``would decide``, ``already decided``, ``no held message`` or ``refused``."""
    detail: str
    message_ids: tuple[str, ...] = ()

    @property
    def applied(self) -> bool:
        """True when the row is in effect (now, already, or would be on a dry run)."""
        return self.status in ("decided", "would decide", "already decided")


@dataclass
class _Plan:
    """The rows that decide one held message, per ledger key."""

    by_key: dict[str, KeyedTarget] = field(default_factory=dict)
    rows: list[DecisionRow] = field(default_factory=list)


async def apply_decision_file(
    service: DecisionProcessing,
    rows: Sequence[DecisionRow],
    *,
    gemeente: str,
    source: str,
    actor: str,
    dry_run: bool = False,
) -> list[RowResult]:
    """Apply a gemeente's decisions: each held message the rows decide goes through
    :func:`decide_mapping` with the rows' targets per allocation.

    A row that matches no held message is reported (``already decided`` when the ledger holds
    its pair on the same reference); a message of another gemeente is refused; a message that
    also waits for an allocation the file does not decide stays held, and its rows say so.
    """
    store = service.store
    results: dict[int, RowResult] = {}
    plans: dict[str, _Plan] = {}
    keys = {
        row.line: str(LedgerKey.allocation(gemeente, row.toewijzing_nummer))
        for row in rows
        if row.toewijzing_nummer is not None
    }
    waiting = await asyncio.to_thread(store.waiting_on, list(keys.values()))
    for row in rows:
        if row.toewijzing_nummer is not None:
            key = keys[row.line]
            for message_id in waiting.get(key, []):
                plan = plans.setdefault(message_id, _Plan())
                plan.by_key[key] = row.keyed
                plan.rows.append(row)
            if key not in waiting:
                results[row.line] = await _not_waiting(service, row, key)
            continue
        assert row.message_id is not None
        refused = await _plan_message(service, row, gemeente, plans)
        if refused is not None:
            results[row.line] = refused
    for message_id, plan in plans.items():
        for row, result in await _decide(
            service, message_id, plan, source=source, actor=actor, dry_run=dry_run
        ):
            earlier = results.get(row.line)
            if earlier is None or earlier.applied:
                merged = result.message_ids + (earlier.message_ids if earlier else ())
                results[row.line] = RowResult(row, result.status, result.detail, merged)
    return [results[row.line] for row in rows]


async def _not_waiting(service: DecisionProcessing, row: DecisionRow, key: str) -> RowResult:
    entry = await asyncio.to_thread(service.store.ledger_entry, ledger_key_of(key))
    if entry is None:
        return RowResult(row, "no held message", f"no message waits for a decision on {key}")
    if entry.translated == row.target and entry.reference == row.reference:
        return RowResult(
            row, "already decided", f"{key} travels as {entry.original} <-> {entry.translated}"
        )
    by = f" (decided by {entry.decided_by}, reference {entry.reference})" if entry.reference else ""
    return RowResult(
        row,
        "refused",
        f"{key} already travels as {entry.original} <-> {entry.translated}{by}; a recorded pair "
        "does not change",
    )


async def _plan_message(
    service: DecisionProcessing, row: DecisionRow, gemeente: str, plans: dict[str, _Plan]
) -> RowResult | None:
    """Add a message-id row to ``plans``; the row's result when it cannot be."""
    assert row.message_id is not None
    store = service.store
    msg = await asyncio.to_thread(store.get, row.message_id)
    stored = await asyncio.to_thread(store.translation_of, row.message_id)
    if msg is None or stored is None:
        return RowResult(row, "no held message", f"no translated message {row.message_id}")
    if stored.gemeente != gemeente:
        return RowResult(
            row, "refused", f"message {msg.id} is about gemeente {stored.gemeente}, not {gemeente}"
        )
    if not waits_for_mapping_decision(msg):
        keys = {r.key for r in stored.rewrites if r.key}
        entries = [await asyncio.to_thread(store.ledger_entry, ledger_key_of(k)) for k in keys]
        if entries and all(
            e is not None and e.translated == row.target and e.reference == row.reference
            for e in entries
        ):
            return RowResult(row, "already decided", f"message {msg.id} is {msg.state.value}")
        return RowResult(
            row, "refused", f"message {msg.id} is {msg.state.value}, not held for a decision"
        )
    products = {item.product for item in stored.undecided}
    if len(products) != 1:
        return RowResult(
            row,
            "refused",
            f"message {msg.id} waits for several products; decide per toewijzingnummer",
        )
    plan = plans.setdefault(msg.id, _Plan())
    for item in stored.undecided:
        if item.key is not None and item.key not in plan.by_key:
            plan.by_key[item.key] = row.keyed
    plan.rows.append(row)
    return None


async def _decide(
    service: DecisionProcessing,
    message_id: str,
    plan: _Plan,
    *,
    source: str,
    actor: str,
    dry_run: bool,
) -> list[tuple[DecisionRow, RowResult]]:
    lines = ", ".join(str(row.line) for row in plan.rows)
    try:
        outcome = await decide_mapping(
            service,
            message_id,
            (),
            reason=f"gemeente decision file {source}, line {lines}",
            actor=actor,
            dry_run=dry_run,
            by_key=plan.by_key,
        )
    except GatewayError as exc:
        refused = f"message {message_id}: {exc}"
        return [(row, RowResult(row, "refused", refused)) for row in plan.rows]
    after = outcome.outcome or outcome.message
    status = "would decide" if dry_run else "decided"
    detail = f"message {message_id} {'would be' if dry_run else 'is'} {after.state.value}"
    return [(row, RowResult(row, status, detail, (message_id,))) for row in plan.rows]
