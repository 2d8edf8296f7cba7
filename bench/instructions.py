"""Instruction counts (callgrind) of our full validation against raw lxml parse + XSD.

Not a test. Wall-clock rates on a shared machine move by a third from run to run; the number
of instructions does not, so decisions about the validation core are made on these counts.
Each side runs in its own ``valgrind --tool=callgrind`` process over ``--rounds`` rounds of the
13 XSD-valid official examples; a third process does the same setup without the rounds, and
its count is subtracted. Needs ``valgrind`` on the PATH; takes about a minute.

    .venv/bin/python bench/instructions.py [--rounds 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

from lxml import etree

from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from gateway.schemas import load_schema_set

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO.parent / "shared" / "reference" / "ijw" / "ijw-3.2" / "examples"
OUR_SCHEMAS = REPO / "schemas" / "ijw-3.2"
_COLLECTED = re.compile(r"Collected : (\d+)")


def _run_side(side: str, rounds: int) -> None:
    """The measured process: setup, one warm-up pass, then ``rounds`` rounds of ``side``."""
    schemas = load_schema_set([OUR_SCHEMAS])
    messages = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.xml")) if p.name != "JW318.xml"]
    context = RuleContext(today=dt.date(2026, 11, 23))
    xsd_by_ns = {ns: s.xsd for (ns, _code), s in schemas.schemas.items()}

    def raw_lxml(raw: bytes) -> bool:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(raw, parser)
        return bool(xsd_by_ns[etree.QName(root).namespace].validate(root))

    def ours(raw: bytes) -> bool:
        return validate(raw, schemas, context).ok

    for raw in messages:  # the same warm-up on every side, baseline included
        raw_lxml(raw)
        ours(raw)
    work = {"raw": raw_lxml, "ours": ours}.get(side)
    if work is None:
        return
    for _ in range(rounds):
        for raw in messages:
            work(raw)


def _instructions(side: str, rounds: int) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--side",
            side,
            "--rounds",
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = _COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total for {side}:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--side", choices=("baseline", "raw", "ours"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        _run_side(args.side, args.rounds)
        return 0
    baseline = _instructions("baseline", args.rounds)
    count = args.rounds * len([p for p in EXAMPLES.glob("*.xml") if p.name != "JW318.xml"])
    raw = (_instructions("raw", args.rounds) - baseline) / count
    ours = (_instructions("ours", args.rounds) - baseline) / count
    print(f"messages: {count} ({args.rounds} rounds of the official examples)")
    print(f"raw lxml parse + XSD:     {raw / 1000:8.1f} k instructions per message")
    print(f"gateway full validation:  {ours / 1000:8.1f} k instructions per message")
    print(f"ratio raw / ours:         {raw / ours:8.3f}   (target >= 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
