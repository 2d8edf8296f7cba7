"""Differential check: does validation still say exactly what it said before a change?

Not a test (the suite checks a sample: ``tests/unit/test_differential.py``). Builds the seeded
corpus of ``tests/differential.py`` (the official examples, 6,000 mutations of them, hostile
inputs), fingerprints what ``validate()`` and each in-message rule alone report on every
message, and compares with ``tests/data/differential_digests.json``.

    .venv/bin/python bench/differential.py            # compare all messages
    .venv/bin/python bench/differential.py --write    # record the current code's digests

To record the digests of older code, run ``--write`` with that code first on the path, e.g.
``git archive <commit> gateway | tar -x -C /tmp/old`` and
``PYTHONPATH=/tmp/old:. .venv/bin/python bench/differential.py --write``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # last: an older gateway on PYTHONPATH must win

import gateway  # noqa: E402
from gateway.schemas import load_schema_set  # noqa: E402
from tests.differential import (  # noqa: E402
    DIGESTS_FILE,
    compared_registry,
    corpus,
    default_codes,
    digest,
)
from tests.paths import EXAMPLES_DIR, OUR_XSD_DIR  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=6000)
    parser.add_argument("--write", action="store_true", help="record the current digests")
    args = parser.parse_args()

    schemas = load_schema_set([OUR_XSD_DIR])
    print(f"code under test: {Path(gateway.__file__).parent}")
    start = time.perf_counter()
    if args.write:
        codes = default_codes()
        registry = compared_registry(codes)
        digests = [digest(raw, schemas, registry) for raw in corpus(EXAMPLES_DIR, args.mutations)]
        DIGESTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        DIGESTS_FILE.write_text(
            json.dumps({"mutations": args.mutations, "rules": codes, "digests": digests}) + "\n"
        )
        print(
            f"wrote {len(digests)} digests to {DIGESTS_FILE} ({time.perf_counter() - start:.0f} s)"
        )
        return 0
    recorded = json.loads(DIGESTS_FILE.read_text())
    registry = compared_registry(recorded["rules"])
    messages = list(corpus(EXAMPLES_DIR, recorded["mutations"]))
    different = [
        index
        for index, (raw, expected) in enumerate(zip(messages, recorded["digests"], strict=True))
        if digest(raw, schemas, registry) != expected
    ]
    print(
        f"{len(messages)} messages, {len(recorded['rules'])} rules: {len(different)} differ "
        f"({time.perf_counter() - start:.0f} s)"
    )
    for index in different[:20]:
        print(f"  message {index}")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
