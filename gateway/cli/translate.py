"""``gateway translate`` and ``gateway mappings check|explain``: product-code translation by hand.

``translate`` uses an empty in-memory ledger: it shows what the gateway would do with a message
that starts a conversation. The daemon uses its persistent ledger instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import (
    ConsoleError,
    add_group,
    config_option,
    iso_date,
    moment,
    open_store,
    operator_name,
    parse_moment,
    print_json,
    render_table,
    require_reason,
    settings_of,
    when,
    with_operator,
)
from gateway.core.errors import GatewayError

if TYPE_CHECKING:
    from gateway.core.mapping_tables import MappingTable

EXIT_OK, EXIT_DECISION, EXIT_USAGE = 0, 1, 2

TRANSLATE_EXAMPLES = """\
examples:
  gateway translate jw301.xml --to profile-2018 > out.xml     rewrites listed on stderr
  gateway translate jw305.xml --to legacy --gemeente 0193 --date 2018-03-01
exit status: 0 translated (or nothing to do), 1 something needs a mapping decision (nothing is
printed on stdout then), 2 usage or I/O error.
"""

CHECK_EXAMPLES = """\
examples:
  gateway mappings check                         the shipped mappings/
  gateway mappings check --mappings /etc/gateway/mappings
"""

EXPLAIN_EXAMPLES = """\
examples:
  gateway mappings explain 45A48 --gemeente 0193 --date 2018-02-01
  gateway mappings explain 999903 --gemeente 0150 --date 2018-01-01      (a DBC declaratiecode)
