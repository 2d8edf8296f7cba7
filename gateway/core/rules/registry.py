"""The single registry every rule module registers into."""

from __future__ import annotations

from gateway.core.rules.engine import RuleRegistry

REGISTRY = RuleRegistry()
