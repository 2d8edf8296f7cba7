"""``gateway validate`` and ``gateway schemas check``: the message core from the command line."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
        "--jobs",
        "-j",
        type=job_count,
        default=None,
        metavar="N",
        help="validate in N processes, output still in input order "
        "(default: one per core; 1 validates in this process)",
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


def job_count(value: str) -> int:
    """``--jobs``: a whole number of worker processes, at least 1."""
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of worker processes, at least 1 (got {value!r})"
        )
    return jobs


def default_jobs() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's core count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything a worker needs to check a file as the parent would (picklable)."""

    schema_folders: tuple[Path, ...]
    today: dt.date | None
    max_bytes: int
    retour_dir: Path | None
    as_json: bool
    colour: bool


@dataclass(frozen=True, slots=True)
class _Checked:
    """The output of some consecutive files, already formatted: workers hand back text only."""

    files: int
    stdout: str
    stderr: str
    findings: bool
    unreadable: bool


class _Checker:
    """Validates files and formats their output; one per process, schemas loaded once."""

    def __init__(self, settings: _Settings) -> None:
        from gateway.core.rules import RuleContext
        from gateway.schemas import load_schema_set

        self.settings = settings
        self._schemas = load_schema_set(list(settings.schema_folders))
        # Without --today the verdict is the official validation's (XSD + in-message rules);
        # TR135 needs the receiver's system date, which a file on disk does not have.
        self._context = RuleContext(today=settings.today)
        self._retour_writer = (
            _RetourWriter(settings.retour_dir, self._schemas, self._context)
            if settings.retour_dir
            else None
        )

    def check(self, items: list[Path | _Unreadable]) -> _Checked:
        """Validate ``items`` in order; their output joined as one file after another would."""
        stdout: list[str] = []
        stderr: list[str] = []
        findings = unreadable = False
        for item in items:
            problem = item if isinstance(item, _Unreadable) else None
            if isinstance(item, Path):
                try:
                    raw = item.read_bytes()
                except OSError as exc:
                    problem = _Unreadable(item, exc.strerror or str(exc))
                else:
                    findings |= self._check_one(item, raw, stdout)
            if problem is not None:
                unreadable = True
                if self.settings.as_json:
                    stdout.append(
                        json.dumps({"file": str(problem.path), "error": problem.reason}) + "\n"
                    )
                stderr.append(f"gateway validate: {problem.path}: {problem.reason}\n")
        return _Checked(len(items), "".join(stdout), "".join(stderr), findings, unreadable)

    def _check_one(self, path: Path, raw: bytes, stdout: list[str]) -> bool:
        """Validate one message, append its output, return whether it has findings."""
        from gateway.core.validate import validate

        report = validate(raw, self._schemas, self._context, max_bytes=self.settings.max_bytes)
        if self._retour_writer is not None:
            self._retour_writer.write(path, raw, report)
        if self.settings.as_json:
            stdout.append(json.dumps({"file": str(path), **report.as_dict()}) + "\n")
        else:
            stdout.append(_table_row(path, report, self.settings.colour))
        return not report.ok


