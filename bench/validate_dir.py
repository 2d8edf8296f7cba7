"""Benchmark: ``gateway validate DIR`` against a single-core raw lxml script, whole process.

Not a test. Builds a folder of ``--files`` copies of the 13 XSD-valid official examples, then
times three whole processes over it, interleaved, ``--runs`` times each (the minimum counts:
load only ever makes a run slower):

* a plain Python script that loads every message XSD of ``schemas/ijw-3.2`` once, then reads,
  parses (a fresh ``XMLParser`` per file, as ``bench/validate.py``) and XSD-validates each file;
* ``gateway validate --json DIR > /dev/null --jobs 1`` (in-process);
* ``gateway validate --json DIR > /dev/null`` (default ``--jobs``: one worker per core).

Prints the wall time and CPU time (user + system, children included) of each, the ratios
raw time / gateway time (target: at least 0.5 in wall time with the default ``--jobs``) and
the load average before and after, since other work on the machine moves every figure. On a
busy machine the workers have no idle core to use (and Linux's autogroup scheduling shares
the CPU per session, not per process), so the wall ratio then falls towards the CPU ratio:
measure at a quiet moment.

    .venv/bin/python bench/validate_dir.py [--files 3000] [--runs 3]

Python's bytecode cache is on, as in an installed gateway (see ``bench/cli_startup.py``).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO.parent / "shared" / "reference" / "ijw" / "ijw-3.2" / "examples"
OUR_SCHEMAS = REPO / "schemas" / "ijw-3.2"

TARGET = 0.5

# Loads the schemas once, then parse + XSD per file: the least any validating program does.
RAW_SCRIPT = """
import sys
from pathlib import Path
from lxml import etree

schemas = {}
for xsd in sorted(Path(sys.argv[1]).glob("jw*.xsd")):
    tree = etree.parse(str(xsd))
    schemas[tree.getroot().get("targetNamespace")] = etree.XMLSchema(tree)
invalid = 0
for path in sorted(Path(sys.argv[2]).rglob("*.xml")):
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(path.read_bytes(), parser)
    if not schemas[etree.QName(root).namespace].validate(root):
        invalid += 1
sys.exit(1 if invalid else 0)
"""


def gateway_command() -> list[str]:
    """The installed ``gateway`` script next to this interpreter, else ``python -m gateway``."""
    script = Path(sys.executable).parent / "gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    """Time the three processes and print the ratios against the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000, help="files in the folder")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (minimum counts)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    from gateway.cli.validate import default_jobs
    from gateway.core.document import C_INDEX_STATUS

    sources = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.xml")) if p.name != "JW318.xml"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.files):
            (folder / f"m{i:05d}.xml").write_bytes(sources[i % len(sources)])
        gateway = [*gateway_command(), "validate", "--json", str(folder)]
        commands = {
            "raw lxml script (1 core)": [
                sys.executable,
                "-c",
                RAW_SCRIPT,
                str(OUR_SCHEMAS),
                str(folder),
            ],
            "gateway validate --jobs 1": [*gateway, "--jobs", "1"],
            f"gateway validate (default, {default_jobs()} jobs)": gateway,
        }
        print(f"load average before: {load()}")
        # Unmeasured first runs write the bytecode cache and check that every command passes.
        for command in commands.values():
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, cpu = timed(command, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        print(f"load average after:  {load()}")

    print(
        f"{args.files} official examples, whole process, minimum of {args.runs} runs, "
        f"{C_INDEX_STATUS.split(':')[0]} document index:"
    )
    for name in commands:
        print(f"  {name:<36} {min(walls[name]):6.2f} s wall  {min(cpus[name]):6.2f} s CPU")
    raw, single, default = (min(w) for w in walls.values())
    raw_cpu, single_cpu, default_cpu = (min(c) for c in cpus.values())
    print(f"raw / gateway --jobs 1, wall:  {raw / single:5.2f}   (CPU {raw_cpu / single_cpu:.2f})")
    print(
        f"raw / gateway (default), wall: {raw / default:5.2f}   (CPU {raw_cpu / default_cpu:.2f}; "
        f"target >= {TARGET:g} in wall time)"
    )
    return 0 if raw / default >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
