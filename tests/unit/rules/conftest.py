"""Shared fixtures of the rule tests: the official schema set and the code-collecting helper.

Everything here is synchronous: rule tests are pure unit tests (no event loop, db or network).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.core.schemaset import SchemaSet
from tests.unit.rules.mutate import codes_for as _codes_for
from tests.unit.rules.mutate import official_schema_set


@pytest.fixture(scope="session")
def schema_set() -> SchemaSet:
    """The official iJw 3.2 XSDs (``tests/paths.OFFICIAL_XSD_DIR``)."""
    return official_schema_set()


@pytest.fixture
def codes_for(schema_set: SchemaSet) -> Callable[[bytes], set[str]]:
    """``codes_for(xml) -> set of rule codes``; fails the test if ``xml`` is not XSD-valid."""
    return _codes_for
