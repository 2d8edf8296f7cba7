"""``gateway validate`` and ``gateway schemas check``: the message core from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.cli.common import add_group, iso_date
from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.errors import GatewayError
from gateway.core.report import Level
from gateway.terminal import Progress, style

if TYPE_CHECKING:
    from gateway.core.report import ValidationReport
    from gateway.core.rules import RuleContext
    from gateway.core.schemaset import SchemaSet

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

VALIDATE_EXAMPLES = """\
examples:
  gateway validate inbox/                       readable table for every .xml file below inbox/
  gateway validate --json msg.xml | jq .level   one JSON object per file, for scripts
  gateway validate --retour-dir out/ in/*.xml   also write the retour message for each original
  gateway validate --schemas /tmp/ijw32 a.xml   validate against an unpacked official release
"""


def add_validate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``gateway validate``."""
    cmd = subparsers.add_parser(
        "validate",
        help="validate iJw messages (files or folders) layer by layer",
        description="Validate iJw messages: well-formed and safe XML, XSD, in-message rules. "
        "Exit 0 when every file is ok, 1 when any is not, 2 for usage or I/O errors.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    cmd.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    cmd.add_argument(
        "--retour-dir",
        type=Path,
        metavar="DIR",
        help="write the retour message of each original message into DIR",
    )
    cmd.add_argument(
        "--schemas",
        type=Path,
        action="append",
        metavar="DIR",
        help="schema folder to use (repeatable; default: the shipped iJw 3.2 schemas)",
    )
    cmd.add_argument(
        "--max-bytes", type=int, default=None, help="size limit per message (default 25 MB)"
    )
    cmd.add_argument(
        "--today",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="also check, as a receiver would on that date, that no Dagtekening "
        "lies in the future (TR135); without it only the official in-message "
        "layers run",
    )
    cmd.set_defaults(func=run_validate)


def add_schema_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``gateway schemas check``."""
    sub = add_group(
        subparsers,
        "schemas",
        "inspect schema folders",
        "  gateway schemas check ~/Downloads/ijw-3.2-xsd/",
        dest="schemas_command",
        metavar="SUBCOMMAND",
    )
    check = sub.add_parser(
        "check",
        help="report whether a schema folder loads",
        description="Load every message schema in DIR (for example an unpacked official release) "
        "and list what was found. Exit 0 when all load, 1 otherwise.",
        epilog="example:\n  gateway schemas check ~/Downloads/ijw-3.2-xsd/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("folder", type=Path, metavar="DIR")
    check.set_defaults(func=run_schemas_check)


def run_schemas_check(args: argparse.Namespace) -> int:
    """Print what a schema folder holds; exit 1 when anything fails to load."""
    from gateway.schemas import check_folder

    report = check_folder(args.folder)
    for schema in sorted(report.loaded, key=lambda s: s.message_type):
        print(
            f"  ok  {schema.message_type}  release {schema.release}  BerichtCode "
            f"{schema.berichtcode}  {schema.source.name}"
        )
    for problem in report.problems:
        print(f"  !!  {problem}")
    verdict = "loads" if report.ok else "does not load"
    print(
        f"{args.folder}: {verdict} ({len(report.loaded)} message schemas, "
        f"{len(report.problems)} problems)"
    )
    return EXIT_OK if report.ok else EXIT_FINDINGS


@dataclass(frozen=True, slots=True)
class _Unreadable:
    path: Path
    reason: str


def _expand(paths: list[Path]) -> Iterator[Path | _Unreadable]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.xml") if p.is_file())
        elif path.is_file():
            yield path
        else:
            yield _Unreadable(path, "no such file or folder")


def _schema_set(args: argparse.Namespace) -> SchemaSet:
    from gateway.schemas import load_schema_set
    from gateway.shipped import SHIPPED_SCHEMAS

    folders = args.schemas or [SHIPPED_SCHEMAS]
    return load_schema_set(folders)


def run_validate(args: argparse.Namespace) -> int:
    """Validate every file; stream one result per file so 10,000 files stay cheap."""
    from gateway.core.rules import RuleContext
    from gateway.core.validate import validate
    from gateway.core.xmlsafe import DEFAULT_MAX_BYTES

    max_bytes = args.max_bytes or DEFAULT_MAX_BYTES
    schemas = _schema_set(args)
    # Without --today the verdict is the official validation's (XSD + in-message rules);
    # TR135 needs the receiver's system date, which a file on disk does not have.
    context = RuleContext(today=args.today)
    retour_writer = _RetourWriter(args.retour_dir, schemas, context) if args.retour_dir else None
    files = list(_expand(args.paths))
    progress = Progress(len(files), sys.stderr, enabled=not args.json or not sys.stdout.isatty())
    any_findings = any_unreadable = False
    out = sys.stdout
    for item in files:
        progress.step()
        if isinstance(item, _Unreadable):
            any_unreadable = True
            _print_unreadable(item, args.json, out)
            continue
        try:
            raw = item.read_bytes()
        except OSError as exc:
            any_unreadable = True
            _print_unreadable(_Unreadable(item, exc.strerror or str(exc)), args.json, out)
            continue
        report = validate(raw, schemas, context, max_bytes=max_bytes)
        any_findings |= not report.ok
        if retour_writer is not None:
            retour_writer.write(item, report)
        if args.json:
            out.write(json.dumps({"file": str(item), **report.as_dict()}) + "\n")
        else:
            progress.clear()
            _print_table_row(item, report, out)
    progress.done()
    if not args.json:
        _print_summary(files, out)
    if any_unreadable:
        return EXIT_USAGE
    return EXIT_FINDINGS if any_findings else EXIT_OK


def _print_unreadable(item: _Unreadable, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps({"file": str(item.path), "error": item.reason}) + "\n")
    print(f"gateway validate: {item.path}: {item.reason}", file=sys.stderr)


_LEVEL_STYLE = {
    Level.OK: "green",
    Level.RULES: "yellow",
    Level.STATE: "yellow",
    Level.EXTERNAL: "yellow",
    Level.XSD: "red",
    Level.MALFORMED: "red",
}


def _print_table_row(path: Path, report: ValidationReport, out: TextIO) -> None:
    tty = out.isatty()
    level = style(f"{report.level.value:<9}", _LEVEL_STYLE[report.level], tty)
    kind = report.message_type or "-"
    print(f"{level} {kind:<6} {path}", file=out)
    for finding in report.findings:
        where = f"line {finding.line}" if finding.line else ""
        code = f"[{finding.retourcode}]" if finding.retourcode else ""
        print(f"    {finding.rule:<12} {code:<7} {where:<10} {finding.path or ''}", file=out)
        print(f"        {finding.message}", file=out)


def _print_summary(files: list[Path | _Unreadable], out: TextIO) -> None:
    print(f"{len(files)} file(s) checked", file=out)


class _RetourWriter:
    """Writes the retour of each original message the way a receiver would answer it."""

    def __init__(self, folder: Path, schemas: SchemaSet, context: RuleContext) -> None:
        self._folder = folder
        self._schemas = schemas
        self._today = context.today or dt.date.today()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GatewayError(f"cannot create retour folder {folder}: {exc}") from exc

    def write(self, source: Path, report: ValidationReport) -> None:
        from gateway.core.retour import RetourIdentity, build_retour, retour_type_for

        doc = report.document
        if doc is None or report.level in (Level.MALFORMED, Level.XSD):
            return  # the standard answers these through the transport, not with a retour
        kind = MESSAGE_KINDS.get(doc.message_type)
        if kind is None or kind.answered_by is None:
            return  # retours are not answered
        retour_type = retour_type_for(doc.message_type)
        # A stable id per original, so re-running validate rewrites the same retour.
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        identity = RetourIdentity(identificatie=digest, dagtekening=self._today)
        retour = build_retour(doc, report.findings, identity, self._schemas)
        (self._folder / f"{source.stem}.{retour_type}.xml").write_bytes(retour)