"""


def add_translate_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``gateway translate`` and ``gateway mappings check|explain``."""
    cmd = subparsers.add_parser(
        "translate",
        help="rewrite the product codes of one message into another code generation",
        description="Translate the product codes of an iJw message into GENERATION. The XML goes "
        "to stdout, the list of rewrites to stderr.",
        epilog=TRANSLATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("file", type=Path, metavar="FILE")
    cmd.add_argument("--to", required=True, dest="generation", metavar="GENERATION")
    cmd.add_argument(
        "--date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="date for elements without one (default: the message's Dagtekening)",
    )
    cmd.add_argument(
        "--gemeente",
        metavar="CODE",
        help="CBS gemeentecode (default: the 4-digit party in the header)",
    )
    _mappings_option(cmd)
    cmd.set_defaults(func=run_translate)

    sub = add_group(
        subparsers,
        "mappings",
        "check, explain or decide product-code mappings; list what traffic needed",
        "  gateway mappings check\n"
        "  gateway mappings explain 45A48 --gemeente 0193 --date 2018-02-01",
        dest="mappings_command",
        metavar="SUBCOMMAND",
    )
    check = sub.add_parser(
        "check",
        help="load the mapping tables strictly and report every problem",
        description="Load the mapping tables (and contract tariffs) as the daemon does. Exit 0 "
        "with a summary when they load, 2 with every problem (file:line: message) when they "
        "do not.",
        epilog=CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _mappings_option(check)
    check.set_defaults(func=run_check)
    explain = sub.add_parser(
        "explain",
        help="show every mapping row for a code and whether it applies",
        description="Show every mapping row that mentions CODE and whether it applies to the "
        "gemeente on the date, with the reason when it does not.",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("code", metavar="CODE", help="product code or DBC code")
    explain.add_argument("--gemeente", required=True, metavar="CODE")
    explain.add_argument(
        "--date",
        required=True,
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="start date of the allocation",
    )
    explain.add_argument("--category", metavar="C", help="only rows in this productcategorie")
    _mappings_option(explain)
    explain.set_defaults(func=run_explain)
    _add_daemon_subcommands(sub)


DECIDE_EXAMPLES = """\
examples:
  gateway mappings decide 01JQ3V6X9N8W2M4K7P5R1T0ABC --target 45/IJ01P --reason "gezinsplan"
  gateway mappings decide 01JQ3V6X9N8W2M4K7P5R1T0ABC --target 45/IJ01P --reason "..." --dry-run
  gateway mappings decide 01JQ3V6X9N8W2M4K7P5R1T0ABC --target 45/45R14=45/IJ09I \\
      --target 45/45R15=45/IJ10I --reason "two products wait"
  gateway mappings decide --file toegang-0384.csv --gemeente 0384 --dry-run
      the gemeente's decisions: toewijzingnummer,message_id,target,decided_by,reference
exit status: 0 decided (or shown, with --dry-run; with --file: every row decided now or
before), 1 a row of the file was not applied (each is reported), 2 when the decision does
not apply or the file has problems (file:line; then nothing is applied).
"""

COVERAGE_EXAMPLES = """\
examples:
  gateway mappings coverage                    products that waited for a decision, most first
  gateway mappings coverage --since 30d --json
"""


def _add_daemon_subcommands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """``mappings decide`` and ``mappings coverage``: they work on the daemon's store."""
    decide = sub.add_parser(
        "decide",
        help="pick the target of a message held with 'needs mapping decision' and release it",
        description="Record the target product in the translation ledger and the audit trail, "
        "translate the message with it and queue it for delivery. Every later message about "
        "the same allocation uses the same pair. With --file, the gemeente's toegang decides: "
        "one row per ToewijzingNummer or held message, with who decided and on what "
        "reference (origin gemeente); without, an operator corrects one message.",
        epilog=DECIDE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decide.add_argument("message_id", nargs="?", metavar="MESSAGE_ID")
    decide.add_argument(
        "--file",
        type=Path,
        metavar="CSV",
        help="the gemeente's decisions (docs/translation.md, 'Decisions by the gemeente')",
    )
    decide.add_argument(
        "--gemeente", metavar="CODE", help="with --file: the CBS code of the deciding gemeente"
    )
    decide.add_argument(
        "--target",
        action="append",
        metavar="[SOURCE=]CAT/CODE",
        help="e.g. 45/IJ01P; when several products wait, one SOURCE=TARGET each, e.g. "
        "--target 45/45R14=45/IJ09I --target 45/45R15=45/IJ10I",
    )
    decide.add_argument("--reason", help="why this target (kept in the audit; not with --file)")
    decide.add_argument("--dry-run", action="store_true", help="show the rewrites, change nothing")
    config_option(decide)
    decide.set_defaults(func=run_decide)

    coverage = sub.add_parser(
        "coverage",
        help="codes seen in traffic that the tables could not translate, with counts",
        description="Products in translated traffic that waited for a mapping decision (no "
        "mapping, one-to-many, unit change), grouped per gemeente and generation pair.",
        epilog=COVERAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    coverage.add_argument(
        "--since", type=moment, metavar="WHEN", help="received since (date, 7d, 24h)"
    )
    coverage.add_argument("--json", action="store_true", help="JSON for scripts")
    config_option(coverage)
    coverage.set_defaults(func=run_coverage)


def _mappings_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--mappings",
        type=Path,
        default=None,
        metavar="DIR",
        help="mapping folder (default: the shipped mappings/)",
    )


def run_translate(args: argparse.Namespace) -> int:
    """``gateway translate``."""
    from gateway.core.ledger import InMemoryLedger
    from gateway.core.translation import translate
    from gateway.mapping_files import load_mappings
    from gateway.shipped import SHIPPED_MAPPINGS

    table = load_mappings(args.mappings or SHIPPED_MAPPINGS)
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise GatewayError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    result = translate(
        raw,
        table,
        to_generation=args.generation,
        gemeente=args.gemeente,
        as_of=args.date,
        ledger=InMemoryLedger(),
    )
    err = sys.stderr
    for rewrite in result.rewrites:
        print(f"rewrite {rewrite}", file=err)
    for kept in result.kept:
        print(str(kept), file=err)
    for item in result.undecided:
        print(str(item), file=err)
    if result.needs_decision:
        print(
            f"{len(result.undecided)} item(s) need a mapping decision; the message would be held",
            file=err,
        )
        return EXIT_DECISION
    sys.stdout.buffer.write(result.xml)
    sys.stdout.buffer.flush()
    print(
        f"{result.message_type} for gemeente {result.gemeente} -> {result.to_generation}: "
        f"{len(result.rewrites)} rewrite(s)",
        file=err,
    )
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    """``gateway mappings check``."""
    from gateway.contracts import check_contract_table, contract_files
    from gateway.mapping_files import check_mappings
    from gateway.shipped import SHIPPED_MAPPINGS

    folder = args.mappings or SHIPPED_MAPPINGS
    table, problems = check_mappings(folder)
    contracts = contract_files(folder)
    for path in contracts:
        problems += check_contract_table(path, folder)[1]
    if problems or table is None:
        for problem in problems:
            print(str(problem), file=sys.stderr)
        print(f"{len(problems)} problem(s) in {folder}", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(table, folder)
    for path in contracts:
        print(f"  contracts {path.name}: ok")
    return EXIT_OK


def _print_summary(table: MappingTable, folder: Path) -> None:
    counts = table.summary()
    print(f"mappings {folder}: ok")
    for name, generation in sorted(table.generations.items()):
        print(f"  generation {name}: {len(generation.codes)} product codes")
    for mapping_set in table.sets:
        label = " (SYNTHETIC demo data)" if mapping_set.synthetic else ""
        needs = sum(1 for r in mapping_set.rows if r.needs_decision)
        print(
            f"  set {mapping_set.name}: {mapping_set.from_generation} -> "
            f"{mapping_set.to_generation} from {mapping_set.cutover}, "
            f"{len(mapping_set.rows)} rows, {needs} need a decision{label}"
        )
    print(
        f"  total: {counts['rows']} rows, {counts['needs_decision']} one-to-many, "
        f"{counts['unit_changes']} unit changes ({counts['conversions']} declared "
        f"conversion(s)), {counts['dbc_rows']} DBC rows, {counts['regions']} region(s)"
    )


def run_explain(args: argparse.Namespace) -> int:
    """``gateway mappings explain``."""
    from gateway.mapping_files import load_mappings
    from gateway.shipped import SHIPPED_MAPPINGS

    table = load_mappings(args.mappings or SHIPPED_MAPPINGS)
    found = table.explain(args.code, args.gemeente, args.date, args.category)
    for name, generation in sorted(table.generations.items()):
        categories = generation.codes.categories_of(args.code)
        if categories:
            print(f"{args.code} is a {name} code (categorie {', '.join(categories)})")
    if not found:
        print(f"no mapping row mentions {args.code} for gemeente {args.gemeente}")
        return EXIT_OK
    for row, applies, why in found:
        mark = "applies" if applies else "does not apply"
        print(
            f"{row.origin}: {row.source_kind.value} {row.source} -> {row.target} "
            f"[{row.scope}, valid {row.valid_from}..{row.valid_to or '…'}]: {mark}: {why}"
        )
        if row.changes_unit:
            factor = f", volume x {row.volume_factor}" if row.volume_factor else ""
            conversion = table.conversion(args.gemeente, row, args.date)
            how = (
                f"converted by {conversion.origin}"
                if conversion is not None
                else "the row's volume factor converts Omvang; declaration lines are held"
                if row.volume_factor
                else "no declared conversion on this date: held for a decision"
            )
            print(f"    Eenheid {row.unit_from} -> {row.unit_to}{factor}; {how}")
        if row.note:
            print(f"    note: {row.note}")
    return EXIT_OK


def run_decide(args: argparse.Namespace) -> int:
    """``gateway mappings decide``."""
    if args.file is not None:
        return _decide_file(args)
    if args.message_id is None or not args.target or args.gemeente is not None:
        raise ConsoleError(
            "give MESSAGE_ID --target CAT/CODE --reason ..., or --file CSV --gemeente CODE"
        )
    # Imported on use: it pulls in every rule module, which the table commands never need.
    from gateway.translator import decide_mapping

    reason = require_reason(args, "a mapping decision")
    outcome = with_operator(
        args,
        lambda op: decide_mapping(
            op.service.decisions,
            args.message_id,
            args.target,
            reason=reason,
            actor=operator_name(),
            dry_run=args.dry_run,
        ),
    )
    for entry in outcome.entries:
        print(f"ledger {entry.key}: {entry.original} <-> {entry.translated} ({entry.origin.value})")
    for rewrite in outcome.rewrites:
        print(f"rewrite {rewrite}")
    if outcome.dry_run:
        print(f"dry run: message {outcome.message.id} stays {outcome.message.state.value}")
    else:
        print(f"message {outcome.message.id} is {outcome.message.state.value}")
    if outcome.outcome is not None:
        would = "would be" if outcome.dry_run else "is"
        print(f"after the rules it {would} {outcome.outcome.state.value}: {outcome.outcome.reason}")
    if outcome.rules:
        print(f"rules: {', '.join(outcome.rules)}")
    if outcome.retour is not None:
        sent = "would get" if outcome.dry_run else "gets"
        print(f"{outcome.retour.recipient} {sent} retour {outcome.retour.message_type}")
    return EXIT_OK


def _decide_file(args: argparse.Namespace) -> int:
    """``gateway mappings decide --file``: a gemeente's decisions, row by row."""
    if args.message_id is not None or args.target or args.reason is not None:
        raise ConsoleError("--file takes no MESSAGE_ID, --target or --reason (the rows give them)")
    gemeente = args.gemeente or ""
    if not (len(gemeente) == 4 and gemeente.isdigit()):
        raise ConsoleError("--file needs --gemeente CODE (4-digit CBS gemeentecode)")
    from gateway.decision_files import DecisionFileError, apply_decision_file, read_decision_file

    try:
        rows = read_decision_file(args.file)
    except DecisionFileError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing applied", file=sys.stderr)
        return EXIT_USAGE
    results = with_operator(
        args,
        lambda op: apply_decision_file(
            op.service.decisions,
            rows,
            gemeente=gemeente,
            source=args.file.name,
            actor=operator_name(),
            dry_run=args.dry_run,
        ),
    )
    for result in results:
        row = result.row
        print(
            f"{args.file}:{row.line}: {row.subject} -> {row.target}: {result.status}: "
            f"{result.detail} (decided by {row.decided_by}, reference {row.reference})"
        )
    applied = sum(1 for r in results if r.applied)
    dry = " (dry run: nothing changed)" if args.dry_run else ""
    print(f"{applied} of {len(results)} row(s) in effect{dry}")
    return EXIT_OK if applied == len(results) else EXIT_DECISION


def run_coverage(args: argparse.Namespace) -> int:
    """``gateway mappings coverage``."""
    settings = settings_of(args)
    since = parse_moment(args.since) if args.since else None
    with open_store(settings) as store:
        rows = store.translation_coverage(since)
    if args.json:
        print_json(
            [
                {
                    "gemeente": r.gemeente,
                    "from": r.from_generation,
                    "to": r.to_generation,
                    "product": r.product,
                    "problem": r.problem,
                    "messages": r.messages,
                    "first_seen": r.first_seen.isoformat(),
                    "last_seen": r.last_seen.isoformat(),
                }
                for r in rows
            ]
        )
        return EXIT_OK
    if not rows:
        print("every product seen in translated traffic had a mapping")
        return EXIT_OK
    render_table(
        ("GEMEENTE", "FROM", "TO", "PRODUCT", "PROBLEM", "MESSAGES", "LAST SEEN"),
        [
            (
                r.gemeente,
                r.from_generation,
                r.to_generation,
                r.product,
                r.problem,
                str(r.messages),
                when(r.last_seen),
            )
            for r in rows
        ],
        sys.stdout,
    )
    return EXIT_OK
