"""The dependency rule: the core is pure, and nothing imports the composition root."""

from __future__ import annotations

import ast
import subprocess
import sys
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
COMMAND_LINE = {"gateway/daemon/app.py", "gateway/__main__.py"}


def _is_command_line(path: Path) -> bool:
    relative = path.relative_to(REPO).as_posix()
    return relative in COMMAND_LINE or relative.startswith("gateway/cli/")


def test_nothing_but_the_command_line_imports_the_composition_root() -> None:
    """Server, service, store and core never build the application themselves."""
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "gateway").rglob("*.py")
        if not _is_command_line(p) and "gateway.daemon.app" in _imported_modules(p)
    ]
    assert offenders == []


CLI = REPO / "gateway" / "cli"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def test_nothing_imports_the_command_line() -> None:
    """The command line is the outermost layer: only ``python -m gateway`` imports it."""
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "gateway").rglob("*.py")
        if not p.is_relative_to(CLI)
        and p.name != "__main__.py"
        and any(m == "gateway.cli" or m.startswith("gateway.cli.") for m in _imported_modules(p))
    ]
    assert offenders == []


def test_command_modules_import_no_cycle() -> None:
    """No command module imports, even inside a function, one that imports it back.

    Only ``gateway/cli/__init__.py`` (the parser) imports the command modules; they share
    :mod:`gateway.cli.common` and never reach back for the parser.
    """
    edges = {
        _module_name(p): {m for m in _imported_modules(p) if m.startswith("gateway.cli")}
        for p in CLI.glob("*.py")
    }
    assert {name for name, imports in edges.items() if "gateway.cli" in imports} == set()
    assert {m for imports in edges.values() for m in imports} <= set(edges)
    for name, imports in edges.items():
        for imported in imports:
            assert name not in edges[imported], f"{name} <-> {imported}"
            assert not (edges[imported] - {"gateway.cli.common"}), imported


# What `gateway --help` must not pay for: each command imports these when it runs.
HEAVY_FOR_THE_PARSER = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "aiohttp",
    "structlog",
    "apscheduler",
    "lxml",
    "xmlschema",
    "asyncio",
    "gateway.daemon",
    "gateway.config",
    "gateway.service",
    "gateway.store",
    "gateway.schemas",
    "gateway.mapping_files",
    "gateway.core.rules",
)


def test_building_the_parser_imports_nothing_heavy() -> None:
    """``gateway --help`` answers fast because the parser is built from light modules only."""
    script = (
        "import sys\n"
        "from gateway.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    heavy = sorted(
        m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY_FOR_THE_PARSER)
    )
    assert heavy == []


STORE = REPO / "gateway" / "store"
# The daemon and the command line use the store; the store never reaches back into them.
OUTER_LAYERS = ("gateway.service", "gateway.daemon", "gateway.cli")


def _store_imports() -> dict[str, set[str]]:
    """Each store module (dotted name) and the store modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(STORE.glob("*.py")):
        name = "gateway.store." + path.stem if path.stem != "__init__" else "gateway.store"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _imported_modules(path)
        # ``from gateway.store import register`` imports the module gateway.store.register.
        found |= {
            f"gateway.store.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "gateway.store"
            for alias in node.names
        }
        graph[name] = {m for m in found if m.startswith("gateway.store.") and m != name}
    return graph


def test_store_modules_import_no_cycle() -> None:
    """The store's modules form a layered graph: tables at the bottom, SqlStore at the top."""
    graph = _store_imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join((*path, module)))
        if module in done:
            return
        for imported in sorted(graph.get(module, set())):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert "gateway.store.sql" in done


@pytest.mark.parametrize("module", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_store_imports_nothing_of_the_daemon_or_command_line(module: Path) -> None:
    """The store depends on the core and the database libraries only."""
    outer = {
        m
        for m in _imported_modules(module)
        if any(m == layer or m.startswith(layer + ".") for layer in OUTER_LAYERS)
        or m.startswith("gateway.cli")
    }
    assert outer == set()


SERVICE = REPO / "gateway" / "service"


@pytest.mark.parametrize("module", sorted(SERVICE.glob("*.py")), ids=lambda p: p.name)
def test_use_cases_import_nothing_of_the_daemon_or_command_line(module: Path) -> None:
    """The use cases serve the daemon's edges and the command line alike; they use neither."""
    outer = {
        m
        for m in _imported_modules(module)
        if any(
            m == layer or m.startswith(layer + ".") for layer in ("gateway.daemon", "gateway.cli")
        )
    }
    assert outer == set()


def test_the_layers_are_where_the_rules_look() -> None:
    """The rules above scan real folders: an empty or moved folder would pass them vacuously."""
    for folder, expected in (
        (CORE, "pipeline.py"),
        (STORE, "sql.py"),
        (SERVICE, "intake.py"),
        (REPO / "gateway" / "daemon", "app.py"),
        (CLI, "__init__.py"),
    ):
        assert (folder / expected).is_file(), folder


@pytest.mark.parametrize(
    "module", sorted((REPO / "gateway").rglob("*.py")), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_no_gateway_module_grows_past_800_lines(module: Path) -> None:
    """One concern per module: none grows past 800 lines."""
    assert len(module.read_text(encoding="utf-8").splitlines()) <= 800
