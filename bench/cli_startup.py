"""Benchmark: how fast the command line answers, against plain lxml in the same run.

Not a test. Each command runs as a whole process (``subprocess``), several times; the minimum
counts, because start-up time only ever gets worse under load. Prints four times and two ratios:

* ``gateway --help`` against ``python -c "import lxml.etree"`` (target: at most 4x);
* ``gateway validate one.xml`` against a plain script that parses the same official example and
  validates it with lxml against our ``schemas/ijw-3.2`` XSD of its type (target: at most 5x).

    .venv/bin/python bench/cli_startup.py [--runs 10] [--example JW301]

Python's bytecode cache is on, as in an installed gateway: ``PYTHONDONTWRITEBYTECODE`` is
dropped for the commands, and a first, unmeasured run of each writes the cache. (With it set
and no cache, every gateway module is compiled from source on every run.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO.parent / "shared" / "reference" / "ijw" / "ijw-3.2" / "examples"
OUR_SCHEMAS = REPO / "schemas" / "ijw-3.2"

HELP_TARGET = 4.0
VALIDATE_TARGET = 5.0

# What any program that validates one message with lxml has to do: parse the XSD (with its
# basisschema import), compile it, parse the message, validate.
PLAIN_VALIDATE = """
import sys
from lxml import etree
schema = etree.XMLSchema(etree.parse(sys.argv[1]))
if not schema.validate(etree.parse(sys.argv[2])):
    sys.exit(1)
"""


def fastest(command: list[str], runs: int, env: dict[str, str]) -> float:
    """The shortest wall time of ``runs`` runs of ``command``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        best = min(best, time.perf_counter() - start)
    return best


def gateway_command() -> list[str]:
    """The installed ``gateway`` script next to this interpreter, else ``python -m gateway``."""
    script = Path(sys.executable).parent / "gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def main() -> int:
    """Measure the four commands and print the two ratios against their targets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--example", default="JW301", help="official example (default JW301)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    example = EXAMPLES / f"{args.example}.xml"
    xsd = OUR_SCHEMAS / f"{args.example.lower()}.xsd"
    gateway = gateway_command()
    # Checked once outside the timing: a failing command would measure an error path.
    for command in (
        [*gateway, "--help"],
        [*gateway, "validate", str(example)],
        [sys.executable, "-c", PLAIN_VALIDATE, str(xsd), str(example)],
    ):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)

    times = {
        "import lxml.etree": fastest([sys.executable, "-c", "import lxml.etree"], args.runs, env),
        "gateway --help": fastest([*gateway, "--help"], args.runs, env),
        "plain lxml parse + XSD": fastest(
            [sys.executable, "-c", PLAIN_VALIDATE, str(xsd), str(example)], args.runs, env
        ),
        f"gateway validate {example.name}": fastest(
            [*gateway, "validate", str(example)], args.runs, env
        ),
    }
    print(f"minimum of {args.runs} runs each, whole process, bytecode cache on:")
    for name, seconds in times.items():
        print(f"  {name:<32} {seconds * 1000:7.1f} ms")
    values = list(times.values())
    help_ratio = values[1] / values[0]
    validate_ratio = values[3] / values[2]
    print(
        f"gateway --help / import lxml.etree:        {help_ratio:5.1f}x "
        f"(target <= {HELP_TARGET:g}x)"
    )
    print(
        f"gateway validate / plain lxml parse + XSD: {validate_ratio:5.1f}x "
        f"(target <= {VALIDATE_TARGET:g}x)"
    )
    return 0 if help_ratio <= HELP_TARGET and validate_ratio <= VALIDATE_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
