"""Where the data the gateway ships is found: the iJw schemas and the mapping folder.

One source of truth: the top-level ``schemas/`` and ``mappings/`` folders of the source tree.
A built wheel carries a copy of each as package data in ``gateway/_shipped/`` (setup.py's
``build_py`` copies them at build time), found here through :mod:`importlib.resources`; a
source checkout (an editable install, the tests) has no such folder and uses the top-level
folders themselves. Every module that needs shipped data asks this one.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from gateway.core.errors import ConfigError

#: The package-data folder that a wheel's ``gateway`` package carries (see setup.py).
PACKAGED_FOLDER = "_shipped"
#: The releases shipped, one schema folder each (schemas/README.md).
SCHEMA_RELEASES = ("ijw-3.2", "ijw-2.3")


def shipped_folder(name: str) -> Path:
    """The shipped folder ``name`` (``schemas`` or ``mappings``): packaged, else the checkout's."""
    packaged = files("gateway") / PACKAGED_FOLDER / name
    if packaged.is_dir():
        if not isinstance(packaged, Path):
            # The schemas and the mapping loader read files by path (lxml resolves includes).
            raise ConfigError(f"gateway's shipped {name}/ is not on a file system: {packaged}")
        return packaged
    return Path(__file__).resolve().parents[1] / name


SHIPPED_SCHEMAS: tuple[Path, ...] = tuple(
    shipped_folder("schemas") / release for release in SCHEMA_RELEASES
)
SHIPPED_MAPPINGS: Path = shipped_folder("mappings")
SHIPPED_ENVELOPE_SCHEMA: Path = shipped_folder("schemas") / "stuf-ggk0210" / "ggk0210.xsd"
"""The StUF-GGk envelope schema (ggk0210 with the StUF 0301 parts it uses)."""