def run_validate(args: argparse.Namespace) -> int:
    """Validate every file; stream the results in input order so 10,000 files stay cheap."""
    from gateway.core.xmlsafe import DEFAULT_MAX_BYTES
    from gateway.shipped import SHIPPED_SCHEMAS

    settings = _Settings(
        schema_folders=tuple(args.schemas or SHIPPED_SCHEMAS),
        today=args.today,
        max_bytes=args.max_bytes or DEFAULT_MAX_BYTES,
        retour_dir=args.retour_dir,
        as_json=args.json,
        colour=sys.stdout.isatty(),
    )
    checker = _Checker(settings)
    files = list(_expand(args.paths))
    jobs = min(args.jobs or default_jobs(), len(files))
    if jobs > 1:
        chunk = max(1, min(_MAX_CHUNK, len(files) // (jobs * 16)))
        results = _check_in_workers(iter(files), checker, jobs, chunk)
    else:
        results = _check_here(iter(files), checker)
    progress = Progress(len(files), sys.stderr, enabled=not args.json or not sys.stdout.isatty())
    any_findings = any_unreadable = False
    out = sys.stdout
    with contextlib.closing(results):
        for checked in results:
            progress.step(checked.files)
            any_findings |= checked.findings
            any_unreadable |= checked.unreadable
            if checked.stdout:
                if not args.json:
                    progress.clear()
                out.write(checked.stdout)
            if checked.stderr:
                sys.stderr.write(checked.stderr)
    progress.done()
    if not args.json:
        print(f"{len(files)} file(s) checked", file=out)
    if any_unreadable:
        return EXIT_USAGE
    return EXIT_FINDINGS if any_findings else EXIT_OK


# Files per task sent to a worker: enough to make the hand-over cheap next to the work,
# few enough that small folders still spread over every worker.
_MAX_CHUNK = 64
# Tasks queued per worker: keeps every worker busy while the parent prints, and bounds the
# files in flight (and their formatted results) however large the folder.
_TASKS_PER_WORKER = 4


class _Worker:
    """The checker of a worker process: inherited from the parent when forked, else built once."""

    checker: _Checker | None = None


def _start_worker(settings: _Settings) -> None:
    import signal

    # Ctrl-C reaches the whole process group; the parent alone decides to stop, and the
    # workers finish their task instead of each printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _Worker.checker is None or _Worker.checker.settings != settings:
        _Worker.checker = _Checker(settings)


def _check_chunk(chunk: list[Path | _Unreadable]) -> _Checked:
    checker = _Worker.checker
    assert checker is not None, "worker not started"
    return checker.check(chunk)


def _check_here(
    items: Iterator[Path | _Unreadable], checker: _Checker
) -> Generator[_Checked, None, None]:
    for item in items:
        yield checker.check([item])


def _check_in_workers(
    items: Iterator[Path | _Unreadable], checker: _Checker, jobs: int, chunk: int
) -> Generator[_Checked, None, None]:
    """Check ``items`` in ``jobs`` processes; results in input order, bounded work in flight.

    Workers are forked once the parent has loaded the schemas, so they share the compiled
    XSDs copy-on-write and start in milliseconds; spawning them would repeat the imports and
    the schema load in every worker, a large part of a run of a few thousand files. Forking is
    only safe while the parent runs one thread (a lock held by another thread stays locked in
    the child), which is the case here: this command starts none, and ProcessPoolExecutor
    forks all its workers before starting its own management thread. Should a caller have
    started threads, the workers come from a fork server and load the schemas themselves.
    """
    import multiprocessing
    import threading
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    method = "fork" if threading.active_count() == 1 else "forkserver"
    _Worker.checker = checker
    executor = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_start_worker,
        initargs=(checker.settings,),
    )
    pending: deque[Future[_Checked]] = deque()
    chunks: Iterator[list[Path | _Unreadable]] = iter(
        lambda: list(itertools.islice(items, chunk)), []
    )
    try:
        for task in itertools.islice(chunks, jobs * _TASKS_PER_WORKER):
            pending.append(executor.submit(_check_chunk, task))
        while pending:
            checked = pending.popleft().result()
            for task in itertools.islice(chunks, 1):
                pending.append(executor.submit(_check_chunk, task))
            yield checked
    except BrokenProcessPool as exc:
        raise GatewayError(f"a validation worker stopped unexpectedly: {exc}") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        _Worker.checker = None


_LEVEL_STYLE = {
    Level.OK: "green",
    Level.RULES: "yellow",
    Level.STATE: "yellow",
    Level.EXTERNAL: "yellow",
    Level.XSD: "red",
    Level.MALFORMED: "red",
}


def _table_row(path: Path, report: ValidationReport, colour: bool) -> str:
    level = style(f"{report.level.value:<9}", _LEVEL_STYLE[report.level], colour)
    kind = report.message_type or "-"
    lines = [f"{level} {kind:<6} {path}"]
    for finding in report.findings:
        where = f"line {finding.line}" if finding.line else ""
        code = f"[{finding.retourcode}]" if finding.retourcode else ""
        lines.append(f"    {finding.rule:<12} {code:<7} {where:<10} {finding.path or ''}")
        lines.append(f"        {finding.message}")
    return "\n".join(lines) + "\n"


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

    def write(self, source: Path, raw: bytes, report: ValidationReport) -> None:
        from gateway.core.retour import RetourIdentity, build_retour, retour_type_for

        doc = report.document
        if doc is None or report.level in (Level.MALFORMED, Level.XSD):
            return  # the standard answers these through the transport, not with a retour
        kind = MESSAGE_KINDS.get(doc.message_type)
        if kind is None or kind.answered_by is None:
            return  # retours are not answered
        retour_type = retour_type_for(doc.message_type)
        # A stable id per original, so re-running validate rewrites the same retour.
        digest = hashlib.sha256(raw).hexdigest()[:12]
        identity = RetourIdentity(identificatie=digest, dagtekening=self._today)
        retour = build_retour(doc, report.findings, identity, self._schemas)
        (self._folder / f"{source.stem}.{retour_type}.xml").write_bytes(retour)
