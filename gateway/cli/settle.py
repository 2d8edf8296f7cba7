"""``gateway settle``: record allocations settled outside the chain.

The region pays a party whose software is not ready by a separate arrangement; once the party
joins, its JW323 lines for what was settled must not be paid again. A settlement names a
gemeente's ToewijzingNummer and a period (both days included); the B rule BVO001 refuses a
later debit line on that allocation whose ProductPeriode overlaps it (retourcode 9389). Every
settlement is kept in the audit trail with who recorded it, the reference and the reason.

Three ways in: one allocation (``--toewijzing``), every allocation of a held JW301
(``--message``), or a gemeente's CSV (``--file``, checked strictly: every problem with its
file and line, nothing stored unless all lines are right).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    open_store,
    operator_name,
    print_json,
    require_reason,
    settings_of,
)

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.core.dossier import Settlement

EXAMPLES = """
  gateway settle --gemeente 0193 --toewijzing 300201 --from 2026-01-01 --to 2026-06-30 \\
      --reference "ZW-2026-017" --reason "paid by invoice while kompas was not connected"
  gateway settle --message 01J9Z8K3M4N5P6Q7R8S9T0V1W2 --reference "ZW-2026-018" \\
      --reason "allocation paid outside the chain" --dry-run
  gateway settle --file settled-zwolle.csv --reason "zwolle settlement list Q2"
