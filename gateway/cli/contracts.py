"""``gateway contracts coverage``: which claimed products the contract table does not price.

Reads the submitted JW323 lines from the store (every line as sent, whatever its verdict) and
asks the contract table of ``[lists] contracts`` for each the tariff TR418 would use. What has
none is listed per aanbieder per month: with ``[lists] missing_tariff = "warn"`` those lines
were accepted without a tariff check, with ``"reject"`` they were answered with 0611.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import datetime as dt
import sys

from gateway.cli.common import (
    EXIT_OK,
    ConsoleError,
    Subparsers,
    add_command,
    add_group,
    open_store,
    print_json,
    render_table,
    settings_of,
)

COVERAGE_EXAMPLES = """
  gateway contracts coverage                           every month in the store
  gateway contracts coverage --from 2026-01 --to 2026-03 --party provider-a
  gateway contracts coverage --csv > gaps.csv
"""


def month(value: str) -> str:
    """argparse type: a month as ``YYYY-MM``."""
    try:
        dt.date.fromisoformat(value + "-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month (YYYY-MM)") from None
    return value


def add_contracts_commands(subparsers: Subparsers) -> None:
    """Register ``gateway contracts coverage``."""
    sub = add_group(
        subparsers,
        "contracts",
        "check the contract tariffs against the claims seen in traffic",
        "  gateway contracts coverage --from 2026-01",
        dest="contracts_command",
        metavar="SUBCOMMAND",
    )
    coverage = add_command(
        sub,
        "coverage",
        "list products claimed without an applicable contract tariff, per provider per month",
        COVERAGE_EXAMPLES,
    )
    coverage.add_argument(
        "--from", dest="first", type=month, metavar="YYYY-MM", help="first month (ProductPeriode)"
    )
    coverage.add_argument(
        "--to", dest="last", type=month, metavar="YYYY-MM", help="last month (ProductPeriode)"
    )
    coverage.add_argument(
        "--party", metavar="PARTY", help="one aanbieder: its configured id or AGB code"
    )
    output = coverage.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON for scripts")
    output.add_argument("--csv", action="store_true", help="CSV for spreadsheets")
    coverage.set_defaults(func=run_coverage)


def run_coverage(args: argparse.Namespace) -> int:
    """``gateway contracts coverage``."""
    from gateway.contracts import load_contract_table, tariff_gaps

    settings = settings_of(args)
    if settings.contracts is None:
        raise ConsoleError("no contract table configured ([lists] contracts)")
    table = load_contract_table(settings.contracts, settings.mappings)
    first = dt.date.fromisoformat(args.first + "-01") if args.first else None
    last = None
    if args.last:
        year, number = (int(part) for part in args.last.split("-"))
        last = dt.date(year, number, calendar.monthrange(year, number)[1])
    aanbieder = None
    if args.party:
        party = settings.registry().get(args.party)
        aanbieder = party.identity if party is not None and party.identity else args.party
    with open_store(settings) as store:
        gaps = tariff_gaps(store.claimed_products(first, last, aanbieder), table)
    records = [
        {
            "aanbieder": g.aanbieder,
            "month": g.month,
            "gemeente": g.gemeente,
            "product": f"{g.categorie}/{g.code}",
            "eenheid": g.eenheid,
            "lines": g.lines,
        }
        for g in gaps
    ]
    if args.json:
        print_json(records)
    elif args.csv:
        writer = csv.DictWriter(
            sys.stdout, fieldnames=("aanbieder", "month", "gemeente", "product", "eenheid", "lines")
        )
        writer.writeheader()
        writer.writerows(records)
    elif not records:
        print("every claimed product had a contract tariff")
    else:
        render_table(
            ("AANBIEDER", "MONTH", "GEMEENTE", "PRODUCT", "EENHEID", "LINES"),
            [tuple(str(r[k]) for k in r) for r in records],
            sys.stdout,
        )
    return EXIT_OK
