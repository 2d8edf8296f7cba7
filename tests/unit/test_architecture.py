"""The dependency rule: the core is pure, and nothing imports the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import REPO

FORBIDDEN_IN_CORE = {
    "asyncio",
    "aiohttp",
    "sqlmodel",
    "sqlalchemy",
    "structlog",
    "apscheduler",
    "psycopg",
    "socket",
    "subprocess",
}
# threading is allowed: MessageSchema guards lxml's shared schema error log with a lock.
CORE = REPO / "gateway" / "core"


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io_library(module: Path) -> None:
    """Core modules import only the stdlib, lxml, xmlschema and other core modules."""
    assert not (_imported_roots(module) & FORBIDDEN_IN_CORE)


@pytest.mark.parametrize("module", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_depends_only_on_core(module: Path) -> None:
    """Dependencies point towards the core: core never imports the edges."""
    gateway_imports = {m for m in _imported_modules(module) if m.startswith("gateway.")}
    assert all(m.startswith("gateway.core") for m in gateway_imports), gateway_imports


# The command line is the outermost layer: its commands build the application to act on it.
COMMAND_LINE = {"gateway/app.py", "gateway/__main__.py"}


def _is_command_line(path: Path) -> bool:
    relative = path.relative_to(REPO).as_posix()
    return relative in COMMAND_LINE or relative.startswith("gateway/cli/")


def test_nothing_but_the_command_line_imports_the_composition_root() -> None:
    """Server, service, store and core never build the application themselves."""
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "gateway").rglob("*.py")
        if not _is_command_line(p) and "gateway.app" in _imported_modules(p)
    ]
    assert offenders == []
