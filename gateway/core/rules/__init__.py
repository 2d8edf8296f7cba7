"""All rules of the standard that the gateway checks, in one registry.

Importing this package registers every rule module; :data:`REGISTRY` then holds them all.
"""

from __future__ import annotations

from gateway.core.rules import (  # noqa: F401  (imported for their registrations)
    client,
    common,
    dagtekening,
    declaration,
    external,
    products,
    provider,
    requests,
    startstop,
    state,
)
from gateway.core.rules.engine import Rule, RuleContext, RuleLevel, Violation, run_rules
from gateway.core.rules.registry import REGISTRY

__all__ = ["REGISTRY", "Rule", "RuleContext", "RuleLevel", "Violation", "run_rules"]
