"""The dossier scenario tests as data, for suites that re-run them on another history (the SQL
register, the daemon): every plain scenario function of the scenario modules."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from types import ModuleType

from tests.unit.dossier import (
    test_declarations,
    test_external,
    test_history,
    test_provider_checks,
    test_requests,
    test_startstop,
)

SCENARIO_MODULES: tuple[ModuleType, ...] = (
    test_declarations,
    test_external,
    test_history,
    test_provider_checks,
    test_requests,
    test_startstop,
)


def plain_scenarios() -> Iterator[tuple[str, ModuleType, Callable[[], None]]]:
    """(``module::test_name``, module, function) of every scenario test that takes no
    fixtures (those with fixtures of their own are not plain scenarios)."""
    for module in SCENARIO_MODULES:
        for name, fn in sorted(vars(module).items()):
            plain = inspect.isfunction(fn) and not inspect.signature(fn).parameters
            if name.startswith("test_") and plain:
                yield f"{module.__name__.rsplit('.', 1)[1]}::{name}", module, fn
