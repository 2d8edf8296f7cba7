"""``gateway validate docs/examples/`` as the README shows it: run from the repository root,
every demo file ok, exit 0 (tests/integration/test_demo_dossier.py sends them to a gateway)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.paths import REPO

DEMO_FILES = sorted(p.name for p in (REPO / "docs" / "examples").glob("*.xml"))


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "validate", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )


def test_readme_validate_line_reports_every_demo_file_ok() -> None:
    result = _validate("docs/examples/")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("ok", "xsd"))]
    assert sorted((row[0], row[2].rsplit("/", 1)[-1]) for row in rows) == [
        ("ok", name) for name in DEMO_FILES
    ]
    assert f"{len(DEMO_FILES)} file(s) checked" in result.stdout


def test_json_output_names_each_demo_file_with_level_ok() -> None:
    result = _validate("--json", "docs/examples/")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert sorted(str(r["file"]).rsplit("/", 1)[-1] for r in reports) == DEMO_FILES
    assert {r["level"] for r in reports} == {"ok"}
    assert all(r["findings"] == [] for r in reports)
    assert "999900006" not in result.stdout  # the demo BSN never appears in the output