"""

CSV_COLUMNS = ("gemeente", "toewijzing_nummer", "from", "to", "reference")
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_REFERENCE = 200
_CBS = re.compile(r"^\d{4}$")
_NUMBER = re.compile(r"^\d{1,12}$")


@dataclass(frozen=True, slots=True)
class Planned:
    """One settlement to record, with the held message it comes from (if any)."""

    settlement: Settlement
    message_id: str | None


def gemeente_code(value: str, settings: Settings) -> str | None:
    """A 4-digit CBS code, or the identity of a configured gemeente party; None otherwise."""
    if _CBS.match(value):
        return value
    for party in settings.parties:
        if party.id == value and party.role.value == "gemeente" and party.identity:
            return party.identity
    return None


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def _settlement(
    gemeente: str, nummer: int, begin: dt.date, end: dt.date, reference: str
) -> Settlement:
    from gateway.core.dossier import Settlement

    return Settlement(gemeente, nummer, begin, end, reference)


def read_settlement_file(path: Path, settings: Settings) -> list[Planned]:
    """The settlements of a gemeente's CSV (:data:`CSV_COLUMNS`; ``#`` lines and blank lines
    are skipped); raises :class:`ConsoleError` listing every problem as ``file:line: ...``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConsoleError(f"{path}: cannot read: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise ConsoleError(f"{path}: {size} bytes; a settlement file may have {MAX_FILE_BYTES}")
    try:
        text = path.read_bytes()[:MAX_FILE_BYTES].decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsoleError(f"{path}: not readable as UTF-8 text: {exc}") from None
    problems: list[str] = []
    planned: list[Planned] = []
    header_seen = False
    for number, raw_cells in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in raw_cells]
        if not "".join(cells) or cells[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        if not header_seen:
            header_seen = True
            if tuple(cells) != CSV_COLUMNS:
                problems.append(f"{where}: the header must be {','.join(CSV_COLUMNS)}")
                break
            continue
        if len(cells) != len(CSV_COLUMNS):
            problems.append(f"{where}: {len(cells)} fields, the header has {len(CSV_COLUMNS)}")
            continue
        row = dict(zip(CSV_COLUMNS, cells, strict=True))
        found = _checked(row, settings, functools.partial(_add_problem, problems, where))
        if found is not None:
            planned.append(Planned(found, None))
    if not header_seen:
        problems.append(f"{path}: no header row ({','.join(CSV_COLUMNS)})")
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ConsoleError(f"{len(problems)} problem(s), nothing settled:\n  {shown}{more}")
    return planned


def _add_problem(problems: list[str], where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def _checked(
    row: dict[str, str], settings: Settings, report: Callable[[str], None]
) -> Settlement | None:
    """The settlement of one row, or None after telling ``report`` every problem."""
    ok = True
    gemeente = gemeente_code(row["gemeente"], settings)
    if gemeente is None:
        report(f"gemeente {row['gemeente']!r} is neither 4 digits nor a configured gemeente")
        ok = False
    if not _NUMBER.match(row["toewijzing_nummer"]):
        report(f"toewijzing_nummer {row['toewijzing_nummer']!r} is not a number (1-12 digits)")
        ok = False
    begin, end = _date(row["from"]), _date(row["to"])
    if begin is None:
        report(f"from {row['from']!r} is not a date (YYYY-MM-DD)")
        ok = False
    if end is None:
        report(f"to {row['to']!r} is not a date (YYYY-MM-DD)")
        ok = False
    if begin is not None and end is not None and end < begin:
        report(f"to {end} lies before from {begin}")
        ok = False
    reference = row["reference"]
    if not reference or len(reference) > MAX_REFERENCE:
        report(f"reference must be 1-{MAX_REFERENCE} characters")
        ok = False
    if not ok or gemeente is None or begin is None or end is None:
        return None
    return _settlement(gemeente, int(row["toewijzing_nummer"]), begin, end, reference)


def _from_options(args: argparse.Namespace, settings: Settings) -> list[Planned]:
    options = {
        "gemeente": "--gemeente",
        "from_": "--from",
        "to": "--to",
        "reference": "--reference",
    }
    missing = [option for name, option in options.items() if not getattr(args, name)]
    if missing:
        raise ConsoleError(f"--toewijzing needs {', '.join(missing)}")
    problems: list[str] = []
    found = _checked(
        {
            "gemeente": args.gemeente,
            "toewijzing_nummer": args.toewijzing,
            "from": args.from_,
            "to": args.to,
            "reference": args.reference,
        },
        settings,
        problems.append,
    )
    if found is None:
        raise ConsoleError("; ".join(problems))
    return [Planned(found, None)]


def _from_message(args: argparse.Namespace, settings: Settings) -> list[Planned]:
    """Every ToegewezenProduct of a stored JW301, over its own period or --from/--to."""
    from gateway.core.settlement import allocations_in_payload
    from gateway.schemas import load_schema_set

    if not args.reference:
        raise ConsoleError("--message needs --reference")
    begin = _date(args.from_) if args.from_ else None
    end = _date(args.to) if args.to else None
    if (args.from_ and begin is None) or (args.to and end is None):
        raise ConsoleError("--from and --to are dates (YYYY-MM-DD)")
    with open_store(settings) as store:
        msg = store.get(args.message)
        raw = store.payload(args.message) if msg is not None else None
    if msg is None:
        raise ConsoleError(f"no message {args.message}")
    if msg.message_type != "JW301" or raw is None:
        raise ConsoleError(
            f"message {args.message} is a {msg.message_type or 'unknown message'}"
            f"{'' if raw is not None else ' without payload'}: settle a JW301's allocations, "
            "or name the allocation with --toewijzing"
        )
    planned = []
    for allocation in allocations_in_payload(raw, load_schema_set(list(settings.schemas))):
        first = begin or allocation.ingangsdatum
        last = end or allocation.einddatum
        if last is None:
            raise ConsoleError(
                f"ToewijzingNummer {allocation.toewijzing_nummer} has no Einddatum: give --to"
            )
        if last < first:
            raise ConsoleError(f"--to {last} lies before {first}")
        planned.append(
            Planned(
                _settlement(
                    allocation.gemeente,
                    allocation.toewijzing_nummer,
                    first,
                    last,
                    args.reference,
                ),
                msg.id,
            )
        )
    if not planned:
        raise ConsoleError(f"message {args.message} has no allocation to settle")
    return planned


def cmd_settle(args: argparse.Namespace) -> int:
    """Record settlements outside the chain (or show them with --dry-run)."""
    settings = settings_of(args)
    reason = None if args.dry_run else require_reason(args, "a settlement")
    chosen = [name for name in ("toewijzing", "message", "file") if getattr(args, name)]
    if len(chosen) != 1:
        raise ConsoleError("name exactly one of --toewijzing, --message or --file")
    if args.file:
        planned = read_settlement_file(args.file, settings)
    elif args.message:
        planned = _from_message(args, settings)
    else:
        planned = _from_options(args, settings)
    with open_store(settings) as store:
        known = {
            (s.settlement.gemeente, s.settlement.toewijzing_nummer, s.settlement.begindatum,
             s.settlement.einddatum)
            for s in store.settlements()
        }  # fmt: skip
        fresh: list[Planned] = []
        for item in planned:
            s = item.settlement
            key = (s.gemeente, s.toewijzing_nummer, s.begindatum, s.einddatum)
            if key not in known:
                known.add(key)
                fresh.append(item)
        if not args.dry_run and reason is not None:
            store.record_settlements(
                [(p.settlement, p.message_id) for p in fresh],
                actor=operator_name(),
                reason=reason,
                at=dt.datetime.now(dt.UTC),
            )
    rows = [
        {
            "gemeente": p.settlement.gemeente,
            "toewijzing_nummer": p.settlement.toewijzing_nummer,
            "from": p.settlement.begindatum.isoformat(),
            "to": p.settlement.einddatum.isoformat(),
            "reference": p.settlement.reference,
            "message_id": p.message_id,
        }
        for p in fresh
    ]
    skipped = len(planned) - len(fresh)
    if args.json:
        print_json({"dry_run": args.dry_run, "settled": rows, "already_settled": skipped})
        return EXIT_OK
    verb = "would settle" if args.dry_run else "settled"
    for row in rows:
        print(
            f"{verb} gemeente {row['gemeente']} ToewijzingNummer {row['toewijzing_nummer']} "
            f"{row['from']}..{row['to']} (reference {row['reference']})"
        )
    if skipped:
        print(f"{skipped} already settled for the same period: left as they were")
    if args.dry_run:
        print('dry run: nothing was stored; run again with --reason "..." to settle')
    return EXIT_OK


def add_settle_command(subparsers: Subparsers) -> None:
    """Register ``settle``."""
    cmd = add_command(
        subparsers,
        "settle",
        "record allocations settled outside the chain (later claims on them are refused)",
        EXAMPLES,
    )
    cmd.add_argument("--toewijzing", metavar="N", help="the ToewijzingNummer")
    cmd.add_argument("--gemeente", help="its gemeente: CBS code or party id")
    cmd.add_argument("--from", dest="from_", metavar="DATE", help="first settled day")
    cmd.add_argument("--to", metavar="DATE", help="last settled day (included)")
    cmd.add_argument("--message", metavar="ID", help="settle every allocation of this JW301")
    cmd.add_argument(
        "--file",
        type=Path,
        help=f"a gemeente's CSV with the columns {','.join(CSV_COLUMNS)}",
    )
    cmd.add_argument("--reference", help="the arrangement's reference (invoice, decision)")
    cmd.add_argument("--reason", help="why (required unless --dry-run; audited)")
    cmd.add_argument("--dry-run", action="store_true", help="check and show, store nothing")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(func=cmd_settle)
