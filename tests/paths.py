"""Where the test suite finds the project's files and the shared reference material."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL_XSD_DIR = SHARED / "reference" / "ijw" / "ijw-3.2"
EXAMPLES_DIR = OFFICIAL_XSD_DIR / "examples"
OUR_XSD_DIR = REPO / "schemas" / "ijw-3.2"
CODES_DIR = SHARED / "reference" / "codes"
OFFICIAL_XSD_DIR_23 = SHARED / "reference" / "ijw" / "ijw-2.3"
EXAMPLES_DIR_23 = OFFICIAL_XSD_DIR_23 / "examples"
OUR_XSD_DIR_23 = REPO / "schemas" / "ijw-2.3"
GGK_DIR = SHARED / "reference" / "stuf-ggk" / "ggk0210-2.1.04-versie3"
OUR_GGK_XSD = REPO / "schemas" / "stuf-ggk0210" / "ggk0210.xsd"
